"""Prompt adherence on the shapes task by classical vision: colour, shape and direction.

docs/evals.md, "shapes". Per frame, the foreground is the set of saturated pixels (the background
is grey, saturation 0), cleaned by a 3x3 morphological opening and reduced to its largest
connected component. Then, over the whole clip:

* **colour**: the circular mean of the foreground pixels' hue, assigned to the nearest of the
  vocabulary's six hues (they are 60 degrees apart, so any error below 30 degrees is correct);
* **shape**: per frame, the component is compared with the three ideal shapes fitted to its
  bounding box (the inscribed ellipse, the box itself, the upright triangle with its base on the
  box's bottom edge and its apex at the top centre) by intersection over union; the shape with the
  highest IoU averaged over frames wins. (The bounding-box fill ratio alone, pi/4 vs 1/2, is not
  enough for small shapes: anti-aliased edges and a lost apex pixel move a 10-pixel triangle's
  ratio to 0.7.)
* **direction**: a least-squares line through the centroid track; its displacement from the first
  to the last frame, as a fraction of the frame width (x) and height (y), is "still" when both
  components are below :data:`STILL_MAX_DISPLACEMENT` (half the generator's minimum travel),
  otherwise the sign of the larger component (y grows downwards: negative is "up").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from cogvx.evals.shapes.vocabulary import (
    COLOR_HUES,
    MIN_TRAVEL_FRACTION,
    SHAPES,
    ShapesPrompt,
    require_prompt,
)

__all__ = [
    "MIN_FOREGROUND_FRACTION",
    "SATURATION_THRESHOLD",
    "STILL_MAX_DISPLACEMENT",
    "VALUE_THRESHOLD",
    "ShapesMeasurement",
    "ShapesReport",
    "ShapesScore",
    "as_frames",
    "evaluate_shapes",
    "measure_video",
    "score_video",
]

SATURATION_THRESHOLD = 0.5
"""A pixel is foreground when its HSV saturation is at least this (grey background: 0)."""

VALUE_THRESHOLD = 0.25
"""... and its HSV value at least this: near-black pixels have meaningless hue."""

MIN_FOREGROUND_FRACTION = 0.005
"""A frame's largest saturated component counts only if it covers this fraction of the frame."""

STILL_MAX_DISPLACEMENT = MIN_TRAVEL_FRACTION / 2
"""Largest displacement (fraction of the frame side) still called "still": half the minimum travel
of a moving shape, so the two classes are split at the midpoint."""

_BLURS = (0.0, 0.75, 1.5, 2.25)
"""Gaussian blurs (sigma, px) tried on each ideal shape before comparing it with a frame."""

FLOAT_RANGE_TOLERANCE = 1e-3
"""Float frames may exceed [0, 1] by this much (rounding in a decoder) before being refused."""


def as_frames(video: Any) -> np.ndarray:
    """A video as uint8 ``[F, H, W, 3]`` RGB.

    Accepts uint8 ``[F, H, W, 3]`` (numpy or torch), float ``[F, 3, H, W]`` in [0, 1] (what the
    pipelines return with ``output_type="pt"``/``"np"`` per video), or a sequence of PIL images.
    Float frames outside [0, 1] (e.g. [0, 255] floats) are refused with the observed range.
    """
    if isinstance(video, Sequence) and video and hasattr(video[0], "convert"):
        return np.stack([np.asarray(im.convert("RGB")) for im in video])
    if hasattr(video, "detach"):  # torch.Tensor without importing torch
        video = video.detach().cpu().float().numpy() if video.is_floating_point() else video.numpy()
    arr = np.asarray(video)
    if arr.ndim != 4:
        raise ValueError(
            f"video: expected uint8 [F, H, W, 3] or float [F, 3, H, W], got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"video: no pixels, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        if arr.shape[-1] != 3:
            raise ValueError(f"video: uint8 frames must be [F, H, W, 3], got shape {arr.shape}")
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"video: expected dtype uint8 or a float dtype, got {arr.dtype}")
    if arr.shape[1] != 3:
        raise ValueError(f"video: float frames must be [F, 3, H, W], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("video: float frames contain NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -FLOAT_RANGE_TOLERANCE or hi > 1 + FLOAT_RANGE_TOLERANCE:
        raise ValueError(
            f"video: float frames must be in [0, 1], observed range [{lo:g}, {hi:g}] "
            "(give [0, 255] data as uint8)"
        )
    u8 = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(u8.transpose(0, 2, 3, 1))  # [F, 3, H, W] -> [F, H, W, 3]


@dataclass(frozen=True)
class ShapesMeasurement:
    """What the evaluator sees in a clip; ``None`` fields could not be measured."""

    color: str | None
    shape: str | None
    motion: str | None
    hue: float | None
    """Circular mean hue of the foreground in degrees [0, 360)."""
    fill_ratio: float | None
    """Median over frames of component area / bounding-box area (diagnostic)."""
    shape_error: float | None
    """Mean over frames of the chosen shape's fitting error (squared error / area; 0 is exact)."""
    displacement: tuple[float, float] | None
    """Fitted centroid displacement first -> last frame, as fractions of (width, height)."""
    foreground_frames: int
    """Frames in which a foreground component was found."""
    frames: int


@dataclass(frozen=True)
class ShapesScore:
    """One video scored against its prompt."""

    prompt: ShapesPrompt
    measured: ShapesMeasurement
    name: str = ""

    @property
    def color_correct(self) -> bool:
        return self.measured.color == self.prompt.color

    @property
    def shape_correct(self) -> bool:
        return self.measured.shape == self.prompt.shape

    @property
    def motion_correct(self) -> bool:
        return self.measured.motion == self.prompt.motion

    @property
    def all_correct(self) -> bool:
        return self.color_correct and self.shape_correct and self.motion_correct

    def to_dict(self) -> dict[str, Any]:
        m = self.measured
        return {
            "name": self.name,
            "prompt": {
                "color": self.prompt.color,
                "shape": self.prompt.shape,
                "motion": self.prompt.motion,
            },
            "measured": {
                "color": m.color,
                "shape": m.shape,
                "motion": m.motion,
                "hue": m.hue,
                "fill_ratio": m.fill_ratio,
                "shape_error": m.shape_error,
                "displacement": list(m.displacement) if m.displacement else None,
                "foreground_frames": m.foreground_frames,
                "frames": m.frames,
            },
            "correct": {
                "color": self.color_correct,
                "shape": self.shape_correct,
                "motion": self.motion_correct,
            },
        }


@dataclass(frozen=True)
class ShapesReport:
    """Accuracy (percent) over a set of scored videos."""

    scores: tuple[ShapesScore, ...] = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.scores)

    def _pct(self, attr: str) -> float:
        if not self.scores:
            return math.nan
        return 100.0 * sum(getattr(s, attr) for s in self.scores) / len(self.scores)

    @property
    def color_accuracy(self) -> float:
        return self._pct("color_correct")

    @property
    def shape_accuracy(self) -> float:
        return self._pct("shape_correct")

    @property
    def motion_accuracy(self) -> float:
        """Direction accuracy, "still" included."""
        return self._pct("motion_correct")

    @property
    def all_accuracy(self) -> float:
        """Videos with colour, shape and direction all correct."""
        return self._pct("all_correct")

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "color_accuracy": self.color_accuracy,
            "shape_accuracy": self.shape_accuracy,
            "motion_accuracy": self.motion_accuracy,
            "all_accuracy": self.all_accuracy,
            "scores": [s.to_dict() for s in self.scores],
        }

    def markdown(self) -> str:
        """A one-row Markdown table of the accuracies."""
        return (
            "| videos | colour % | shape % | direction % | all three % |\n"
            "|---:|---:|---:|---:|---:|\n"
            f"| {self.n} | {self.color_accuracy:.1f} | {self.shape_accuracy:.1f} | "
            f"{self.motion_accuracy:.1f} | {self.all_accuracy:.1f} |"
        )


def _foreground(hsv: np.ndarray) -> np.ndarray | None:
    """Largest saturated component of one HSV frame (a boolean mask), or None."""
    s_min = math.ceil(SATURATION_THRESHOLD * 255)
    v_min = math.ceil(VALUE_THRESHOLD * 255)
    mask = ((hsv[..., 1] >= s_min) & (hsv[..., 2] >= v_min)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = int(stats[best, cv2.CC_STAT_AREA])
    if area < MIN_FOREGROUND_FRACTION * mask.size:
        return None
    return labels == best


def _coverage(frame: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Per-pixel shape coverage in [0, 1] near the saturated ``seed`` component.

    Each pixel is modelled as a blend ``a * C + (1 - a) * g`` of the shape colour ``C`` (median of
    the seed) and the background ``g`` (median of the pixels 3 px or more outside the seed); ``a``
    is the projection of ``pixel - g`` on ``C - g``. This puts the outline where an anti-aliased,
    blurred or chroma-subsampled edge really is; the saturation threshold alone grows the outline
    by a background-dependent amount. Zero outside the seed's 4-pixel neighbourhood.
    """
    near = cv2.dilate(seed.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    ring = cv2.dilate(seed.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    if ring.any():
        rgb = frame.astype(np.float64)
        fg = np.median(rgb[seed], axis=0)
        bg = np.median(rgb[ring], axis=0)
        axis = fg - bg
        norm2 = float(axis @ axis)
        if norm2 >= 32.0**2:  # else shape and background too close for a stable blend
            alpha = np.clip((rgb - bg) @ axis / norm2, 0.0, 1.0)  # [H, W]
            return np.where(near, alpha, 0.0)
    return seed.astype(np.float64)


_AREA_PER_SIZE2 = {"circle": math.pi / 4, "square": 1.0, "triangle": 0.5}
# An upright triangle's area centroid sits s/6 below the centre of its bounding box.
_CENTROID_BELOW_CENTRE = {"circle": 0.0, "square": 0.0, "triangle": 1.0 / 6.0}
_SUPERSAMPLE = 4


def _ideal_coverage(
    name: str, center: tuple[float, float], size: float, shape_hw: tuple[int, int]
) -> np.ndarray:
    """Exact coverage ``[H, W]`` of an ideal shape (4x4 samples per pixel; pixel i is [i, i+1))."""
    h, w = shape_hw
    offsets = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE
    ys = (np.arange(h)[:, None] + offsets[None, :]).reshape(-1)  # [H * S]
    xs = (np.arange(w)[:, None] + offsets[None, :]).reshape(-1)  # [W * S]
    dx = xs[None, :] - center[0]
    dy = ys[:, None] - center[1]
    half = size / 2
    if name == "circle":
        inside = dx**2 + dy**2 <= half**2
    elif name == "square":
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    else:  # upright triangle: half-width grows from 0 at the apex to s/2 at the base
        inside = (dy >= -half) & (dy <= half) & (np.abs(dx) <= (dy + half) / 2)
    # [H*S, W*S] -> [H, W]: mean over each pixel's S x S samples
    return inside.reshape(h, _SUPERSAMPLE, w, _SUPERSAMPLE).mean(axis=(1, 3))


def _shape_errors(alpha: np.ndarray) -> dict[str, float]:
    """How badly each ideal shape explains one frame's coverage map ``alpha``.

    Each shape is placed with the coverage's area and centroid (so its size follows from the
    area), blurred by the best of :data:`_BLURS` (generated and compressed video is soft), and
    compared by squared error, divided by the area.
    """
    area = float(alpha.sum())
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w]
    mx = float((alpha * (xx + 0.5)).sum() / area)  # pixel i covers [i, i + 1)
    my = float((alpha * (yy + 0.5)).sum() / area)
    errors = {}
    for name in SHAPES:
        size = math.sqrt(area / _AREA_PER_SIZE2[name])
        centre = (mx, my - size * _CENTROID_BELOW_CENTRE[name])
        ideal = _ideal_coverage(name, centre, size, (h, w))
        best = math.inf
        for sigma in _BLURS:
            tpl = cv2.GaussianBlur(ideal, (0, 0), sigma) if sigma else ideal
            best = min(best, float(((alpha - tpl) ** 2).sum()))
        errors[name] = best / area
    return errors


def _nearest_color(hue: float) -> str:
    def dist(name: str) -> float:
        d = abs(hue - COLOR_HUES[name]) % 360.0
        return min(d, 360.0 - d)

    return min(COLOR_HUES, key=dist)


def _motion_from_displacement(dx: float, dy: float) -> str:
    if max(abs(dx), abs(dy)) < STILL_MAX_DISPLACEMENT:
        return "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def measure_video(video: Any) -> ShapesMeasurement:
    """Colour, shape and direction of the one shape in ``video`` (see :func:`as_frames`)."""
    frames = as_frames(video)
    f, h, w, _ = frames.shape
    if f < 2:
        raise ValueError(f"video: need at least 2 frames to measure a direction, got {f}")
    sin_sum = cos_sum = 0.0
    fills: list[float] = []
    error_sums = dict.fromkeys(SHAPES, 0.0)
    track_t: list[int] = []
    track_xy: list[tuple[float, float]] = []
    for t in range(f):
        hsv = cv2.cvtColor(frames[t], cv2.COLOR_RGB2HSV_FULL)  # hue in [0, 256) for 360 degrees
        seed = _foreground(hsv)
        if seed is None:
            continue
        angle = hsv[..., 0][seed].astype(np.float64) * (2 * math.pi / 256.0)
        sin_sum += float(np.sin(angle).sum())
        cos_sum += float(np.cos(angle).sum())
        alpha = _coverage(frames[t], seed)
        ys, xs = np.nonzero(alpha >= 0.5)
        if len(xs) == 0:
            continue
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        fills.append(len(xs) / ((x1 - x0) * (y1 - y0)))
        # work on a crop with room for the widest blur (3 sigma) around the shape
        pad = math.ceil(3 * max(_BLURS)) + 1
        cx0, cy0 = max(0, x0 - pad), max(0, y0 - pad)
        crop = alpha[cy0 : min(h, y1 + pad), cx0 : min(w, x1 + pad)]
        for name, err in _shape_errors(crop).items():
            error_sums[name] += err
        cyy, cxx = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]]
        total = float(crop.sum())
        track_t.append(t)
        track_xy.append(
            (cx0 + float((crop * cxx).sum()) / total, cy0 + float((crop * cyy).sum()) / total)
        )
    hue = color = fill = shape = shape_error = disp = motion = None
    if fills:
        hue = math.degrees(math.atan2(sin_sum, cos_sum)) % 360.0
        color = _nearest_color(hue)
        fill = float(np.median(fills))
        shape = min(SHAPES, key=lambda name: error_sums[name])
        shape_error = error_sums[shape] / len(fills)
    if len(track_t) >= 2:
        tt = np.asarray(track_t, np.float64)
        xy = np.asarray(track_xy, np.float64)
        slope = np.polyfit(tt, xy, 1)[0]  # [2]: px per frame in x and y
        dx, dy = slope * (f - 1) / np.array([w, h])
        disp = (float(dx), float(dy))
        motion = _motion_from_displacement(*disp)
    return ShapesMeasurement(
        color=color,
        shape=shape,
        motion=motion,
        hue=hue,
        fill_ratio=fill,
        shape_error=shape_error,
        displacement=disp,
        foreground_frames=len(track_t),
        frames=f,
    )


def score_video(video: Any, prompt: str | ShapesPrompt, *, name: str = "") -> ShapesScore:
    """Score ``video`` against ``prompt`` (text in the shapes vocabulary, or a parsed prompt)."""
    parsed = prompt if isinstance(prompt, ShapesPrompt) else require_prompt(prompt)
    return ShapesScore(prompt=parsed, measured=measure_video(video), name=name)


def evaluate_shapes(items: Iterable[tuple[Any, str | ShapesPrompt]]) -> ShapesReport:
    """Score every ``(video, prompt)`` pair and aggregate the accuracies."""
    return ShapesReport(tuple(score_video(v, p) for v, p in items))
