"""framepack collation + ExpertDiT packed forward == per-sample forwards (fp32, rel 1e-5).

Checks the contract between the two members: framepack's token layout, temporal padding and
unpacking agree with the transformer's own patchify / ``pad_frames`` / unpatchify.
"""

import pytest
import torch

from cogvx.expert_dit import DiTConfig, ExpertDiT
from cogvx.expert_dit.packed import packed_forward
from cogvx.framepack import ModelGeometry, PackCollator, unpack_video


def _random_model(config: DiTConfig) -> ExpertDiT:
    torch.manual_seed(0)
    model = ExpertDiT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # the adaLN Linears start at zero
    return model


@pytest.mark.parametrize(
    "overrides",
    [
        dict(use_rotary_positional_embeddings=True),
        dict(use_rotary_positional_embeddings=True, patch_size_t=2, patch_bias=False),
    ],
    ids=["1.0-rope", "1.5-rope-pt2"],
)
def test_collated_packed_forward_matches_per_sample(overrides):
    config = DiTConfig.tiny(**overrides)
    model = _random_model(config).eval()
    geometry = ModelGeometry.from_config(config)
    g = torch.Generator().manual_seed(3)
    shapes = [(3, 8, 12), (1, 4, 4), (2, 6, 10)]  # latent (F, H, W): odd F padded for pt=2
    items = [
        {
            "latents": torch.randn(f, config.in_channels, h, w, generator=g),
            "text_embeds": torch.randn(
                config.max_text_seq_length, config.text_embed_dim, generator=g
            ),
        }
        for f, h, w in shapes
    ]
    t = torch.tensor([10, 500, 999])
    batch = PackCollator(geometry)(items)
    with torch.no_grad():
        out = packed_forward(
            model,
            batch.latent_tokens,
            batch.text_embeds,
            text_lengths=batch.text_lengths,
            grids=batch.grids,
            timestep=t,
        )
        got = unpack_video(out, batch, config.out_dim)
        for i, item in enumerate(items):
            ref = model(
                item["latents"][None], item["text_embeds"][None], t[i : i + 1], pad_frames=True
            )[0]
            assert got[i].shape == ref.shape
            rel = (got[i] - ref).abs().max() / ref.abs().max()
            assert rel <= 1e-5
