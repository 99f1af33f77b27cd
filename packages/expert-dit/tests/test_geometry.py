"""The one geometry source: sizes from the (transformer, VAE) configs, and the token layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cogvx.expert_dit import DiTConfig
from cogvx.expert_dit.geometry import ModelGeometry, patchify, unpatchify

VAE_2B = {"block_out_channels": [128, 256, 256, 512], "temporal_compression_ratio": 4.0}


def test_from_configs_reads_both_models():
    g = ModelGeometry.from_configs(DiTConfig.cogvideox_1_5_5b(), VAE_2B)
    assert (g.spatial_compression, g.temporal_compression, g.patch_size, g.pt) == (8, 4, 2, 2)
    assert g.text_tokens == 226 and g.pixel_multiple == 16
    assert g.latent_frames(81) == 21 and g.latent_pad(21) == 1
    assert g.latent_size(768, 1360) == (96, 170)
    assert g.token_grid(22, 96, 170) == (11, 48, 85)
    assert g.video_tokens(81, 768, 1360) == 11 * 48 * 85
    small_vae = {**VAE_2B, "block_out_channels": [8, 16]}
    assert ModelGeometry.from_configs(DiTConfig.tiny(), small_vae).spatial_compression == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ModelGeometry.from_configs(
                DiTConfig(), {**VAE_2B, "temporal_compression_ratio": 8}
            ),
            "does not match",
        ),
        (
            lambda: ModelGeometry.from_configs(DiTConfig(), {"block_out_channels": []}),
            "block_out_channels",
        ),
        (lambda: ModelGeometry().latent_frames(48), "4k\\+1"),
        (lambda: ModelGeometry().latent_size(100, 64), "multiples of 8"),
        (lambda: ModelGeometry(patch_size_t=2).token_grid(3, 4, 4), "do not divide"),
    ],
)
def test_refusals(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("pt", [None, 2])
def test_patchify_is_the_patch_embedding_layout_and_inverts(pt):
    """A 2x2 stride-2 Conv2d per frame equals a Linear over the patchified (c, pt, p, p) features;
    unpatchify inverts patchify."""
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 3, 6, 8, generator=g)  # [B, F, C, H, W]
    tokens = patchify(latents, 2, pt)
    o = pt or 1
    assert tokens.shape == (2, (4 // o) * 3 * 4, 3 * o * 4)
    assert torch.equal(unpatchify(tokens, (4 // o, 3, 4), 2, pt), latents)
    if pt is None:
        weight = torch.randn(5, 3, 2, 2, generator=g)
        conv = F.conv2d(latents.flatten(0, 1), weight, stride=2)  # [B*F, 5, 3, 4]
        conv = conv.unflatten(0, (2, 4)).permute(0, 1, 3, 4, 2).reshape(2, -1, 5)
        assert torch.allclose(tokens @ weight.flatten(1).T, conv, atol=1e-5)
