"""VBench's image preprocessing (``vbench/utils.py``), reproduced with torch.

VBench applies torchvision transforms to uint8 video tensors: ``Resize`` on a uint8 tensor
interpolates in float *without antialiasing* (``antialias=False``) and rounds back to uint8
before ``/255`` and normalisation. ``clip_transform_Image`` (used by appearance style) instead
resizes PIL images, which PIL always antialiases. Both variants are here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "center_crop",
    "normalize",
    "resize_shorter",
    "shorter_side_size",
    "to_tensor",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def shorter_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(int)``: shorter side -> ``size``, longer side ``int(size·long/short)``."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[N,H,W,3]`` -> float32 ``[N,3,H,W]`` holding 0..255."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()


def resize_shorter(
    frames: np.ndarray, size: int, mode: str = "bilinear", *, pil: bool = False
) -> torch.Tensor:
    """Resize shorter side to ``size``; returns float32 ``[N,3,H',W']`` of uint8 values (0..255).

    ``pil=False``: torchvision-on-uint8-tensor behaviour (no antialias, rounded and clamped).
    ``pil=True``: PIL resize (antialiased), as ``clip_transform_Image``.
    """
    h, w = frames.shape[1:3]
    nh, nw = shorter_side_size(h, w, size)
    if pil:
        resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[mode]
        out = np.stack([np.asarray(Image.fromarray(f).resize((nw, nh), resample)) for f in frames])
        return to_tensor(out)
    x = to_tensor(frames)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode=mode, align_corners=False, antialias=False)
        x = x.round().clamp(0, 255)
    return x


def resize_to(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ``[N,3,H,W]`` uint8-valued floats to ``size`` (no antialias, rounded)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return (
        F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=False)
        .round()
        .clamp(0, 255)
    )


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision ``CenterCrop``: top = ``int(round((H − size)/2))``. ``[N,C,H,W]``."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot center-crop {h}x{w} to {size}x{size}")
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    return x[..., top : top + size, left : left + size]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(x/255 − mean)/std`` per channel on ``[N,3,H,W]`` uint8-valued floats."""
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x / 255.0 - m) / s
