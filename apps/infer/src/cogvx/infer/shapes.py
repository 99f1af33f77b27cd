"""Frame-count and size rules of a CogVideoX model, checked before any work is done.

docs/pipelines.md §Shape rules: the VAE takes ``F = 4k + 1`` frames (``temporal_compression_ratio`` k) and 8x spatial
compression; the transformer patchifies ``patch_size`` latents (16 px with the 8x VAE) and, for 1.5,
``patch_size_t`` latent frames. The released models were trained on ``8N + 1`` frames (1.0: 13 latent
frames for 49) and ``16N + 1`` (1.5: 21 latent frames, padded to 22, for 81). The 5B-I2V model has a
learned position table, so it only runs at exactly its native size (docs/transformer.md §Learned).

Sizes that break these rules silently corrupt the output in the reference (a mis-sized VAE tile, a
wrong RoPE grid); here they raise a ValueError that names the nearest valid value, or are snapped
to it when the caller asks (``snap=True``), with the change logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["FamilyDefaults", "ShapeRules", "VideoShape"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FamilyDefaults:
    """Default size, frame count and playback rate of a model family (docs/pipelines.md §Defaults; CogVideo ``inference/cli_demo.py``)."""

    height: int
    width: int
    num_frames: int
    fps: int


@dataclass(frozen=True)
class VideoShape:
    """A checked request: pixel size and frames, and the latent frames the sampler runs on."""

    num_frames: int
    height: int
    width: int
    latent_frames: int  # (num_frames - 1) / tcr + 1
    padded_latent_frames: int  # rounded up to a multiple of patch_size_t (1.5)

    @property
    def additional_frames(self) -> int:
        """Leading latent frames added for ``patch_size_t`` and dropped before decoding."""
        return self.padded_latent_frames - self.latent_frames


def _nearest(value: int, offset: int, step: int, minimum: int) -> int:
    """The value ``offset + k * step`` (k >= 0, result >= minimum) nearest to ``value`` (ties up)."""
    k = max(round((value - offset) / step + 1e-9), 0)
    return max(offset + k * step, minimum)


@dataclass(frozen=True)
class ShapeRules:
    """What sizes a (transformer, VAE) pair accepts; build with :meth:`for_model`."""

    spatial_factor: int = 8  # VAE
    temporal_factor: int = 4  # VAE
    patch_size: int = 2
    patch_size_t: int | None = None
    # The learned position table's native (frames, height, width) in pixels, if the model has one.
    fixed_size: tuple[int, int, int] | None = None
    sample_height: int = 60  # latents (transformer config)
    sample_width: int = 90
    sample_frames: int = 49  # pixels

    @classmethod
    def for_model(cls, dit_config, *, spatial_factor: int = 8) -> ShapeRules:
        """Rules of a transformer config (``DiTConfig`` or anything with its fields)."""
        fixed = None
        if getattr(dit_config, "use_learned_positional_embeddings", False):
            fixed = (
                dit_config.sample_frames,
                dit_config.sample_height * spatial_factor,
                dit_config.sample_width * spatial_factor,
            )
        return cls(
            spatial_factor=spatial_factor,
            temporal_factor=dit_config.temporal_compression_ratio,
            patch_size=dit_config.patch_size,
            patch_size_t=dit_config.patch_size_t,
            fixed_size=fixed,
            sample_height=dit_config.sample_height,
            sample_width=dit_config.sample_width,
            sample_frames=dit_config.sample_frames,
        )

    # ---- the rules ------------------------------------------------------------------------------

    @property
    def is_v15(self) -> bool:
        return self.patch_size_t is not None

    @property
    def size_multiple(self) -> int:
        """Pixel height/width must be multiples of this (VAE factor x patch size: 16)."""
        return self.spatial_factor * self.patch_size

    @property
    def frame_step(self) -> int:
        """Frames are ``frame_step * N + 1``: 8 for 1.0, 16 for 1.5 (the trained counts)."""
        return 2 * self.temporal_factor * (self.patch_size_t or 1)

    def defaults(self) -> FamilyDefaults:
        """Family defaults. 1.0: the config's sample size (480x720x49 at 8 fps). 1.5: 768x1360x81 at
        16 fps unless the config's sample size is smaller (a reduced model): the released 1.5 configs
        may say ``sample_height=300`` (2400 px, docs/pipelines.md §Defaults), which is never used."""
        h = self.sample_height * self.spatial_factor
        w = self.sample_width * self.spatial_factor
        if not self.is_v15:
            return FamilyDefaults(h, w, self.sample_frames, fps=8)
        if h * w > 768 * 1360:
            h, w = 768, 1360
        frames = min(self.sample_frames, 81) if self.sample_frames > 1 else 81
        frames = _nearest(frames, 1, self.frame_step, 1 + self.frame_step)
        return FamilyDefaults(h, w, frames, fps=16)

    def check(
        self,
        num_frames: int,
        height: int,
        width: int,
        *,
        snap: bool = False,
        strict_frames: bool = True,
    ) -> VideoShape:
        """Validate (or, with ``snap``, round to the nearest valid) frames and size.

        ``strict_frames`` requires the family's ``8N + 1`` / ``16N + 1`` counts; without it any
        ``4k + 1`` count the VAE accepts is allowed (the reference pipelines allow it).
        """
        for name, value in (("num_frames", num_frames), ("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        step = self.frame_step if strict_frames else self.temporal_factor
        frames_ok = (num_frames - 1) % step == 0 and num_frames > 1
        if not frames_ok:
            nearest = _nearest(num_frames, 1, step, 1 + step)
            rule = f"{step}N+1"
            if not snap:
                hint = (
                    ""
                    if not strict_frames
                    else f" (any {self.temporal_factor}k+1 count with strict_frames=False)"
                )
                raise ValueError(
                    f"num_frames={num_frames} is not valid for this model: frames must be {rule}"
                    f"{hint}; the nearest valid value is {nearest} (or ask for snapping)"
                )
            logger.warning("num_frames %d snapped to %d (%s)", num_frames, nearest, rule)
            num_frames = nearest
        m = self.size_multiple
        sizes = {"height": height, "width": width}
        for name, value in list(sizes.items()):
            if value % m:
                nearest = _nearest(value, 0, m, m)
                if not snap:
                    raise ValueError(
                        f"{name}={value} is not a multiple of {m} (VAE factor {self.spatial_factor} x "
                        f"patch size {self.patch_size}); the nearest valid value is {nearest} "
                        "(or ask for snapping)"
                    )
                logger.warning("%s %d snapped to %d (multiple of %d)", name, value, nearest, m)
                sizes[name] = nearest
        height, width = sizes["height"], sizes["width"]
        if self.fixed_size is not None and (num_frames, height, width) != self.fixed_size:
            f, h, w = self.fixed_size
            raise ValueError(
                f"this model has a learned position table and only runs at num_frames={f}, "
                f"height={h}, width={w}; got num_frames={num_frames}, height={height}, width={width}"
            )
        latent = (num_frames - 1) // self.temporal_factor + 1
        pt = self.patch_size_t or 1
        padded = latent + (-latent) % pt
        return VideoShape(num_frames, height, width, latent, padded)
