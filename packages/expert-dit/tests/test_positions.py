"""Position tables against the diffusers functions they reproduce (exact to fp32 rounding)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cogvx.expert_dit import DiTConfig, ExpertDiT
from cogvx.expert_dit.positions import (
    PositionCache,
    resize_crop_region,
    rope_tables,
    sincos_3d,
)


@pytest.mark.parametrize(("dim", "grid"), [(1920, (13, 30, 45)), (32, (3, 4, 6)), (64, (2, 5, 3))])
def test_sincos_matches_diffusers(dim, grid):
    from diffusers.models.embeddings import get_3d_sincos_pos_embed

    frames, height, width = grid
    expected = get_3d_sincos_pos_embed(dim, (width, height), frames, 1.875, 1.0).flatten(0, 1)
    got = sincos_3d(dim, frames, height, width, spatial_scale=1.875, temporal_scale=1.0)
    assert got.shape == (frames * height * width, dim)
    torch.testing.assert_close(got.float(), expected.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("latent", "base"),
    [
        ((13, 60, 90), (60, 90)),
        ((13, 96, 170), (60, 90)),
        ((7, 90, 60), (60, 90)),
        ((4, 8, 12), (8, 12)),
        ((2, 10, 6), (8, 12)),
    ],
)
def test_rope_linspace_matches_pipeline_helper(latent, base, helpers):
    config = DiTConfig.tiny(
        use_rotary_positional_embeddings=True,
        attention_head_dim=64,
        sample_height=base[0],
        sample_width=base[1],
    )
    frames, height, width = latent
    expected = helpers.reference_rope(config, frames, height, width)
    got = rope_tables(config, frames, height // 2, width // 2, "linspace")
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("latent", [(22, 96, 170), (3, 8, 12), (5, 16, 6)])
def test_rope_slice_matches_pipeline_helper(latent, helpers):
    config = DiTConfig.cogvideox_1_5_5b()
    frames, height, width = latent
    expected = helpers.reference_rope(config, frames, height, width)
    got = rope_tables(config, (frames + 1) // 2, height // 2, width // 2, "slice")
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rope_native_linspace_is_integer_grid():
    """At the native 480x720 size the interpolating grid is exactly arange (docs/transformer.md §RoPE)."""
    config = DiTConfig.cogvideox_5b()
    linspace = rope_tables(config, 13, 30, 45, "linspace")
    sliced = rope_tables(config, 13, 30, 45, "slice")
    for a, b in zip(linspace, sliced, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@given(
    h=st.integers(1, 200),
    w=st.integers(1, 200),
    base_h=st.integers(1, 200),
    base_w=st.integers(1, 200),
)
def test_resize_crop_region_matches_pipeline(h, w, base_h, base_w):
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

    assert resize_crop_region((h, w), base_w, base_h) == get_resize_crop_region_for_grid(
        (h, w), base_w, base_h
    )


def test_rope_grid_name_is_validated():
    config = DiTConfig.tiny(use_rotary_positional_embeddings=True)
    with pytest.raises(ValueError, match="rope_grid must be one of 'linspace', 'slice'"):
        rope_tables(config, 2, 4, 4, "nearest")


def test_position_cache_is_bounded_and_reused():
    cache = PositionCache(max_entries=2)
    calls = []

    def build(n):
        def make():
            calls.append(n)
            return torch.zeros(n)

        return make

    a = cache.get(1, build(1))
    assert cache.get(1, build(1)) is a and calls == [1]
    cache.get(2, build(2))
    cache.get(3, build(3))  # evicts the least recently used (1)
    assert len(cache) == 2
    cache.get(1, build(1))
    assert calls == [1, 2, 3, 1]
    with pytest.raises(ValueError, match="max_entries"):
        PositionCache(0)


def test_model_caches_tables_per_shape():
    model = ExpertDiT(
        DiTConfig.tiny(use_rotary_positional_embeddings=True), position_cache_size=2
    ).eval()
    text = torch.zeros(1, 3, 32)
    with torch.no_grad():
        for size in [(8, 12), (8, 12), (4, 4), (6, 6), (8, 12)]:
            model(torch.zeros(1, 2, 4, *size), text, 1)
            assert len(model._positions) <= 2
