"""Pipeline inputs and outputs: images and videos in, frames out.

Inputs follow the reference ``VideoProcessor`` (diffusers ``video_processor.py``): PIL images are
resized with Lanczos, arrays and tensors with nearest-neighbour interpolation, and the result is
scaled to [-1, 1]. Unlike the reference, values are checked against the stated range and image modes
are converted by their bit depth (docs/reliability.md §Python APIs): 16-bit PIL images are scaled by
65535 (the reference clips them to white), palette/LA/CMYK go through Pillow's RGB conversion, and the
EXIF orientation is applied.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from cogvx.infer.validation import check_output_type, describe, invalid

__all__ = ["image_to_unit", "postprocess", "preprocess_images", "preprocess_video", "write_videos"]

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _pil_to_unit(image: Image.Image, height: int, width: int, name: str) -> torch.Tensor:
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT or image.mode == "F":
        arr = np.asarray(image, dtype=np.float32)
        if image.mode == "F":
            low, high, scale = 0.0, 1.0, 1.0
        else:
            low, high, scale = 0.0, 65535.0, 65535.0
        if not np.isfinite(arr).all() or arr.min() < low or arr.max() > high:
            raise invalid(
                name,
                f"<PIL {image.mode} {image.size[0]}x{image.size[1]}>",
                f"a {image.mode} image needs values in [{low:g}, {high:g}] "
                f"(got [{arr.min():g}, {arr.max():g}])",
            )
        gray = Image.fromarray(arr / scale, mode="F")
        if gray.size != (width, height):
            gray = gray.resize((width, height), resample=Image.LANCZOS)
        unit = np.clip(np.asarray(gray, dtype=np.float32), 0.0, 1.0)
        return torch.from_numpy(unit)[None].expand(3, -1, -1).clone()
    rgb = image.convert("RGB")
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), resample=Image.LANCZOS)
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _array_to_unit(image: np.ndarray, name: str) -> torch.Tensor:
    if image.ndim != 3 or image.shape[-1] != 3:
        raise invalid(name, f"<array {image.shape}>", "image arrays must be [H, W, 3]")
    if image.dtype == np.uint8:
        arr = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        arr = image.astype(np.float32) / 65535.0
    elif np.issubdtype(image.dtype, np.floating):
        arr = image.astype(np.float32)
        _check_unit_range(torch.from_numpy(arr), name, "float image arrays")
    else:
        raise invalid(
            name, f"<array {image.dtype}>", "expected uint8, uint16 or float in [0, 1]", TypeError
        )
    return torch.from_numpy(arr).permute(2, 0, 1)


def _check_unit_range(x: torch.Tensor, name: str, what: str) -> None:
    if not torch.isfinite(x).all():
        raise invalid(name, f"<{tuple(x.shape)} with NaN/inf>", f"{what} must be finite, in [0, 1]")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise invalid(
            name,
            f"<{tuple(x.shape)} in [{low:g}, {high:g}]>",
            f"{what} must be in [0, 1] (uint8 data: pass uint8 arrays or PIL images)",
        )


def image_to_unit(image: Any, height: int, width: int, *, name: str = "image") -> torch.Tensor:
    """One image -> float32 ``[3, height, width]`` in [0, 1]: a PIL image (any mode), a uint8,
    uint16 or float ``[H, W, 3]`` array, or a float ``[3, H, W]`` tensor in [0, 1]."""
    if isinstance(image, Image.Image):
        return _pil_to_unit(image, height, width, name)
    if isinstance(image, np.ndarray):
        chw = _array_to_unit(image, name)
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise invalid(name, f"<tensor {tuple(image.shape)}>", "image tensors must be [3, H, W]")
        if not image.is_floating_point():
            raise invalid(
                name, f"<tensor {image.dtype}>", "image tensors must be float in [0, 1]", TypeError
            )
        chw = image.detach().float().cpu()
        _check_unit_range(chw, name, "image tensors")
    else:
        raise invalid(
            name,
            describe(image),
            "expected a PIL image, a [H, W, 3] array or a [3, H, W] tensor",
            TypeError,
        )
    if chw.shape[1:] != (height, width):
        chw = torch.nn.functional.interpolate(chw[None], size=(height, width))[0]
    return chw


def preprocess_images(images: Any, height: int, width: int) -> torch.Tensor:
    """An image, a list of images or a ``[B, 3, H, W]`` tensor -> ``[B, 3, H, W]`` in [-1, 1]."""
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        items = list(images)
    elif isinstance(images, list):
        if not images:
            raise invalid("image", images, "an empty list has no image")
        items = images
    else:
        items = [images]
    names = ["image"] if len(items) == 1 else [f"image[{i}]" for i in range(len(items))]
    out = [image_to_unit(im, height, width, name=n) for im, n in zip(items, names)]
    return torch.stack(out) * 2 - 1


def preprocess_video(video: Any, height: int, width: int) -> torch.Tensor:
    """A video -> ``[1, 3, F, H, W]`` in [-1, 1]: a list of frames (PIL, arrays or ``[3, H, W]``
    tensors), a ``[F, H, W, 3]`` array or a ``[F, 3, H, W]`` tensor."""
    if isinstance(video, (np.ndarray, torch.Tensor)) and video.ndim == 4:
        frames = list(video)
    elif isinstance(video, list) and video:
        frames = video
    else:
        raise invalid(
            "video",
            describe(video) if not isinstance(video, list) else video,
            "expected a non-empty list of frames, a [F, H, W, 3] array or a [F, 3, H, W] tensor",
            TypeError if not isinstance(video, list) else ValueError,
        )
    out = [image_to_unit(f, height, width, name=f"video[{i}]") for i, f in enumerate(frames)]
    return (torch.stack(out, dim=1) * 2 - 1)[None]  # [1, 3, F, H, W]


def postprocess(frames: torch.Tensor, output_type: str) -> Any:
    """``[B, F, 3, H, W]`` float in [0, 1] -> ``pt`` (as is), ``np`` ``[B, F, H, W, 3]`` float32 or
    ``pil`` (a list per video of PIL images), as the reference ``postprocess_video``."""
    check_output_type(output_type)
    if output_type == "np":
        return frames.permute(0, 1, 3, 4, 2).cpu().numpy()
    if output_type == "pil":
        arrays = (frames.permute(0, 1, 3, 4, 2).cpu().numpy() * 255).round().astype(np.uint8)
        return [[Image.fromarray(f) for f in video] for video in arrays]
    return frames


def write_videos(frames: torch.Tensor, path: str | os.PathLike[str], *, fps: float) -> list[Path]:
    """Write each video of a ``[B, F, 3, H, W]`` batch in [0, 1] with
    :func:`cogvx.videoio.write_video` (atomic): item ``i > 0`` goes to ``<stem>_<i><suffix>``."""
    from cogvx.videoio import WRITABLE_VIDEO_SUFFIXES, write_video

    path = Path(path)
    if path.suffix.lower() not in WRITABLE_VIDEO_SUFFIXES:
        raise invalid(
            "path", str(path), f"the output must end in {' or '.join(WRITABLE_VIDEO_SUFFIXES)}"
        )
    written = []
    for i in range(frames.shape[0]):
        target = path if i == 0 else path.with_name(f"{path.stem}_{i}{path.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_video(target, frames[i].permute(0, 2, 3, 1).float().cpu().numpy(), fps)
        written.append(target)
    return written
