"""Aesthetic and imaging quality (VBench ``aesthetic_quality.py``, ``imaging_quality.py``)."""

from __future__ import annotations

import numpy as np

from cogvx.evals.backends.preprocess import resize_to, to_tensor
from cogvx.evals.backends.protocols import AestheticScorer, ImageQualityModel
from cogvx.evals.evaluator import Evaluator
from cogvx.evals.results import VideoScore
from cogvx.evals.samples import VideoSample

__all__ = ["AestheticQuality", "ImagingQuality", "longer_side_resize"]


class AestheticQuality(Evaluator):
    """Mean over all frames of LAION aesthetic score / 10; mean over videos."""

    dimension = "aesthetic_quality"
    reference = "VBench aesthetic_quality.py (CLIP ViT-L/14 + LAION linear head, /10)"
    frames = "all"

    def __init__(self, scorer: AestheticScorer) -> None:
        self.scorer = scorer

    def _backend(self) -> object:
        return self.scorer

    def score(self, video: VideoSample) -> VideoScore:
        s = np.asarray(self.scorer(video.require_frames()), np.float64) / 10.0
        return VideoScore(video.name, float(s.mean()))


def longer_side_resize(frames: np.ndarray, limit: int = 512):
    """VBench ``imaging_quality`` "longer" mode: if max(H,W) > limit, scale so the longer side is
    ``limit`` (sizes ``int(scale·H), int(scale·W)``, bilinear, no antialias); then /255."""
    x = to_tensor(frames)
    h, w = frames.shape[1:3]
    if max(h, w) > limit:
        scale = limit / max(h, w)
        x = resize_to(x, (int(scale * h), int(scale * w)))
    return x / 255.0


class ImagingQuality(Evaluator):
    """Mean over all frames of MUSIQ(SPAQ); mean over videos, divided by 100."""

    dimension = "imaging_quality"
    reference = "VBench imaging_quality.py (MUSIQ-SPAQ, 'longer' preprocessing, /100)"
    frames = "all"

    def __init__(self, model: ImageQualityModel) -> None:
        self.model = model

    def _backend(self) -> object:
        return self.model

    def score(self, video: VideoSample) -> VideoScore:
        x = longer_side_resize(video.require_frames())
        scores = [float(self.model(x[i : i + 1])) for i in range(len(x))]
        return VideoScore(video.name, float(np.mean(scores)) / 100.0)
