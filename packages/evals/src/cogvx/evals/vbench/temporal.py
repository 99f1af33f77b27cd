"""VBench's motion dimensions: temporal flickering, dynamic degree, motion smoothness, and the
static filter that selects videos for temporal flickering.

Reference: ``vbench/temporal_flickering.py``, ``vbench/dynamic_degree.py``,
``vbench/motion_smoothness.py``, ``vbench/cli/static_filter.py`` (Vchitect/VBench). VBench decodes
these with OpenCV; we decode with PyAV (``cogvx.videoio``), which can differ by a few code values
after YUV->RGB conversion.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from cogvx.evals.evaluator import Evaluator
from cogvx.evals.flow import FlowBackend, flow_magnitude
from cogvx.evals.interpolation import FrameInterpolator
from cogvx.evals.results import VideoScore
from cogvx.evals.samples import VideoSample, stride_frame_indices

__all__ = [
    "DynamicDegree",
    "MotionSmoothness",
    "StaticFilter",
    "TemporalFlickering",
    "dynamic_decision",
    "pad_to_multiple",
    "static_decision",
    "top_fraction_mean",
]


def top_fraction_mean(flow: np.ndarray, fraction: float) -> float:
    """Mean of the largest ``int(H·W·fraction)`` flow magnitudes of one ``[H,W,2]`` field."""
    mag = flow_magnitude(flow.astype(np.float64)).ravel()
    k = int(mag.size * fraction)
    if k < 1:
        raise ValueError(f"a {flow.shape[0]}x{flow.shape[1]} flow has no top {fraction:.0%} pixels")
    return float(np.sort(mag)[::-1][:k].mean())


def pad_to_multiple(frames: np.ndarray, multiple: int = 8) -> np.ndarray:
    """Edge-replicate ``[T,H,W,3]`` to multiples of ``multiple`` (RAFT ``InputPadder``, sintel)."""
    h, w = frames.shape[1:3]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return frames
    return np.pad(
        frames, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="edge"
    )


def dynamic_decision(pair_scores: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench ``DynamicDegree.check_move``: dynamic once ``count_num`` pair scores exceed ``thres``.

    The count is tested after every pair, so ``count_num == 0`` is dynamic as soon as there is a
    pair and never with no pairs (reference behaviour kept).
    """
    count = 0
    for s in pair_scores:
        if s > thres:
            count += 1
        if count >= count_num:
            return True
    return False


def static_decision(
    pair_scores: Sequence[float], end_scores: Sequence[float], thres: float, count_num: int
) -> bool:
    """VBench ``StaticFilter.check_static``.

    Static iff at most ``count_num`` consecutive pairs exceed ``thres`` and both first<->last
    scores are at most ``thres · count_num · 2``.
    """
    if sum(1 for s in pair_scores if s > thres) > count_num:
        return False
    return all(s <= thres * count_num * 2 for s in end_scores)


class TemporalFlickering(Evaluator):
    """``(255 − mean_t MAE(x_t, x_{t+1})) / 255`` per video, mean over videos.

    MAE is the mean absolute difference over all pixels and channels of two consecutive uint8
    frames. VBench evaluates it only on static videos (prompts "In a still frame, ..." and the
    static filter); pass ``static_filter`` to skip non-static videos the same way.
    """

    dimension = "temporal_flickering"
    reference = "VBench temporal_flickering.py"
    frames = "all"

    def __init__(self, static_filter: StaticFilter | None = None) -> None:
        self.static_filter = static_filter

    @property
    def backend_name(self) -> str:
        return (
            "none"
            if self.static_filter is None
            else f"static-filter[{self.static_filter.flow.name}]"
        )

    @property
    def approximate(self) -> bool:
        return self.static_filter is not None and bool(
            getattr(self.static_filter.flow, "approximate", True)
        )

    def metadata(self) -> dict:
        md = super().metadata()
        md["static_filter"] = self.static_filter is not None
        return md

    def score(self, video: VideoSample) -> VideoScore:
        frames = video.require_frames()
        if len(frames) < 2:
            raise ValueError(f"temporal_flickering needs at least 2 frames, got {len(frames)}")
        if self.static_filter is not None and not self.static_filter.is_static(frames):
            return VideoScore.skipped(video.name, "not static (VBench static filter)")
        # per pair in int16: exact differences of uint8 values, memory of two frames only
        mae = np.array(
            [
                np.abs(b.astype(np.int16) - a.astype(np.int16)).mean()
                for a, b in itertools.pairwise(frames)
            ]
        )
        return VideoScore(
            video.name,
            float((255.0 - mae.mean()) / 255.0),
            details={"mean_abs_diff": float(mae.mean())},
        )


class StaticFilter:
    """VBench static filter: RAFT top-2 % flow magnitudes on all consecutive pairs and on
    (first, last), (last, first); ``thres = 3·min(H,W)/256``, ``count_num = round(2·T/16)``."""

    def __init__(self, flow: FlowBackend, *, pad: bool = True) -> None:
        self.flow = flow
        self.pad = pad

    def scores(self, frames: np.ndarray) -> tuple[list[float], list[float], float, int]:
        if len(frames) < 2:
            raise ValueError(f"the static filter needs at least 2 frames, got {len(frames)}")
        h, w = frames.shape[1:3]
        x = pad_to_multiple(frames) if self.pad else frames
        pairs = [top_fraction_mean(f, 0.02) for f in self.flow(x)]
        ends = [top_fraction_mean(f, 0.02) for f in self.flow(np.stack([x[0], x[-1], x[0]]))]
        return pairs, ends, 3.0 * min(h, w) / 256.0, round(2 * len(frames) / 16.0)

    def is_static(self, frames: np.ndarray) -> bool:
        pairs, ends, thres, count_num = self.scores(frames)
        return static_decision(pairs, ends, thres, count_num)


class DynamicDegree(Evaluator):
    """Fraction of videos judged dynamic (VBench ``dynamic_degree.py``).

    Frames: every ``max(1, round(fps/8))``-th. Per consecutive pair: mean of the top 5 % flow
    magnitudes (computed on the flow of frames padded to multiples of 8, as RAFT's ``InputPadder``
    does). ``thres = 6·min(H,W)/256``; ``count_num = round(4·N/16)`` (N sampled frames); dynamic
    iff ``count_num`` pairs exceed ``thres``. With :class:`~cogvx.evals.flow.DISFlow` the value is
    an approximation (thresholds were calibrated on RAFT).
    """

    dimension = "dynamic_degree"
    reference = "VBench dynamic_degree.py (RAFT, top-5% magnitude, thres 6*min(H,W)/256)"
    frames = "every max(1, round(fps/8))-th frame"

    def __init__(
        self, flow: FlowBackend, *, pad: bool = True, low_fps_factor: bool = False
    ) -> None:
        self.flow = flow
        self.pad = pad
        # One VBench revision multiplies thres by max(1, 8/fps) for clips below 8 fps; the
        # current one (vbench/core/dynamic_degree.py) does not. Off by default; no effect >= 8 fps.
        self.low_fps_factor = low_fps_factor

    def _backend(self) -> object:
        return self.flow

    def score(self, video: VideoSample) -> VideoScore:
        frames = video.require_frames()
        idx = stride_frame_indices(len(frames), float(video.fps or 8.0))
        if len(idx) < 2:
            raise ValueError(
                f"dynamic_degree needs at least 2 sampled frames, got {len(idx)} (T={len(frames)})"
            )
        clip = frames[idx]
        h, w = clip.shape[1:3]
        x = pad_to_multiple(clip) if self.pad else clip
        pair_scores = [top_fraction_mean(f, 0.05) for f in self.flow(x)]
        thres = 6.0 * min(h, w) / 256.0
        if self.low_fps_factor:
            thres *= max(1.0, 8.0 / float(video.fps or 8.0))
        count_num = round(4 * len(idx) / 16.0)
        moving = dynamic_decision(pair_scores, thres, count_num)
        return VideoScore(
            video.name,
            float(moving),
            details={
                "pair_scores": pair_scores,
                "thres": thres,
                "count_num": count_num,
                "frames": idx,
            },
        )


class MotionSmoothness(Evaluator):
    """``(255 − mean |interp(x_{2k}, x_{2k+2}) − x_{2k+1}|) / 255`` per video (VBench, AMT-S).

    The even frames are the interpolator's input; each predicted midpoint is compared with the real
    odd frame (uint8 absolute difference, mean over pixels and channels, then over frames).
    """

    dimension = "motion_smoothness"
    reference = "VBench motion_smoothness.py (AMT-S, embt=0.5, one pass)"
    frames = "all (even frames in, odd frames compared)"

    def __init__(self, interpolator: FrameInterpolator) -> None:
        self.interpolator = interpolator

    def _backend(self) -> object:
        return self.interpolator

    def score(self, video: VideoSample) -> VideoScore:
        frames = video.require_frames()
        even = frames[0::2]
        if len(even) < 2:
            raise ValueError(f"motion_smoothness needs at least 3 frames, got {len(frames)}")
        mids = self.interpolator(even[:-1], even[1:])
        real = frames[1::2][: len(mids)]
        diffs = (
            np.abs(mids.astype(np.int16) - real.astype(np.int16))
            .reshape(len(mids), -1)
            .mean(axis=1)
        )
        return VideoScore(
            video.name,
            float((255.0 - diffs.mean()) / 255.0),
            details={"mean_abs_diff": float(diffs.mean())},
        )
