"""Attention backends (SDPA default, math reference, xformers extra) and activation checkpointing."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from cogvx.expert_dit import DiTConfig, ExpertDiT, use_attention_backend
from cogvx.expert_dit.attention import attention, current_attention_backend, math_attention


@pytest.mark.parametrize("shape", [(1, 1, 1, 8), (2, 3, 37, 16), (1, 2, 130, 64)])
def test_sdpa_matches_math_with_and_without_masks(shape):
    g = torch.Generator().manual_seed(sum(shape))
    q, k, v = (torch.randn(shape, generator=g, requires_grad=True) for _ in range(3))
    seq = shape[2]
    # A block-diagonal packed-sequence mask (each token attends within its own segment).
    segment = torch.arange(seq) * 3 // max(seq, 1)
    bool_mask = segment[:, None] == segment[None, :]
    additive = torch.randn(seq, seq, generator=g)
    for mask in (None, bool_mask, additive):
        out = attention(q, k, v, attn_mask=mask, backend="sdpa")
        ref = math_attention(q, k, v, mask)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v))
        ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
        for a, b in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_context_manager_selects_and_restores():
    assert current_attention_backend() == "sdpa"
    with use_attention_backend("math") as chosen:
        assert chosen == "math" and current_attention_backend() == "math"
        with use_attention_backend("sdpa"):
            assert current_attention_backend() == "sdpa"
        assert current_attention_backend() == "math"
    assert current_attention_backend() == "sdpa"
    with (
        pytest.raises(ValueError, match="attention_backend must be one of"),
        use_attention_backend("nope"),
    ):
        pass


def test_model_output_same_on_every_cpu_backend():
    torch.manual_seed(0)
    model = ExpertDiT(DiTConfig.tiny(use_rotary_positional_embeddings=True)).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    latents, text = torch.randn(2, 3, 4, 8, 12), torch.randn(2, 5, 32)
    with torch.no_grad():
        sdpa = model(latents, text, torch.tensor([1, 700]))
        math_arg = model(latents, text, torch.tensor([1, 700]), attention_backend="math")
        with use_attention_backend("math"):
            math_ctx = model(latents, text, torch.tensor([1, 700]))
    torch.testing.assert_close(math_arg, math_ctx, rtol=0, atol=0)
    assert (sdpa - math_arg).abs().max() / sdpa.abs().max() < 1e-5


def test_model_attn_mask_full_equals_no_mask():
    torch.manual_seed(1)
    model = ExpertDiT(DiTConfig.tiny()).eval()
    latents, text = torch.randn(1, 2, 4, 8, 12), torch.randn(1, 4, 32)
    seq = 4 + 2 * 4 * 6
    with torch.no_grad():
        free = model(latents, text, 5)
        masked = model(latents, text, 5, attn_mask=torch.ones(seq, seq, dtype=torch.bool))
    torch.testing.assert_close(free, masked, rtol=1e-6, atol=1e-6)


def test_xformers_unavailable_or_cpu_is_a_clear_error():
    q = torch.randn(1, 2, 4, 16)
    if importlib.util.find_spec("xformers") is None:
        with pytest.raises(ImportError, match=r"cogvx-expert-dit\[xformers\]"):
            attention(q, q, q, backend="xformers")
    else:
        with pytest.raises(ValueError, match="has no kernels for device 'cpu'"):
            attention(q, q, q, backend="xformers")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_xformers_matches_sdpa_on_gpu():
    pytest.importorskip("xformers")
    q, k, v = (torch.randn(2, 3, 77, 64, device="cuda", dtype=torch.float16) for _ in range(3))
    torch.testing.assert_close(
        attention(q, k, v, backend="xformers"),
        attention(q, k, v, backend="sdpa"),
        rtol=2e-3,
        atol=2e-3,
    )


def _grads(model, latents, text, timestep):
    model.zero_grad()
    out = model(latents, text, timestep)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    "variant",
    [
        {"use_rotary_positional_embeddings": True},
        {"use_rotary_positional_embeddings": True, "patch_size_t": 2, "ofs_embed_dim": 0},
        {},
    ],
)
def test_gradient_checkpointing_same_gradients(variant):
    torch.manual_seed(2)
    model = ExpertDiT(DiTConfig.tiny(**variant)).train()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    latents, text = torch.randn(2, 2, 4, 8, 12), torch.randn(2, 6, 32)
    timestep = torch.tensor([10, 600])
    plain = _grads(model, latents, text, timestep)
    model.set_gradient_checkpointing(True)
    checked = _grads(model, latents, text, timestep)
    model.set_gradient_checkpointing(False)
    with model.gradient_checkpointing_enabled():
        assert model.gradient_checkpointing
        in_context = _grads(model, latents, text, timestep)
    assert not model.gradient_checkpointing
    assert plain.keys() == checked.keys() == in_context.keys()
    assert len(plain) == len(list(model.parameters()))
    for name in plain:
        torch.testing.assert_close(checked[name], plain[name], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(in_context[name], plain[name], rtol=1e-5, atol=1e-6)
