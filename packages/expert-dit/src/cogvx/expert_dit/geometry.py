"""One source of latent and patch geometry: VAE compression x transformer patching.

Everything that turns a pixel size into latent sizes, a token grid or a token count derives it
here from the two model configs (``VAEConfig`` for the compression, ``DiTConfig`` for the patch
sizes and text length; docs/architecture.md). The VAE compresses time 4x (pixel clips have
``4k + 1`` frames) and space 8x; the transformer turns ``patch_size_t x patch_size x patch_size``
latent cells into one token (CogVideoX paper §3.1). :func:`patchify` / :func:`unpatchify` are the
one token layout used by the transformer's patch embedding, the packed forward and the frame-pack
collation: tokens ``(t, h, w)`` row-major, features ``(c, pt, ph, pw)`` (the order of the 1.0
``Conv2d`` weight flattened and of the 1.5 ``Linear``, diffusers ``CogVideoXPatchEmbed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from einops import rearrange
from torch import Tensor

__all__ = ["ModelGeometry", "patchify", "unpatchify"]


def patchify(latents: Tensor, patch_size: int, patch_size_t: int | None = None) -> Tensor:
    """``latents [B, F, C, H, W]`` (F divisible by pt, H, W by p) -> tokens ``[B, N, C*pt*p*p]``."""
    return rearrange(
        latents,
        "b (t o) c (h p) (w q) -> b (t h w) (c o p q)",
        o=patch_size_t or 1,
        p=patch_size,
        q=patch_size,
    )


def unpatchify(
    tokens: Tensor,
    grid: tuple[int, int, int],
    patch_size: int,
    patch_size_t: int | None = None,
) -> Tensor:
    """Inverse of :func:`patchify`: ``tokens [B, N, C*pt*p*p]`` on ``grid (T, Hp, Wp)`` -> ``[B, F, C, H, W]``."""
    t, h, w = grid
    return rearrange(
        tokens,
        "b (t h w) (c o p q) -> b (t o) c (h p) (w q)",
        t=t,
        h=h,
        w=w,
        o=patch_size_t or 1,
        p=patch_size,
        q=patch_size,
    )


def _get(config: Mapping[str, Any] | Any, key: str, default: Any) -> Any:
    if isinstance(config, Mapping):
        return config.get(key, default)
    return getattr(config, key, default)


@dataclass(frozen=True)
class ModelGeometry:
    """The parts of the VAE + transformer configs that decide token counts.

    Defaults are CogVideoX 1.0 (2B / 5B): 4x temporal, 8x spatial VAE compression, 2x2 patches,
    no temporal patching, 226 text tokens.
    """

    temporal_compression: int = 4
    spatial_compression: int = 8
    patch_size: int = 2
    patch_size_t: int | None = None
    text_tokens: int = 226

    def __post_init__(self) -> None:
        for name in ("temporal_compression", "spatial_compression", "patch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelGeometry.{name} must be a positive int, got {value!r}")
        if self.patch_size_t is not None and (
            not isinstance(self.patch_size_t, int) or self.patch_size_t < 1
        ):
            raise ValueError(
                f"ModelGeometry.patch_size_t must be None or a positive int, got {self.patch_size_t!r}"
            )
        if not isinstance(self.text_tokens, int) or self.text_tokens < 0:
            raise ValueError(
                f"ModelGeometry.text_tokens must be a non-negative int, got {self.text_tokens!r}"
            )

    @classmethod
    def cogvideox(cls) -> ModelGeometry:
        """CogVideoX-2B / 5B / 5B-I2V: patch (1, 2, 2), 226 text tokens."""
        return cls()

    @classmethod
    def cogvideox15(cls) -> ModelGeometry:
        """CogVideoX1.5-5B: patch (2, 2, 2); 224 text tokens in the SAT code (docs/pipelines.md §Text encoder)."""
        return cls(patch_size_t=2, text_tokens=224)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any) -> ModelGeometry:
        """The geometry of a transformer config with the released VAEs' 8x spatial compression.

        ``config``: a ``DiTConfig`` or a transformer ``config.json`` mapping. Prefer
        :meth:`from_configs` when the VAE config is at hand.
        """
        return cls.from_configs(config, None)

    @classmethod
    def from_configs(
        cls, dit_config: Mapping[str, Any] | Any, vae_config: Mapping[str, Any] | Any | None
    ) -> ModelGeometry:
        """The geometry of a (transformer, VAE) pair: configs or their ``config.json`` mappings.

        Spatial compression ``2 ** (len(block_out_channels) - 1)`` and temporal compression
        ``temporal_compression_ratio`` come from the VAE (8 and 4 when ``vae_config`` is None;
        a VAE whose temporal ratio disagrees with the transformer's is refused); the patch sizes
        and the text length from the transformer.
        """
        temporal = int(_get(dit_config, "temporal_compression_ratio", 4))
        spatial = 8
        if vae_config is not None:
            blocks = _get(vae_config, "block_out_channels", None)
            if not isinstance(blocks, (list, tuple)) or not blocks:
                raise ValueError(
                    f"vae_config.block_out_channels={blocks!r}: expected a non-empty list"
                )
            spatial = 2 ** (len(blocks) - 1)
            vae_temporal = _get(vae_config, "temporal_compression_ratio", 4)
            if int(vae_temporal) != temporal:
                raise ValueError(
                    f"vae_config.temporal_compression_ratio={vae_temporal!r} does not match the "
                    f"transformer's temporal_compression_ratio={temporal}"
                )
        return cls(
            temporal_compression=temporal,
            spatial_compression=spatial,
            patch_size=int(_get(dit_config, "patch_size", 2)),
            patch_size_t=_get(dit_config, "patch_size_t", None),
            text_tokens=int(_get(dit_config, "max_text_seq_length", 226)),
        )

    @property
    def pt(self) -> int:
        """Temporal patch size, 1 when the model has none."""
        return self.patch_size_t or 1

    @property
    def pixel_multiple(self) -> int:
        """Height and width must be multiples of this (one patch of latents), 16 px by default."""
        return self.spatial_compression * self.patch_size

    def latent_frames(self, pixel_frames: int) -> int:
        """Latent frames of a valid ``k*temporal_compression + 1`` pixel clip (docs/vae.md §Shapes)."""
        if pixel_frames < 1 or (pixel_frames - 1) % self.temporal_compression:
            raise ValueError(
                f"pixel_frames must be {self.temporal_compression}k+1 (1, "
                f"{self.temporal_compression + 1}, ...), got {pixel_frames}"
            )
        return (pixel_frames - 1) // self.temporal_compression + 1

    def latent_pad(self, latent_frames: int) -> int:
        """Copies of the first latent frame prepended so that the count divides ``patch_size_t``.

        This is how the CogVideoX1.5 fine-tuning code makes 21 latent frames into 22 (docs/data.md);
        zero for models without temporal patching.
        """
        return (-latent_frames) % self.pt

    def video_tokens(self, pixel_frames: int, height: int, width: int) -> int:
        """Video tokens of a ``pixel_frames x height x width`` clip, after the temporal padding."""
        m = self.pixel_multiple
        if height % m or width % m or height < m or width < m:
            raise ValueError(
                f"height and width must be positive multiples of {m}, got {height}x{width}"
            )
        t = self.latent_frames(pixel_frames)
        t_pad = t + self.latent_pad(t)
        return (t_pad // self.pt) * (height // m) * (width // m)

    def sample_tokens(self, pixel_frames: int, height: int, width: int) -> int:
        """Text plus video tokens of one sample in the joint sequence."""
        return self.text_tokens + self.video_tokens(pixel_frames, height, width)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent ``(h, w)`` of a pixel size (multiples of the spatial compression)."""
        s = self.spatial_compression
        if height % s or width % s or height < s or width < s:
            raise ValueError(
                f"height and width must be positive multiples of {s}, got {height}x{width}"
            )
        return height // s, width // s

    def token_grid(
        self, latent_frames: int, latent_height: int, latent_width: int
    ) -> tuple[int, int, int]:
        """Token grid ``(T, Hp, Wp)`` of latents (frames already padded to a multiple of pt)."""
        if (
            latent_frames % self.pt
            or latent_height % self.patch_size
            or latent_width % self.patch_size
        ):
            raise ValueError(
                f"latents of {latent_frames} frames x {latent_height}x{latent_width} do not divide "
                f"into patches of {self.pt}x{self.patch_size}x{self.patch_size}"
            )
        return (
            latent_frames // self.pt,
            latent_height // self.patch_size,
            latent_width // self.patch_size,
        )
