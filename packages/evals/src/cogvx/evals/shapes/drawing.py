"""Reference drawing of shapes clips with OpenCV: what the evaluator is tested on.

A clip is one shape of the vocabulary's colours on a grey background, its centre moving on a
straight line at constant speed (or standing still). Edges are anti-aliased and positions
sub-pixel, so the clips look like decoded video rather than a binary mask.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cogvx.evals.shapes.vocabulary import (
    COLORS,
    MIN_SIZE_FRACTION,
    MOTION_VECTORS,
    MOTIONS,
    SHAPES,
)

__all__ = ["draw_shape", "render_clip"]

_SHIFT = 4  # OpenCV fixed-point bits: coordinates are given in 1/16 pixel
_ONE = 1 << _SHIFT


def draw_shape(
    frame: np.ndarray, shape: str, center: tuple[float, float], size: float, rgb: tuple[int, ...]
) -> np.ndarray:
    """Draw ``shape`` of size ``size`` px (circle diameter, square side, triangle base and
    height; the triangle's apex points up) centred at ``center = (x, y)`` px into ``frame``
    (uint8 ``[H, W, 3]`` RGB, modified in place and returned)."""
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r}: expected one of {', '.join(SHAPES)}")
    if not (math.isfinite(size) and size > 0):
        raise ValueError(f"size={size}: expected a finite number of pixels > 0")
    cx, cy = center
    half = size / 2.0
    color = tuple(int(c) for c in rgb)

    def fixed(x: float, y: float) -> tuple[int, int]:
        # OpenCV samples pixel centres at integers; our coordinates put pixel i's centre at i + 0.5
        return round((x - 0.5) * _ONE), round((y - 0.5) * _ONE)

    if shape == "circle":
        cv2.circle(frame, fixed(cx, cy), round(half * _ONE), color, -1, cv2.LINE_AA, _SHIFT)
    else:
        if shape == "square":
            corners = [(-half, -half), (half, -half), (half, half), (-half, half)]
        else:
            corners = [(0.0, -half), (half, half), (-half, half)]
        pts = np.array([fixed(cx + dx, cy + dy) for dx, dy in corners], np.int32)
        cv2.fillPoly(frame, [pts], color, cv2.LINE_AA, _SHIFT)
    return frame


def render_clip(
    color: str,
    shape: str,
    motion: str,
    *,
    frames: int = 9,
    height: int = 64,
    width: int = 64,
    size: float = 0.25,
    travel: float = 0.5,
    background: int = 112,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """A clip ``uint8 [frames, height, width, 3]`` of one shape moving by ``motion``.

    ``size``: shape size as a fraction of the width (>= the vocabulary's 15% minimum).
    ``travel``: distance covered from the first to the last frame as a fraction of the frame side
    along the motion. The path is centred in the frame, shifted by ``offset = (dx, dy)`` (fractions
    of width and height) across the motion.
    """
    for name, value, valid in (("color", color, tuple(COLORS)), ("motion", motion, MOTIONS)):
        if value not in valid:
            raise ValueError(f"{name}={value!r}: expected one of {', '.join(valid)}")
    for name, value, lo in (("frames", frames, 2), ("height", height, 8), ("width", width, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{name}={value!r}: expected an integer >= {lo}")
    if not (MIN_SIZE_FRACTION <= size <= 0.6):
        raise ValueError(f"size={size}: expected a fraction of the width in [0.15, 0.6]")
    if not (0.0 <= travel <= 1.0 - size):
        raise ValueError(f"travel={travel}: expected a fraction in [0, 1 - size={1 - size:g}]")
    if (
        isinstance(background, bool)
        or not isinstance(background, int)
        or not 0 <= background <= 255
    ):
        raise ValueError(f"background={background!r}: expected a grey level in [0, 255]")
    s = size * width
    ux, uy = MOTION_VECTORS[motion]
    out = np.full((frames, height, width, 3), background, np.uint8)
    for t in range(frames):
        a = t / (frames - 1) - 0.5  # -0.5 .. 0.5 along the path
        cx = width * (0.5 + offset[0] + ux * travel * a)
        cy = height * (0.5 + offset[1] + uy * travel * a)
        draw_shape(out[t], shape, (cx, cy), s, COLORS[color])
    return out
