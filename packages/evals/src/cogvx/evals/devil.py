"""Dynamic Quality (DEVIL, Liao et al. 2024, arXiv 2407.01094) — the weight-free parts.

CogVideoX reports "Dynamic Quality" (paper §4.2.1, Table 3). DEVIL scores each video's dynamics
``d ∈ [0,1]`` from seven sub-scores through three linear regressors, then averages quality
metrics inside 12 equal-width bins of ``d`` so that a model that only makes static videos cannot
score high. Reproduced here:

- sub-scores that need no weights: inter-frame SSIM, pHash distance, and (given a flow backend /
  image embedder) mean flow magnitude and ``info_dino``;
- the combination of regressor predictions (each clipped to ``[0,1]``, then averaged) with
  pluggable regressors (DEVIL's ``linear_regress_model.pth`` is not public in its repository);
- the 12-bin dynamics-based quality aggregation and the naturalness label mapping.

Not reproduced offline: the DINOv2 / ViCLIP segment distances and the x264 temporal-entropy
proxy (they need those models or an x264 binary); pass precomputed values if you have them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import scipy.fft
from PIL import Image

from cogvx.evals.backends.protocols import ImageEmbedder
from cogvx.evals.flow import FlowBackend, flow_magnitude
from cogvx.evals.metrics import ssim_per_frame

__all__ = [
    "NATURALNESS_LEVELS",
    "DynamicsRegressor",
    "LinearRegressor",
    "dynamics_based_quality",
    "dynamics_score",
    "flow_subscore",
    "info_dino_subscore",
    "naturalness_from_text",
    "phash",
    "phash_subscore",
    "ssim_subscore",
]


def ssim_subscore(frames: np.ndarray) -> float:
    """Mean SSIM of consecutive frames in ``[0,1]`` (pytorch_msssim settings: Gaussian 11, σ 1.5)."""
    if len(frames) < 2:
        raise ValueError(f"need at least 2 frames, got {len(frames)}")
    x = frames.astype(np.float64) / 255.0
    return float(np.mean(ssim_per_frame(x[1:], x[:-1], data_range=1.0)))


def phash(frame: np.ndarray, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """Perceptual hash as ``imagehash.phash``: greyscale, resize to 32×32 (Lanczos), 2-D DCT-II,
    top-left 8×8 block compared with its median -> 64 booleans."""
    size = hash_size * highfreq_factor
    img = Image.fromarray(frame).convert("L").resize((size, size), Image.LANCZOS)
    pixels = np.asarray(img, dtype=np.float64)
    dct = scipy.fft.dct(scipy.fft.dct(pixels, axis=0), axis=1)
    low = dct[:hash_size, :hash_size]
    return low > np.median(low)


def phash_subscore(frames: np.ndarray) -> float:
    """Mean Hamming distance between pHashes of consecutive frames."""
    if len(frames) < 2:
        raise ValueError(f"need at least 2 frames, got {len(frames)}")
    hashes = [phash(f) for f in frames]
    return float(np.mean([np.count_nonzero(a != b) for a, b in itertools.pairwise(hashes)]))


def flow_subscore(frames: np.ndarray, flow: FlowBackend, *, long_side: int = 512) -> float:
    """Mean flow magnitude over all pixels and pairs, frames resized so the long side is 512."""
    h, w = frames.shape[1:3]
    scale = long_side / max(h, w)
    if scale != 1:
        size = (round(w * scale), round(h * scale))
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])
    return float(flow_magnitude(flow(frames)).mean())


def info_dino_subscore(frames: np.ndarray, embedder: ImageEmbedder) -> float:
    """Mean over frames of ``1 − cos(f_t, mean_t f)`` (DEVIL ``info_dino``, DINO ViT-S/16)."""
    f = embedder.embed_images(frames).astype(np.float64)
    m = f.mean(axis=0)
    m = m / max(np.linalg.norm(m), 1e-12)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return float(np.mean(1.0 - f @ m))


@runtime_checkable
class DynamicsRegressor(Protocol):
    """Anything with ``predict(features [K]) -> float`` (DEVIL's per-level regressors)."""

    def predict(self, features: Sequence[float]) -> float: ...


@dataclass(frozen=True)
class LinearRegressor:
    """``coef · x + intercept`` (the sklearn ``LinearRegression`` DEVIL fits per group)."""

    coef: tuple[float, ...]
    intercept: float

    def predict(self, features: Sequence[float]) -> float:
        if len(features) != len(self.coef):
            raise ValueError(f"regressor expects {len(self.coef)} features, got {len(features)}")
        return float(np.dot(self.coef, features) + self.intercept)

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> dict[str, LinearRegressor]:
        """Regressors saved as ``<group>_coef`` / ``<group>_intercept`` arrays in an ``.npz``."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"regressor file not found: {str(p)!r}")
        data = np.load(p)
        groups = sorted({k.rsplit("_", 1)[0] for k in data.files})
        return {
            g: cls(
                tuple(float(c) for c in data[f"{g}_coef"].ravel()), float(data[f"{g}_intercept"])
            )
            for g in groups
        }


#: DEVIL's three regressor groups and the sub-scores each takes, in order.
GROUPS: dict[str, tuple[str, ...]] = {
    "inter_frame": ("flow", "ssim", "phash"),
    "inter_segment": ("dino_segm_dist", "viclip_segm_dist"),
    "video_level": ("info_dino", "temporal_entropy"),
}


def dynamics_score(
    subscores: Mapping[str, float], regressors: Mapping[str, DynamicsRegressor]
) -> float:
    """Overall dynamics ``d``: mean over groups of the group regressor's prediction clipped to [0,1].

    Groups whose regressor is given must have all their sub-scores; at least one group is needed.
    """
    preds = []
    for group, keys in GROUPS.items():
        if group not in regressors:
            continue
        missing = [k for k in keys if k not in subscores]
        if missing:
            raise ValueError(f"dynamics group {group!r} needs sub-scores {missing}")
        preds.append(min(1.0, max(0.0, regressors[group].predict([subscores[k] for k in keys]))))
    if not preds:
        raise ValueError(f"no regressor given; expected some of {list(GROUPS)}")
    return float(np.mean(preds))


def dynamics_based_quality(
    dynamics: Sequence[float], quality: Sequence[float], *, bins: int = 12
) -> dict[str, float]:
    """DEVIL's dynamics-based quality of one metric over a set of videos.

    ``np.digitize(d, linspace(0,1,bins+1))`` assigns bins 1..bins (``d == 1.0`` falls outside and
    is dropped, as in DEVIL); each bin's mean quality counts, an empty bin counts 0; the score is
    the mean over bins. Also returns low/mid/high = means over the thirds of the bins.
    """
    d = np.asarray(dynamics, np.float64)
    q = np.asarray(quality, np.float64)
    if d.shape != q.shape:
        raise ValueError(
            f"dynamics and quality must have the same length, got {d.shape} and {q.shape}"
        )
    idx = np.digitize(d, np.linspace(0, 1, bins + 1))
    means = np.array([q[idx == b].mean() if np.any(idx == b) else 0.0 for b in range(1, bins + 1)])
    third = bins // 3
    return {
        "overall": float(means.mean()),
        "low": float(means[:third].mean()),
        "mid": float(means[third : 2 * third].mean()),
        "high": float(means[2 * third :].mean()),
        "bins": means.tolist(),
    }


#: DEVIL's naturalness scale (Gemini-1.5-Pro rating -> score).
NATURALNESS_LEVELS: dict[str, float] = {
    "almost realistic": 1.0,
    "slightly": 0.75,
    "moderately": 0.5,
    "clearly": 0.25,
    "completely fantastical": 0.0,
}


def naturalness_from_text(text: str) -> float | None:
    """Map a judge's rating text to DEVIL's naturalness score (``None`` if no level is named).

    Levels: "Almost realistic" 1, "Slightly ..." 0.75, "Moderately ..." 0.5, "Clearly ..." 0.25,
    "Completely fantastical" 0; the level named last in the text wins.
    """
    t = text.lower()
    hits = [(t.rfind(k), v) for k, v in NATURALNESS_LEVELS.items() if k in t]
    return max(hits)[1] if hits else None
