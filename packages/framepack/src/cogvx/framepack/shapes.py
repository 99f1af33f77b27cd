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
from dataclasses import dataclass

from cogvx.expert_dit.geometry import ModelGeometry

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
