"""cogvx.vae3d: the CogVideoX 3D causal VAE (weight-compatible with diffusers'
`AutoencoderKLCogVideoX`), with streaming (causal conv cache) and tiled encode/decode.

    from cogvx.vae3d import CausalVAE3D
    vae = CausalVAE3D.from_pretrained("path/to/vae")
    z = vae.encode(video).mode()     # video [B,3,F,H,W] in [-1,1] -> unscaled latents
    video = vae.decode(z)
"""

from .config import VAEConfig
from .convert import convert_sat_state_dict, sat_to_diffusers_key
from .model import CacheStep, CausalCache, CausalVAE3D, DiagonalGaussian, RuntimeOptions
from .streaming import Tiling, chunk_bounds

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
    "sat_to_diffusers_key",
]
