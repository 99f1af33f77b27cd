"""Reconstruction metrics: PSNR, SSIM, LPIPS and adjacent-frame flicker.

Inputs are videos ``[T,H,W,C]`` or images ``[H,W,C]`` (channels last, ``C`` usually 3) as float
numpy arrays or torch tensors with values in ``[0, data_range]``. Everything is computed in
float64 so that results do not depend on the caller's dtype.

- PSNR: ``10·log10(data_range² / MSE)`` per frame; the video value is the mean of the per-frame
  values (the convention of video-VAE papers, e.g. the CogVideoX VAE tables). Identical frames give
  ``inf``.
- SSIM: Wang et al. 2004 with an 11×11 Gaussian window (σ=1.5), K1=0.01, K2=0.03, population
  (biased) local statistics, mean of the SSIM map over the *valid* region (the 5-pixel border,
  where the window does not fit, is excluded). This is the formula of
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)`` and of ``pytorch_msssim.ssim``; per channel, then averaged over
  channels and frames.
- Flicker: the CogVideoX VAE tables' "Flickering" is "the L1 difference between each pair of
  adjacent frames" (arXiv 2408.06072, Table 1). The paper does not state its scale, so absolute
  values are not comparable with the paper's 85.5–93.2; :func:`adjacent_frame_l1` returns the mean
  absolute difference in the caller's ``data_range`` units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.ndimage import correlate1d

__all__ = [
    "adjacent_frame_l1",
    "adjacent_frame_l1_per_pair",
    "gaussian_window",
    "lpips",
    "psnr",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
]

ArrayLike = np.ndarray | torch.Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _to_float64(x: ArrayLike, name: str) -> torch.Tensor:
    """Return ``x`` as a float64 CPU tensor ``[T,H,W,C]`` (an image gains a leading T=1)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu", torch.float64)
    elif isinstance(x, np.ndarray):
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ValueError(f"{name} must have shape [T,H,W,C] or [H,W,C], got shape {tuple(t.shape)}")
    return t


def _pair(
    pred: ArrayLike, target: ArrayLike, data_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(data_range, int | float) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    p = _to_float64(pred, "pred")
    t = _to_float64(target, "target")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    if p.shape[0] == 0:
        raise ValueError("pred and target must contain at least one frame, got T=0")
    return p, t


def psnr_per_frame(pred: ArrayLike, target: ArrayLike, *, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB of each frame, float64 ``[T]`` (``inf`` where a frame matches exactly)."""
    p, t = _pair(pred, target, data_range)
    mse = ((p - t) ** 2).flatten(1).mean(dim=1).numpy()
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(float(data_range) ** 2 / mse)


def psnr(pred: ArrayLike, target: ArrayLike, *, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame PSNR in dB (see module docstring)."""
    return float(np.mean(psnr_per_frame(pred, target, data_range=data_range)))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd ``size`` (float64); SSIM uses its outer product."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter keeping the 'valid' region. x: [N,H,W] -> [N,H-k+1,W-k+1].

    ``correlate1d`` then cropping ``k//2`` pixels equals a valid convolution (the symmetric
    window makes correlation and convolution the same); scipy's C loop in float64 is several
    times faster than float64 ``conv2d`` on CPU.
    """
    r = g.size // 2
    x = correlate1d(x, g, axis=1, mode="nearest")[:, r : x.shape[1] - r]
    return correlate1d(x, g, axis=2, mode="nearest")[:, :, r : x.shape[2] - r]


def ssim_per_frame(pred: ArrayLike, target: ArrayLike, *, data_range: float = 1.0) -> np.ndarray:
    """SSIM of each frame (mean over the valid map and over channels), float64 ``[T]``."""
    p, t = _pair(pred, target, data_range)
    n_frames, h, w, c = p.shape
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}"
        )
    g = gaussian_window().numpy()
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    out = np.empty(n_frames)
    for i in range(n_frames):  # one frame at a time bounds memory for long videos
        # [H,W,C] -> [C,H,W]: every channel is an independent image.
        x = p[i].permute(2, 0, 1).numpy()
        y = t[i].permute(2, 0, 1).numpy()
        mu_x, mu_y = _blur_valid(x, g), _blur_valid(y, g)
        sxx = _blur_valid(x * x, g) - mu_x**2
        syy = _blur_valid(y * y, g) - mu_y**2
        sxy = _blur_valid(x * y, g) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
        )
        out[i] = ssim_map.reshape(c, -1).mean(axis=1).mean()
    return out


def ssim(pred: ArrayLike, target: ArrayLike, *, data_range: float = 1.0) -> float:
    """Mean SSIM over frames and channels (Gaussian 11×11, σ=1.5; see module docstring)."""
    return float(np.mean(ssim_per_frame(pred, target, data_range=data_range)))


def adjacent_frame_l1_per_pair(frames: ArrayLike) -> np.ndarray:
    """Mean ``|x[t+1] - x[t]|`` over pixels and channels for each adjacent pair, ``[T-1]``."""
    x = _to_float64(frames, "frames")
    if x.shape[0] < 2:
        raise ValueError(f"frames must contain at least 2 frames, got T={x.shape[0]}")
    return (x[1:] - x[:-1]).abs().flatten(1).mean(dim=1).numpy()


def adjacent_frame_l1(frames: ArrayLike) -> float:
    """CogVideoX-style flicker: mean absolute difference of adjacent frames (lower is better)."""
    return float(np.mean(adjacent_frame_l1_per_pair(frames)))


def lpips(
    pred: ArrayLike,
    target: ArrayLike,
    network: Callable[[torch.Tensor, torch.Tensor], Any],
    *,
    data_range: float = 1.0,
    batch_size: int = 16,
) -> np.ndarray:
    """Per-frame LPIPS distances ``[T]`` with a caller-supplied network (pluggable backbone).

    ``network(a, b)`` takes two float32 batches ``[N,3,H,W]`` scaled to ``[-1, 1]`` (the input
    convention of the ``lpips`` package, e.g. ``lpips.LPIPS(net="alex")``) and returns one distance
    per item (any shape that flattens to ``[N]``). cogvx ships no LPIPS weights; build the network
    from local weights and pass it in.
    """
    p, t = _pair(pred, target, data_range)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = []
    with torch.no_grad():
        for i in range(0, p.shape[0], batch_size):
            # [N,H,W,C] in [0,R] -> [N,C,H,W] in [-1,1]
            a = (p[i : i + batch_size].permute(0, 3, 1, 2) / data_range * 2 - 1).float()
            b = (t[i : i + batch_size].permute(0, 3, 1, 2) / data_range * 2 - 1).float()
            d = torch.as_tensor(network(a, b)).detach().to("cpu", torch.float64).flatten()
            if d.numel() != a.shape[0]:
                raise ValueError(
                    f"LPIPS network returned {d.numel()} values for a batch of {a.shape[0]} frames"
                )
            out.append(d.numpy())
    return np.concatenate(out)
