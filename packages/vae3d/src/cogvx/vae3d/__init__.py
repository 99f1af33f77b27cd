"""cogvx.vae3d: the CogVideoX 3D causal VAE (weight-compatible with diffusers'
`AutoencoderKLCogVideoX`), with streaming (causal conv cache) and tiled encode/decode.

    from cogvx.vae3d import CausalVAE3D
    vae = CausalVAE3D.from_pretrained("path/to/vae")
    z = vae.encode(video).mode()     # video [B,3,F,H,W] in [-1,1] -> unscaled latents
    video = vae.decode(z)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

# Submodule -> its public names, imported on first use (lazy_loader.attach, PEP 562): `cogvx vae --help` and the config checks run
# without importing torch.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["VAEConfig"],
        "convert": ["convert_sat_state_dict", "sat_to_diffusers_key"],
        "latent_basis": ["fold_latent_transform", "latent_whitening"],
        "model": ["CacheStep", "CausalCache", "CausalVAE3D", "DiagonalGaussian", "RuntimeOptions"],
        "streaming": ["Tiling", "chunk_bounds"],
    },
)


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
