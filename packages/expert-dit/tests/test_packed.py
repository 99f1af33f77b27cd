"""The packed forward equals the per-sample forwards (fp32, outputs and gradients, rel 1e-5)."""

import pytest
import torch
from einops import rearrange

from cogvx.expert_dit import DiTConfig, ExpertDiT
from cogvx.expert_dit.packed import PackedExpertDiT, PackedLayout, packed_forward

REL = 1e-5

VARIANTS = {
    "rope_linspace_5b": dict(use_rotary_positional_embeddings=True),
    "sincos_2b": dict(),
    "rope_slice_1.5": dict(use_rotary_positional_embeddings=True, patch_size_t=2, patch_bias=False),
    "ofs_1.5_i2v": dict(
        use_rotary_positional_embeddings=True,
        patch_size_t=2,
        patch_bias=False,
        in_channels=8,
        ofs_embed_dim=32,
    ),
}

# (latent frames, latent height, latent width, text length): mixed durations, aspect ratios,
# an image (1 frame), odd frame counts (padded for patch_size_t=2), different text lengths.
SAMPLES = [(3, 8, 12), (1, 6, 6), (4, 12, 8), (2, 4, 10)]
TEXT_LENGTHS = [8, 8, 5, 3]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _check_grads(got: dict, ref: dict) -> None:
    """Per-tensor rel <= REL; a gradient that is exactly zero in exact arithmetic (the key-norm
    bias without RoPE: softmax ignores a bias shared by all keys) is rounding noise on both
    sides, so it is compared against the largest gradient of the model instead."""
    assert got.keys() == ref.keys()
    scale = max(float(g.abs().max()) for g in ref.values())
    for name in ref:
        if float(ref[name].abs().max()) < 1e-6 * scale:
            assert float((got[name] - ref[name]).abs().max()) <= REL * scale, name
        else:
            assert _rel(got[name], ref[name]) <= REL, name


def _random_model(config: DiTConfig, seed: int = 0) -> ExpertDiT:
    """Random weights everywhere, modulation Linears included (they start at zero)."""
    torch.manual_seed(seed)
    model = ExpertDiT(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and name.endswith("weight"):  # LayerNorm scales: around 1
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    return model


def _patchify(latents: torch.Tensor, config: DiTConfig) -> tuple[torch.Tensor, tuple, int]:
    """[F, C, H, W] -> tokens [N, C*pt*p*p] ((c, pt, p, p) features), grid, pad frames."""
    pt, p = config.patch_t, config.patch_size
    pad = (-latents.shape[0]) % pt
    if pad:
        latents = torch.cat([latents[:1].expand(pad, -1, -1, -1), latents])
    f, _, h, w = latents.shape
    tokens = rearrange(latents, "(t o) c (h p) (w q) -> (t h w) (c o p q)", o=pt, p=p, q=p)
    return tokens, (f // pt, h // p, w // p), pad


def _unpatchify(tokens, grid, config, pad):
    pt, p = config.patch_t, config.patch_size
    out = rearrange(
        tokens,
        "(t h w) (c o p q) -> (t o) c (h p) (w q)",
        t=grid[0],
        h=grid[1],
        w=grid[2],
        o=pt,
        p=p,
        q=p,
    )
    return out[pad:]


def _inputs(config: DiTConfig, samples, text_lengths, seed=1):
    g = torch.Generator().manual_seed(seed)
    latents = [torch.randn(f, config.in_channels, h, w, generator=g) for f, h, w in samples]
    texts = [torch.randn(n, config.text_embed_dim, generator=g) for n in text_lengths]
    timesteps = torch.randint(0, 1000, (len(samples),), generator=g)
    weights = [
        torch.randn(f, config.out_dim, h, w, generator=g) for f, h, w in samples
    ]  # loss weights, so every output element gets its own gradient
    return latents, texts, timesteps, weights


def _run_reference(model, latents, texts, timesteps, weights, ofs):
    model.zero_grad()
    lat = [x.clone().requires_grad_() for x in latents]
    txt = [x.clone().requires_grad_() for x in texts]
    outs = []
    for i in range(len(lat)):
        o = model(
            lat[i][None],
            txt[i][None],
            timesteps[i : i + 1],
            pad_frames=True,
            ofs=None if ofs is None else ofs[i : i + 1],
        )
        outs.append(o[0])
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return outs, grads, [x.grad for x in lat], [x.grad for x in txt]


def _run_packed(model, latents, texts, timesteps, weights, ofs, **kwargs):
    config = model.config
    model.zero_grad()
    lat = [x.clone().requires_grad_() for x in latents]
    txt = [x.clone().requires_grad_() for x in texts]
    packed = [_patchify(x, config) for x in lat]
    tokens = torch.cat([t for t, _, _ in packed])
    out = packed_forward(
        model,
        tokens,
        torch.cat(txt),
        text_lengths=[x.shape[0] for x in txt],
        grids=[g for _, g, _ in packed],
        timestep=timesteps,
        ofs=ofs,
        **kwargs,
    )
    outs = [
        _unpatchify(part, g, config, pad)
        for part, (_, g, pad) in zip(out.split([t.shape[0] for t, _, _ in packed]), packed)
    ]
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return outs, grads, [x.grad for x in lat], [x.grad for x in txt]


@pytest.mark.parametrize("mode", ["mask", "split"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_packed_equals_per_sample(variant, mode):
    config = DiTConfig.tiny(**VARIANTS[variant])
    model = _random_model(config)
    latents, texts, timesteps, weights = _inputs(config, SAMPLES, TEXT_LENGTHS)
    ofs = torch.tensor([2.0, 1.0, 0.5, 3.0]) if config.ofs_embed_dim else None

    ref = _run_reference(model, latents, texts, timesteps, weights, ofs)
    got = _run_packed(model, latents, texts, timesteps, weights, ofs, attention_mode=mode)

    for o_ref, o_got in zip(ref[0], got[0]):
        assert o_got.shape == o_ref.shape
        assert _rel(o_got, o_ref) <= REL
    _check_grads(got[1], ref[1])
    for a, b in zip(got[2] + got[3], ref[2] + ref[3]):
        assert _rel(a, b) <= REL


def test_split_batches_runs_of_equal_length():
    # Runs of same-length samples go through one batched attention call each ([k, H, L, d]);
    # a run is broken by a sample of another length and restarts after it.
    config = DiTConfig.tiny(**VARIANTS["rope_linspace_5b"])
    model = _random_model(config)
    samples = [(2, 4, 4)] * 3 + [(1, 6, 6)] + [(2, 4, 4)] * 2
    lengths = [4, 4, 4, 4, 4, 4]
    latents, texts, timesteps, weights = _inputs(config, samples, lengths)
    ref = _run_reference(model, latents, texts, timesteps, weights, None)
    got = _run_packed(model, latents, texts, timesteps, weights, None, attention_mode="split")
    for o_ref, o_got in zip(ref[0], got[0]):
        assert _rel(o_got, o_ref) <= REL
    _check_grads(got[1], ref[1])

    layout = PackedLayout([4, 4, 4, 2, 4], [(2, 2, 2)] * 3 + [(1, 3, 2), (2, 2, 2)])
    assert layout.length_runs == ((0, 12, 3), (36, 8, 1), (44, 12, 1))


def test_learned_positions_and_checkpointing():
    # 5B-I2V: learned table at the native size only (3 latent frames of 8x12, 8 text tokens).
    config = DiTConfig.tiny(
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True, in_channels=8
    )
    model = _random_model(config)
    with torch.no_grad():
        model.patch_embed.pos_embedding.normal_()
    samples, lengths = [(3, 8, 12)] * 3, [8] * 3
    latents, texts, timesteps, weights = _inputs(config, samples, lengths)
    ref = _run_reference(model, latents, texts, timesteps, weights, None)
    with model.gradient_checkpointing_enabled():
        got = _run_packed(model, latents, texts, timesteps, weights, None, attention_backend="math")
    for a, b in zip(got[0] + got[2] + got[3], ref[0] + ref[2] + ref[3]):
        assert _rel(a, b) <= REL
    _check_grads(got[1], ref[1])


def test_samples_do_not_leak_into_each_other():
    # Changing sample 1's inputs leaves sample 0's packed output bit-identical (split mode).
    config = DiTConfig.tiny(use_rotary_positional_embeddings=True)
    model = _random_model(config).eval()
    latents, texts, timesteps, _ = _inputs(config, SAMPLES[:2], TEXT_LENGTHS[:2])
    with torch.no_grad():
        outs = []
        for scale in (1.0, 5.0):
            lat = [latents[0], latents[1] * scale]
            packed = [_patchify(x, config) for x in lat]
            out = packed_forward(
                PackedExpertDiT(model).dit,
                torch.cat([t for t, _, _ in packed]),
                torch.cat(texts),
                text_lengths=TEXT_LENGTHS[:2],
                grids=[g for _, g, _ in packed],
                timestep=timesteps,
                attention_mode="mask",
            )
            outs.append(out[: packed[0][0].shape[0]])
    assert torch.allclose(outs[0], outs[1], rtol=0, atol=1e-6)


def test_layout_and_bad_input():
    layout = PackedLayout([2, 1], [(1, 1, 2), (1, 2, 1)])
    assert layout.cu_seqlens.tolist() == [0, 4, 7]
    assert layout.sample_ids.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert layout.is_text.tolist() == [True, True, False, False, True, False, False]
    assert layout.block_mask().sum() == 4 * 4 + 3 * 3
    with pytest.raises(ValueError, match="same length"):
        PackedLayout([2], [(1, 1, 1), (1, 1, 1)])
    with pytest.raises(ValueError, match="grids\\[0\\]"):
        PackedLayout([2], [(0, 1, 1)])

    config = DiTConfig.tiny()
    model = ExpertDiT(config)
    tokens = torch.zeros(4, config.patch_dim)
    text = torch.zeros(3, config.text_embed_dim)
    kwargs = dict(text_lengths=[3], grids=[(1, 2, 2)], timestep=torch.tensor([1]))
    with pytest.raises(ValueError, match="video_tokens must be"):
        packed_forward(model, tokens[:3], text, **kwargs)
    with pytest.raises(ValueError, match="text_embeds must be"):
        packed_forward(model, tokens, text[:2], **kwargs)
    with pytest.raises(ValueError, match="attention_mode"):
        packed_forward(model, tokens, text, attention_mode="dense", **kwargs)
    with pytest.raises(ValueError, match="varlen"):
        packed_forward(model, tokens, text, attention_mode="varlen", **kwargs)
    with pytest.raises(ValueError, match="timestep"):
        packed_forward(model, tokens, text, **{**kwargs, "timestep": torch.tensor([1, 2])})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_varlen_matches_mask_on_gpu():
    config = DiTConfig.tiny(use_rotary_positional_embeddings=True)
    model = _random_model(config).cuda().to(torch.bfloat16)
    latents, texts, timesteps, _ = _inputs(config, SAMPLES, TEXT_LENGTHS)
    packed = [_patchify(x, config) for x in latents]
    kwargs = dict(
        text_lengths=TEXT_LENGTHS, grids=[g for _, g, _ in packed], timestep=timesteps.cuda()
    )
    tokens = torch.cat([t for t, _, _ in packed]).cuda().bfloat16()
    text = torch.cat(texts).cuda().bfloat16()
    with torch.no_grad():
        a = packed_forward(model, tokens, text, attention_mode="varlen", **kwargs)
        b = packed_forward(model, tokens, text, attention_mode="mask", **kwargs)
    assert _rel(a.float(), b.float()) <= 2e-2  # bf16
