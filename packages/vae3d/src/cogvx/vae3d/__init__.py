"""cogvx.vae3d: the CogVideoX 3D causal VAE (weight-compatible with diffusers'
`AutoencoderKLCogVideoX`), with streaming (causal conv cache) and tiled encode/decode.

    from cogvx.vae3d import CausalVAE3D
    vae = CausalVAE3D.from_pretrained("path/to/vae")
    z = vae.encode(video).mode()     # video [B,3,F,H,W] in [-1,1] -> unscaled latents
    video = vae.decode(z)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ imports them
    from cogvx.vae3d.config import VAEConfig
    from cogvx.vae3d.convert import convert_sat_state_dict, sat_to_diffusers_key
    from cogvx.vae3d.latent_basis import fold_latent_transform, latent_whitening
    from cogvx.vae3d.model import (
        CacheStep,
        CausalCache,
        CausalVAE3D,
        DiagonalGaussian,
        RuntimeOptions,
    )
    from cogvx.vae3d.streaming import Tiling, chunk_bounds

# Public name -> submodule, imported on first use: `cogvx vae --help` and the config checks run
# without importing torch.
_EXPORTS: dict[str, str] = {
    "VAEConfig": "config",
    "convert_sat_state_dict": "convert",
    "sat_to_diffusers_key": "convert",
    "fold_latent_transform": "latent_basis",
    "latent_whitening": "latent_basis",
    "CacheStep": "model",
    "CausalCache": "model",
    "CausalVAE3D": "model",
    "DiagonalGaussian": "model",
    "RuntimeOptions": "model",
    "Tiling": "streaming",
    "chunk_bounds": "streaming",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.vae3d' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.vae3d.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CacheStep",
    "CausalCache",
    "CausalVAE3D",
    "DiagonalGaussian",
    "RuntimeOptions",
    "Tiling",
    "VAEConfig",
    "chunk_bounds",
    "convert_sat_state_dict",
    "fold_latent_transform",
    "latent_whitening",
    "sat_to_diffusers_key",
]
