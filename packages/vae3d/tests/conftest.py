"""Fixtures: tiny VAE configs, our model and the diffusers reference with the same weights."""

from __future__ import annotations

import pytest
import torch

from cogvx.vae3d import CausalVAE3D, VAEConfig

# The test machine is shared by many processes: one intra-op thread avoids OpenMP spin contention
# (tiny convs gain nothing from more threads).
torch.set_num_threads(1)


def _rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """The project's exactness measure: max|ours - ref| / max|ref|."""
    assert ours.shape == ref.shape, (tuple(ours.shape), tuple(ref.shape))
    return float((ours.double() - ref.double()).abs().max() / ref.double().abs().max())


def _reference_vae(config: VAEConfig):
    """diffusers' AutoencoderKLCogVideoX built from the same config (dev-only dependency)."""
    diffusers = pytest.importorskip("diffusers")
    kwargs = {k: v for k, v in config.to_dict().items() if not k.startswith("_")}
    return diffusers.AutoencoderKLCogVideoX(**kwargs).eval()


def _randomize_(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights with non-trivial norms (GroupNorm affine and SpatialNorm convs not at init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm_layer.weight") or (
                ".norm" in name and name.endswith(".weight") and p.ndim == 1
            ):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5)


@pytest.fixture(scope="session")
def tiny_config() -> VAEConfig:
    return VAEConfig.tiny()


@pytest.fixture(scope="session")
def tiny_vae(tiny_config) -> CausalVAE3D:
    """Ours with random weights, eval mode (no diffusers needed: the floor-version smoke run)."""
    ours = CausalVAE3D(tiny_config).eval()
    _randomize_(ours)
    return ours


@pytest.fixture(scope="session")
def tiny_pair(tiny_vae, tiny_config):
    """(ours, reference) with identical random weights, eval mode."""
    ref = _reference_vae(tiny_config)
    ref.load_state_dict(tiny_vae.state_dict(), strict=True)
    return tiny_vae, ref


def _video(b: int = 1, f: int = 9, h: int = 32, w: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((b, 3, f, h, w), generator=g) * 2 - 1


# Helpers as fixtures (tests cannot import conftest under --import-mode=importlib).
@pytest.fixture(scope="session")
def rel_err():
    return _rel_err


@pytest.fixture(scope="session")
def make_video():
    return _video


@pytest.fixture(scope="session")
def randomize():
    return _randomize_


@pytest.fixture(scope="session")
def make_reference():
    return _reference_vae
