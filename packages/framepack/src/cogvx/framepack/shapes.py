"""Training shapes: from a sample's pixel shape to the shape and token count the model sees.

Two things decide a sample's cost in the transformer (docs/data.md §Training shapes, docs/transformer.md §Patch embedding):

* the model geometry: the VAE compresses 4x in time (pixel frames must be ``4k+1``) and 8x in space;
  the transformer patchifies ``patch_size_t x patch_size x patch_size`` latent cells into one token
  and prepends a fixed number of text tokens (226 for CogVideoX 1.0);
* the resolution stage of progressive training (paper sec. 3 / App. A, Table 5): the short side is
  brought to 256, 512 or 768 px with the aspect ratio kept, under an area limit, and the clip is
  limited to a maximum number of frames.

Everything here is a pure function of plain integers, so the planner can be tested without video
files and without torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ModelGeometry",
    "ResolutionStage",
    "SampleShape",
    "TrainShape",
    "UnfitSample",
    "assign_train_shape",
]


class UnfitSample(ValueError):
    """A sample that cannot be given a training shape; ``reason`` is a short stable key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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
        """Read the geometry from a transformer ``config.json`` mapping (diffusers key names) or
        from any object with those attributes (e.g. ``cogvx.expert_dit.DiTConfig``)."""

        def get(key: str, default: Any) -> Any:
            if isinstance(config, Mapping):
                return config.get(key, default)
            return getattr(config, key, default)

        return cls(
            temporal_compression=int(get("temporal_compression_ratio", 4)),
            spatial_compression=8,
            patch_size=int(get("patch_size", 2)),
            patch_size_t=get("patch_size_t", None),
            text_tokens=int(get("max_text_seq_length", 226)),
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

        This is how the CogVideoX1.5 fine-tuning code makes 21 latent frames into 22 (docs/data.md §Training shapes);
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


@dataclass(frozen=True)
class ResolutionStage:
    """One stage of progressive training (paper Table 5): a short-side target and limits.

    ``short_side``: the short side is scaled to this (aspect ratio kept) unless the area limit is
    reached first. ``max_area``: pixel area limit; the default ``1.5 * short_side**2`` is Table 5's
    256x384 for stage 1. ``max_frames``: longest clip in pixel frames (``4k+1``); longer clips are
    cut to a window of this length (``clip_long=True``, counted in the plan report) or skipped.
    ``fps``: when set, a video's frame count is first converted to this frame rate (as the SAT
    data loader resamples to 8 fps). ``upscale``: allow enlarging smaller inputs (off by default).
    """

    short_side: int
    max_area: int | None = None
    max_frames: int = 49
    fps: float | None = None
    upscale: bool = False
    clip_long: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.short_side, int) or self.short_side < 16:
            raise ValueError(
                f"ResolutionStage.short_side must be an int >= 16, got {self.short_side!r}"
            )
        if self.max_area is not None and (
            not isinstance(self.max_area, int) or self.max_area < 256
        ):
            raise ValueError(
                f"ResolutionStage.max_area must be None or an int >= 256, got {self.max_area!r}"
            )
        if not isinstance(self.max_frames, int) or self.max_frames < 1:
            raise ValueError(
                f"ResolutionStage.max_frames must be a positive int, got {self.max_frames!r}"
            )
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"ResolutionStage.fps must be None or > 0, got {self.fps!r}")

    @property
    def area(self) -> int:
        return self.max_area if self.max_area is not None else (3 * self.short_side**2) // 2

    @classmethod
    def progressive(cls, short_side: int, *, max_frames: int = 49, fps: float | None = None):
        """The paper's 256 / 512 / 768 stages with the default 3:2 area limit."""
        return cls(short_side=short_side, max_frames=max_frames, fps=fps)


@dataclass(frozen=True)
class SampleShape:
    """A sample as stored: pixel frames (1 for an image), height, width, and its frame rate."""

    frames: int
    height: int
    width: int
    fps: float | None = None


@dataclass(frozen=True)
class TrainShape:
    """The shape a sample is trained at.

    ``frames``/``height``/``width`` are pixels (the loader resizes to cover ``height x width`` and
    center-crops, then takes ``frames`` consecutive frames after resampling to the stage fps);
    ``latent_frames`` is what the VAE yields and ``latent_pad`` the prepended copies of the first
    latent frame; ``tokens`` = text + video tokens. ``clipped`` says the clip was cut to the
    stage's ``max_frames``.
    """

    frames: int
    height: int
    width: int
    latent_frames: int
    latent_pad: int
    video_tokens: int
    tokens: int
    clipped: bool = False

    @property
    def key(self) -> tuple[int, int, int]:
        """Bucket key: samples with equal keys have equal latent shapes."""
        return (self.latent_frames + self.latent_pad, self.height, self.width)


def _usable_frames(shape: SampleShape, stage: ResolutionStage) -> int:
    """Frames available after resampling to the stage fps (never more than stored)."""
    if stage.fps is None or shape.fps is None or shape.frames == 1:
        return shape.frames
    return max(1, min(shape.frames, math.floor(shape.frames * stage.fps / shape.fps + 1e-9)))


def assign_train_shape(
    shape: SampleShape, stage: ResolutionStage, geometry: ModelGeometry
) -> TrainShape:
    """Map a sample to its training shape, or raise :class:`UnfitSample` with a reason.

    Frames: the longest ``4k+1`` count that fits the clip (after fps resampling) and the stage.
    Size: scaled by ``min(short_side / short, sqrt(area / (h*w)))`` (never above 1 unless
    ``stage.upscale``), each side then rounded down to a multiple of 16 px, so the area limit
    holds and the aspect ratio changes only by the rounding.
    """
    for name in ("frames", "height", "width"):
        value = getattr(shape, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UnfitSample("bad_shape", f"{name} must be an int, got {value!r}")
        if value <= 0:
            raise UnfitSample(f"zero_{name}", f"{name}={value} (empty or corrupt sample)")
    if shape.fps is not None and not (shape.fps > 0 and math.isfinite(shape.fps)):
        raise UnfitSample("bad_fps", f"fps={shape.fps!r}")

    tc = geometry.temporal_compression
    frames = _usable_frames(shape, stage)
    frames = (frames - 1) // tc * tc + 1
    stage_max = (stage.max_frames - 1) // tc * tc + 1
    clipped = frames > stage_max
    if clipped:
        if not stage.clip_long:
            raise UnfitSample("too_long", f"{frames} frames > stage max_frames {stage.max_frames}")
        frames = stage_max

    h, w = shape.height, shape.width
    scale = min(stage.short_side / min(h, w), math.sqrt(stage.area / (h * w)))
    if not stage.upscale:
        scale = min(scale, 1.0)
    m = geometry.pixel_multiple
    th = int(h * scale + 1e-6) // m * m
    tw = int(w * scale + 1e-6) // m * m
    if th < m or tw < m:
        raise UnfitSample(
            "too_small",
            f"{h}x{w} scales to {h * scale:.1f}x{w * scale:.1f} px, less than one {m} px patch",
        )
    t = geometry.latent_frames(frames)
    pad = geometry.latent_pad(t)
    video = geometry.video_tokens(frames, th, tw)
    return TrainShape(
        frames=frames,
        height=th,
        width=tw,
        latent_frames=t,
        latent_pad=pad,
        video_tokens=video,
        tokens=geometry.text_tokens + video,
        clipped=clipped,
    )
