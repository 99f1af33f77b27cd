"""Shot splitting: cut long videos into single-shot clips (paper §3.4 trains on single-shot clips).

Cuts are found by the classic colour-histogram difference: each frame (downscaled) gets a
normalised HSV histogram; a cut is declared between frames ``i-1`` and ``i`` when the total
variation distance ``0.5 * sum|h_i - h_{i-1}|`` (in [0, 1]) exceeds ``threshold``. Motion inside
one shot moves pixels around but keeps the colour distribution, so the distance stays low.

Videos are decoded in windows of ``window`` frames so that memory stays bounded for long files
(``cogvx.videoio.read_video`` decodes from the start for each window: slower than one pass,
but it never holds the whole video).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cogvx.videoio import probe_video, read_video, write_video

__all__ = [
    "Shot",
    "detect_cuts",
    "frame_histogram",
    "histogram_distance",
    "shots_from_cuts",
    "split_shots",
]


@dataclass(frozen=True)
class Shot:
    """Frames ``start`` (inclusive) to ``end`` (exclusive) of the source video."""

    start: int
    end: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def frame_histogram(frame: np.ndarray, *, bins: int = 16, size: int = 64) -> np.ndarray:
    """Concatenated per-channel HSV histograms of an RGB uint8 frame, each summing to 1."""
    small = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    ranges = (180, 256, 256)  # OpenCV's 8-bit hue is 0..179
    hists = [cv2.calcHist([hsv], [c], None, [bins], [0, ranges[c]]).ravel() for c in range(3)]
    return np.concatenate([h / max(h.sum(), 1.0) for h in hists]).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the three channels of the total variation distance, in [0, 1]."""
    return float(0.5 * np.abs(a - b).sum() / 3.0)


def detect_cuts(
    frames: Iterable[np.ndarray], *, threshold: float = 0.35, bins: int = 16
) -> list[int]:
    """Indices ``i`` where a new shot starts (a cut between frames ``i-1`` and ``i``)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    cuts, prev = [], None
    for i, frame in enumerate(frames):
        hist = frame_histogram(frame, bins=bins)
        if prev is not None and histogram_distance(prev, hist) > threshold:
            cuts.append(i)
        prev = hist
    return cuts


def shots_from_cuts(
    num_frames: int, cuts: Iterable[int], *, min_frames: int = 1, max_frames: int | None = None
) -> list[Shot]:
    """Shots between cuts; shots shorter than ``min_frames`` are dropped, longer than
    ``max_frames`` are split into consecutive pieces (no frame is lost by the split)."""
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < num_frames), num_frames]
    shots = []
    for start, end in itertools.pairwise(bounds):
        if max_frames is not None:
            while end - start > max_frames:
                shots.append(Shot(start, start + max_frames))
                start += max_frames
        if end - start >= min_frames:
            shots.append(Shot(start, end))
    return shots


def _windowed_frames(path: Path, num_frames: int, window: int) -> Iterable[np.ndarray]:
    for start in range(0, num_frames, window):
        yield from read_video(
            path, frame_indices=range(start, min(num_frames, start + window))
        ).frames


def split_shots(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    threshold: float = 0.35,
    min_seconds: float = 1.0,
    max_seconds: float | None = 20.0,
    window: int = 256,
) -> list[Path]:
    """Write each shot of ``path`` as ``<out_dir>/<stem>.shot<k>.mp4``; returns the clip paths.

    Deterministic names make this resumable: a clip that already exists (written atomically by
    ``write_video``) is not written again. Shots shorter than ``min_seconds`` are dropped;
    longer than ``max_seconds`` are split into consecutive pieces.
    """
    src = Path(path)
    info = probe_video(src)
    fps = info.fps if info.fps > 0 else 24.0
    cuts = detect_cuts(_windowed_frames(src, info.num_frames, window), threshold=threshold)
    max_frames = None if max_seconds is None else max(1, round(max_seconds * fps))
    shots = shots_from_cuts(
        info.num_frames, cuts, min_frames=max(1, round(min_seconds * fps)), max_frames=max_frames
    )
    out = Path(out_dir)
    paths = []
    for k, shot in enumerate(shots):
        target = out / f"{src.stem}.shot{k:03d}.mp4"
        if not target.exists():
            clip = read_video(src, frame_indices=range(shot.start, shot.end))
            write_video(target, clip.frames, fps)
        paths.append(target)
    return paths
