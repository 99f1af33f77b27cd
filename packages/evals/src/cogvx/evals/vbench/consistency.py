"""Subject and background consistency (VBench ``subject_consistency.py``,
``background_consistency.py``).

Per frame ``i ≥ 1``: ``½[max(0, cos(f_{i−1}, f_i)) + max(0, cos(f_0, f_i))]`` with L2-normalised
image features; the dimension is Σ over all videos' frame terms / Σ (T_v − 1) (frame-weighted).
Subject uses DINO ViT-B/16 features, background CLIP ViT-B/32 image features.
"""

from __future__ import annotations

import numpy as np

from cogvx.evals.backends.protocols import ImageEmbedder
from cogvx.evals.evaluator import Evaluator
from cogvx.evals.results import Aggregation, VideoScore
from cogvx.evals.samples import VideoSample

__all__ = ["BackgroundConsistency", "SubjectConsistency", "consistency_terms"]


def consistency_terms(features: np.ndarray) -> np.ndarray:
    """The ``T−1`` per-frame terms from L2-normalised features ``[T,D]``."""
    f = features.astype(np.float64)
    prev = np.maximum(0.0, np.sum(f[:-1] * f[1:], axis=1))
    first = np.maximum(0.0, f[1:] @ f[0])
    return (prev + first) / 2


class _Consistency(Evaluator):
    aggregation = Aggregation.FRAME_WEIGHTED
    frames = "all"

    def __init__(self, embedder: ImageEmbedder) -> None:
        self.embedder = embedder

    def _backend(self) -> object:
        return self.embedder

    def score(self, video: VideoSample) -> VideoScore:
        frames = video.require_frames()
        if len(frames) < 2:
            raise ValueError(f"{self.dimension} needs at least 2 frames, got {len(frames)}")
        terms = consistency_terms(self.embedder.embed_images(frames))
        return VideoScore.weighted(video.name, float(terms.sum()), len(terms))


class SubjectConsistency(_Consistency):
    dimension = "subject_consistency"
    reference = "VBench subject_consistency.py (DINO ViT-B/16, dino_transform)"


class BackgroundConsistency(_Consistency):
    dimension = "background_consistency"
    reference = "VBench background_consistency.py (CLIP ViT-B/32, clip_transform)"
