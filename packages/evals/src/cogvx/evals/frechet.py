"""Fréchet distance between feature distributions, and FVD (Unterthiner et al. 2018).

``FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)``, computed in float64. Two square-root methods:

- ``"scipy"`` (default): ``scipy.linalg.sqrtm(Σ₁Σ₂)``, real part, as StyleGAN-V and pytorch-fid;
  if the result is not finite, ``eps·I`` is added to both covariances (pytorch-fid's fallback).
- ``"symmetric"``: ``tr((Σ₁Σ₂)^½) = tr((√Σ₁ Σ₂ √Σ₁)^½)`` with symmetric eigendecompositions, as
  TF-GAN's ``frechet_classifier_distance_from_activations`` (the original FVD code).

Covariances: ``unbiased=True`` (÷(N−1), TF-GAN / original FVD, our default) or ``False`` (÷N,
StyleGAN-V's ``FeatureStats``). The choice changes FVD by O(1/N). Tiny negative results from
round-off are clamped to 0.

FVD: videos are resized frame by frame to 224×224 (bilinear, no crop), scaled to ``[-1, 1]``
and fed as ``[B,3,T,224,224]`` to an I3D feature extractor (the 400-d Kinetics logits of the
TF-Hub model in the original). No I3D weights ship with any Python package we depend on; load
a TorchScript export with :class:`TorchScriptVideoFeatures`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = [
    "FeatureStats",
    "TorchScriptVideoFeatures",
    "frechet_distance",
    "fvd",
    "fvd_preprocess",
    "video_features",
]


class FeatureStats:
    """Streaming float64 ``Σx`` and ``Σxxᵀ`` of feature rows (memory O(D²), any N)."""

    def __init__(self, dim: int | None = None) -> None:
        self.n = 0
        self.dim = dim
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def append(self, features: np.ndarray | torch.Tensor) -> None:
        x = np.asarray(
            features.detach().cpu() if isinstance(features, torch.Tensor) else features, np.float64
        )
        if x.ndim != 2:
            raise ValueError(f"features must have shape [N,D], got {x.shape}")
        if self.dim is None:
            self.dim = x.shape[1]
        if x.shape[1] != self.dim:
            raise ValueError(f"features have dimension {x.shape[1]}, expected {self.dim}")
        if self._sum is None:
            self._sum = np.zeros(self.dim)
            self._outer = np.zeros((self.dim, self.dim))
        self.n += x.shape[0]
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    def mean_cov(self, *, unbiased: bool = True) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.n}")
        mu = self._sum / self.n
        cov = self._outer / self.n - np.outer(mu, mu)  # biased (÷N)
        if unbiased:
            cov = cov * (self.n / (self.n - 1))
        return mu, cov

    @classmethod
    def of(cls, features: np.ndarray | torch.Tensor) -> FeatureStats:
        s = cls()
        s.append(features)
        return s


def _sqrtm_trace_symmetric(s1: np.ndarray, s2: np.ndarray) -> float:
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    method: str = "scipy",
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) in float64 (see module docstring)."""
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shapes do not match: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {s1.shape}, sigma2 {s2.shape}"
        )
    diff = mu1 - mu2
    if method == "symmetric":
        tr_covmean = _sqrtm_trace_symmetric(s1, s2)
    elif method == "scipy":
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
        tr_covmean = float(np.trace(np.real(covmean)))
    else:
        raise ValueError(f"method must be 'scipy' or 'symmetric', got {method!r}")
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(fd, 0.0)


def fvd_preprocess(videos: np.ndarray | torch.Tensor, *, size: int = 224) -> torch.Tensor:
    """uint8 ``[B,T,H,W,3]`` (or floats 0..255) -> float32 ``[B,3,T,size,size]`` in ``[-1,1]``
    (per-frame bilinear resize without crop, then ``2x/255 − 1``; original FVD code)."""
    x = torch.as_tensor(np.asarray(videos) if isinstance(videos, np.ndarray) else videos).float()
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"videos must have shape [B,T,H,W,3], got {tuple(x.shape)}")
    b, t, h, w, _ = x.shape
    # [B,T,H,W,3] -> [B*T,3,H,W] -> resize -> [B,3,T,S,S]
    frames = x.reshape(b * t, h, w, 3).permute(0, 3, 1, 2)
    if (h, w) != (size, size):
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    frames = frames.reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4)
    return frames * (2.0 / 255.0) - 1.0


class TorchScriptVideoFeatures:
    """A video feature extractor (e.g. I3D) exported with ``torch.jit.save``, from a local file.

    Called with ``[B,3,T,224,224]`` in ``[-1,1]`` plus ``call_kwargs`` (for StyleGAN-V's
    ``i3d_torchscript.pt`` pass ``rescale=False, resize=False, return_features=True`` since the
    input is already prepared); returns ``[B,D]``.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        name: str = "video-features",
        device: str = "cpu",
        **call_kwargs,
    ) -> None:
        self.module = module.eval().to(device)
        self.name = name
        self.device = torch.device(device)
        self.call_kwargs = call_kwargs

    @classmethod
    def from_local(
        cls, path: str | os.PathLike, *, device: str = "cpu", **call_kwargs
    ) -> TorchScriptVideoFeatures:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"video feature extractor not found: path={str(p)!r}")
        try:
            module = torch.jit.load(str(p), map_location="cpu")
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"{p} is not a TorchScript archive; export I3D with torch.jit.save "
                "(StyleGAN-V's i3d_torchscript.pt is one)"
            ) from e
        return cls(module, name=f"torchscript:{p.name}", device=device, **call_kwargs)

    @torch.no_grad()
    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        return self.module(videos.to(self.device), **self.call_kwargs)


def video_features(
    videos: Iterable[np.ndarray],
    extractor: Callable[[torch.Tensor], torch.Tensor],
    *,
    num_frames: int = 16,
    size: int = 224,
    batch_size: int = 8,
    progress: bool = False,
) -> FeatureStats:
    """Accumulate features of clips: each video's first ``num_frames`` frames (uint8 [T,H,W,3])."""
    stats = FeatureStats()
    batch: list[np.ndarray] = []

    def flush() -> None:
        feats = extractor(fvd_preprocess(np.stack(batch), size=size))
        stats.append(torch.as_tensor(feats).reshape(len(batch), -1).double())
        batch.clear()

    for i, v in enumerate(tqdm(videos, desc="features", unit="video", disable=not progress)):
        if v.ndim != 4 or v.shape[-1] != 3:
            raise ValueError(f"video {i} must have shape [T,H,W,3], got {v.shape}")
        if len(v) < num_frames:
            raise ValueError(f"video {i} has {len(v)} frames, fewer than num_frames={num_frames}")
        if batch and batch[0].shape[1:] != v.shape[1:]:
            flush()
        batch.append(v[:num_frames])
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return stats


def fvd(
    real: Iterable[np.ndarray],
    fake: Iterable[np.ndarray],
    extractor: Callable[[torch.Tensor], torch.Tensor],
    *,
    num_frames: int = 16,
    size: int = 224,
    unbiased: bool = True,
    method: str = "scipy",
    batch_size: int = 8,
    progress: bool = False,
) -> float:
    """FVD between two sets of uint8 videos ``[T,H,W,3]`` with the given feature extractor."""
    kw = dict(num_frames=num_frames, size=size, batch_size=batch_size, progress=progress)
    mu_r, s_r = video_features(real, extractor, **kw).mean_cov(unbiased=unbiased)
    mu_f, s_f = video_features(fake, extractor, **kw).mean_cov(unbiased=unbiased)
    return frechet_distance(mu_r, s_r, mu_f, s_f, method=method)
