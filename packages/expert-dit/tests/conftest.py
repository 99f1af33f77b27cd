"""Test environment for cogvx-expert-dit.

Triton kernels are checked on CPU through Triton's interpreter, which reads ``TRITON_INTERPRET``
when triton is first imported, so it is set here before any test module imports the kernels.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

from hypothesis import settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# --------------------------------------------------------------------------- model fixtures
import dataclasses  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from cogvx.expert_dit.config import DiTConfig  # noqa: E402

#: The five released variants at test size (2 heads x 16, 2 layers, text width 32, 4 channels).
TINY_VARIANTS = {
    "2b-sincos": DiTConfig.tiny(),
    "5b-rope": DiTConfig.tiny(use_rotary_positional_embeddings=True),
    "5b-i2v-learned-rope": DiTConfig.tiny(
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
        in_channels=8,
    ),
    "1.5-slice-rope": DiTConfig.tiny(
        use_rotary_positional_embeddings=True,
        patch_size_t=2,
        patch_bias=False,
        sample_frames=13,
        sample_height=16,
        sample_width=16,
    ),
    "1.5-i2v-ofs": DiTConfig.tiny(
        use_rotary_positional_embeddings=True,
        patch_size_t=2,
        patch_bias=False,
        sample_frames=13,
        sample_height=16,
        sample_width=16,
        in_channels=8,
        ofs_embed_dim=32,
    ),
}


@pytest.fixture(params=sorted(TINY_VARIANTS))
def tiny_config(request: pytest.FixtureRequest) -> DiTConfig:
    """Each released variant at test size."""
    return TINY_VARIANTS[request.param]


def randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.3) -> dict[str, torch.Tensor]:
    """Fill EVERY parameter and persistent buffer (zero-init ones too) with N(0, std^2); returns
    the state dict that was loaded."""
    generator = torch.Generator().manual_seed(seed)
    state = {
        k: torch.randn(v.shape, generator=generator, dtype=torch.float32).to(v.dtype) * std
        for k, v in module.state_dict().items()
    }
    # LayerNorm gains near 1 keep activations in a sensible range through the blocks.
    gains = {
        f"{name}.weight" for name, m in module.named_modules() if isinstance(m, torch.nn.LayerNorm)
    }
    state = {k: (1 + v if k in gains else v) for k, v in state.items()}
    module.load_state_dict(state)
    return state


def reference_model(config: DiTConfig):
    """diffusers ``CogVideoXTransformer3DModel`` built from the same config (eval mode)."""
    from diffusers import CogVideoXTransformer3DModel

    return CogVideoXTransformer3DModel(**dataclasses.asdict(config)).eval()


def reference_rope(config: DiTConfig, latent_frames: int, latent_h: int, latent_w: int):
    """RoPE (cos, sin) from diffusers' own pipeline helper (``_prepare_rotary_positional_
    embeddings``; it only reads ``transformer.config`` and ``vae_scale_factor_spatial``)."""
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import CogVideoXPipeline

    pipe = SimpleNamespace(
        transformer=SimpleNamespace(config=SimpleNamespace(**dataclasses.asdict(config))),
        vae_scale_factor_spatial=8,
    )
    return CogVideoXPipeline._prepare_rotary_positional_embeddings(
        pipe, latent_h * 8, latent_w * 8, latent_frames, torch.device("cpu")
    )


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """The project's exactness measure: max|ours - ref| / max|ref|."""
    return ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@pytest.fixture
def tiny_variants() -> dict[str, DiTConfig]:
    return dict(TINY_VARIANTS)


@pytest.fixture
def helpers() -> SimpleNamespace:
    return SimpleNamespace(
        randomize=randomize,
        reference_model=reference_model,
        reference_rope=reference_rope,
        rel_err=rel_err,
    )
