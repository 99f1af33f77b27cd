"""Bad input gets a clear error naming the parameter, the value and what is valid."""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit import DiTConfig, ExpertDiT


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {
        "rope": ExpertDiT(DiTConfig.tiny(use_rotary_positional_embeddings=True)).eval(),
        "learned": ExpertDiT(
            DiTConfig.tiny(
                use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True
            )
        ).eval(),
        "v15": ExpertDiT(
            DiTConfig.tiny(use_rotary_positional_embeddings=True, patch_size_t=2, ofs_embed_dim=32)
        ).eval(),
        "sincos": ExpertDiT(DiTConfig.tiny()).eval(),
    }


def _call(model, latents=None, text=None, timestep=1, **kwargs):
    latents = torch.zeros(1, 2, 4, 8, 12) if latents is None else latents
    text = torch.zeros(latents.shape[0], 8, 32) if text is None else text
    with torch.no_grad():
        return model(latents, text, timestep, **kwargs)


def test_wrong_latent_channels(models):
    with pytest.raises(ValueError, match=r"latents have 5 channels .* in_channels=4"):
        _call(models["rope"], torch.zeros(1, 2, 5, 8, 12))


def test_latents_rank(models):
    with pytest.raises(
        ValueError, match=r"latents must be a \[B, F, C, H, W\] tensor, got \(2, 4, 8, 12\)"
    ):
        _call(models["rope"], torch.zeros(2, 4, 8, 12))


@pytest.mark.parametrize(
    ("shape", "name"), [((1, 2, 4, 7, 12), "height=7"), ((1, 2, 4, 8, 9), "width=9")]
)
def test_spatial_size_not_divisible_by_patch(models, shape, name):
    with pytest.raises(ValueError, match=rf"latent {name} is not divisible by patch_size=2"):
        _call(models["rope"], torch.zeros(shape))


def test_frames_not_divisible_by_patch_t(models):
    latents = torch.zeros(1, 3, 4, 8, 12)
    with pytest.raises(
        ValueError, match=r"F=3 is not divisible by patch_size_t=2; pass pad_frames=True"
    ):
        _call(models["v15"], latents, ofs=2.0)
    out = _call(models["v15"], latents, ofs=2.0, pad_frames=True)
    assert out.shape == (1, 3, 4, 8, 12)


def test_text_width_and_batch(models):
    with pytest.raises(
        ValueError, match=r"text_embeds width 16 does not match the model's text_embed_dim=32"
    ):
        _call(models["rope"], text=torch.zeros(1, 8, 16))
    with pytest.raises(ValueError, match=r"text_embeds batch 2 does not match the latents batch 1"):
        _call(models["rope"], text=torch.zeros(2, 8, 32))
    with pytest.raises(ValueError, match=r"text_embeds must be a \[B, L, D_text\] tensor"):
        _call(models["rope"], text=torch.zeros(8, 32))


def test_timestep_shape(models):
    latents = torch.zeros(2, 2, 4, 8, 12)
    with pytest.raises(
        ValueError, match=r"timestep must be a scalar, \[1\] or \[B\]=\[2\], got shape \(3,\)"
    ):
        _call(models["rope"], latents, timestep=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"got shape \(2, 1\)"):
        _call(models["rope"], latents, timestep=torch.ones(2, 1))
    with pytest.raises(TypeError, match="timestep must be a tensor or a number"):
        _call(models["rope"], latents, timestep="1")


def test_learned_table_other_size(models):
    learned = models["learned"]
    with pytest.raises(
        ValueError,
        match=r"learned position table for latents of \(F, H, W\)=\(3, 8, 12\) only .* got \(F, H, W\)=\(3, 10, 12\)",
    ):
        _call(learned, torch.zeros(1, 3, 4, 10, 12))
    with pytest.raises(ValueError, match=r"\(F, H, W\)=\(2, 8, 12\)"):
        _call(learned, torch.zeros(1, 2, 4, 8, 12))
    with pytest.raises(ValueError, match=r"max_text_seq_length=8 text tokens; got text length 5"):
        _call(learned, torch.zeros(1, 3, 4, 8, 12), text=torch.zeros(1, 5, 32))
    assert _call(learned, torch.zeros(1, 3, 4, 8, 12)).shape == (1, 3, 4, 8, 12)


def test_ofs_required_exactly_for_ofs_models(models):
    with pytest.raises(ValueError, match=r"ofs_embed_dim=32 and needs ofs"):
        _call(models["v15"])
    with pytest.raises(ValueError, match=r"ofs was given but this model has no ofs embedding"):
        _call(models["rope"], ofs=2.0)


def test_rope_grid_argument(models):
    with pytest.raises(
        ValueError, match=r"rope_grid must be one of 'linspace', 'slice', got 'cubic'"
    ):
        _call(models["rope"], rope_grid="cubic")
    with pytest.raises(ValueError, match=r"rope_grid='slice' was given but this model has no RoPE"):
        _call(models["sincos"], rope_grid="slice")


def test_attention_backend_argument(models):
    with pytest.raises(
        ValueError,
        match=r"attention_backend must be one of 'sdpa', 'xformers', 'math', got 'flash'",
    ):
        _call(models["rope"], attention_backend="flash")


def test_sincos_any_text_length(models):
    """Text rows carry no absolute position, so the 2B model takes any text length."""
    assert _call(models["sincos"], text=torch.zeros(1, 3, 32)).shape == (1, 2, 4, 8, 12)
