"""Conversions between uint8 frames and the model's pixel layout, and frame sampling rules.

The VAE and the pipelines take pixels as ``[3, T, H, W]`` (batched: ``[B, 3, T, H, W]``) floats in
[-1, 1]; files hold ``[T, H, W, 3]`` uint8. ``x = u8 / 127.5 - 1`` and back with rounding, as the
reference ``VideoProcessor`` does (``x / 2 + 0.5`` then ``* 255``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from einops import rearrange

__all__ = ["frames_to_tensor", "sample_frame_indices", "tensor_to_frames"]


def frames_to_tensor(frames: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> ``[3, T, H, W]`` in [-1, 1]."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(
            f"frames must be uint8 [T, H, W, 3], got dtype {arr.dtype} shape {tuple(arr.shape)}"
        )
    # torch.tensor copies (a read-only array, e.g. a decoded image, is fine: no shared memory)
    x = torch.tensor(arr, dtype=dtype)
    return rearrange(x, "t h w c -> c t h w") / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """``[3, T, H, W]`` in [-1, 1] -> uint8 ``[T, H, W, 3]`` (values outside [-1, 1] are clipped)."""
    if x.ndim != 4 or x.shape[0] != 3:
        raise ValueError(f"expected a [3, T, H, W] tensor, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("the video tensor contains NaN or infinite values")
    u = ((x.detach().float().cpu() + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)
    return rearrange(u, "c t h w -> t h w c").numpy()


def sample_frame_indices(
    num_frames: int,
    fps: float,
    *,
    every_seconds: float | None = None,
    num: int | None = None,
) -> list[int]:
    """Indices of the frames to look at.

    ``every_seconds``: one frame every that many seconds starting at frame 0 (CogVideoX's dense
    captioning samples one frame every 2 s, paper App. G). ``num``: that many frames spread
    evenly from the first to the last (both included). Exactly one of the two must be given.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if (every_seconds is None) == (num is None):
        raise ValueError("give exactly one of every_seconds or num")
    if every_seconds is not None:
        if every_seconds <= 0 or fps <= 0:
            raise ValueError(f"every_seconds and fps must be > 0, got {every_seconds} and {fps}")
        step = every_seconds * fps
        count = math.floor((num_frames - 1) / step) + 1
        return [min(num_frames - 1, round(i * step)) for i in range(count)]
    assert num is not None
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if num == 1:
        return [0]
    return [round(i * (num_frames - 1) / (num - 1)) for i in range(num)]
