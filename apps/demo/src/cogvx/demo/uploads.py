"""Checking and decoding the page's uploads with the project's reader (:mod:`cogvx.videoio`).

An upload is refused, with a message the page shows, when it is larger than the byte limit, has
more frames or pixels than allowed, or does not decode (a corrupt or mislabelled file). Nothing is
decoded before the size and the header have been checked, so a huge or hostile file costs a
``stat`` and a header read, not a decode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cogvx.videoio import VideoReadError, probe_video, read_image, read_video

__all__ = ["UploadError", "UploadLimits", "load_image", "load_video"]


class UploadError(ValueError):
    """An upload the demo refuses; ``str(e)`` is the message the page shows."""


@dataclass(frozen=True)
class UploadLimits:
    """Limits on one uploaded file (defaults: 50 MB, 300 frames, 4096 x 4096 pixels a frame)."""

    max_bytes: int = 50 * 1024 * 1024
    max_frames: int = 300
    max_pixels: int = 4096 * 4096

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_frames", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"UploadLimits.{name}={value!r}: expected a positive integer")


def _reason(error: BaseException, file: Path) -> str:
    """The reader's message without the server-side path of the upload (the name is enough)."""
    text = " ".join(str(error).split())
    return text.replace(f"'{file}'", "the file").replace(str(file), "the file")


def _check_file(path: str | os.PathLike[str], what: str, limits: UploadLimits) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UploadError(f"{what}: the uploaded file is missing; upload it again")
    size = file.stat().st_size
    if size == 0:
        raise UploadError(f"{what} {file.name!r} is empty")
    if size > limits.max_bytes:
        raise UploadError(
            f"{what} {file.name!r} is {size / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.1f} MB"
        )
    return file


def load_image(path: str | os.PathLike[str], limits: UploadLimits) -> np.ndarray:
    """An uploaded image as RGB uint8 ``[H, W, 3]``, or an :class:`UploadError`."""
    file = _check_file(path, "image", limits)
    try:
        image = read_image(file)
    except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise UploadError(f"image {file.name!r} could not be decoded: {_reason(e, file)}") from None
    if image.shape[0] * image.shape[1] > limits.max_pixels:
        raise UploadError(
            f"image {file.name!r} is {image.shape[1]}x{image.shape[0]} pixels; "
            f"the limit is {limits.max_pixels} pixels"
        )
    return image


def load_video(path: str | os.PathLike[str], limits: UploadLimits, num_frames: int) -> np.ndarray:
    """The first ``num_frames`` frames of an uploaded video, RGB uint8 ``[num_frames, H, W, 3]``.

    Refused (:class:`UploadError`) when over the limits, undecodable, or shorter than
    ``num_frames`` (frames are never repeated or invented to make up the count)."""
    file = _check_file(path, "video", limits)
    try:
        info = probe_video(file)
    except (VideoReadError, OSError) as e:
        raise UploadError(f"video {file.name!r} could not be decoded: {_reason(e, file)}") from None
    if info.num_frames > limits.max_frames:
        raise UploadError(
            f"video {file.name!r} has {info.num_frames} frames; the limit is {limits.max_frames}"
        )
    if info.height * info.width > limits.max_pixels:
        raise UploadError(
            f"video {file.name!r} is {info.width}x{info.height} pixels; "
            f"the limit is {limits.max_pixels} pixels a frame"
        )
    if info.num_frames < num_frames:
        raise UploadError(
            f"video {file.name!r} has {info.num_frames} frames; {num_frames} were asked for "
            "(choose fewer frames or a longer video)"
        )
    try:
        frames = read_video(file, max_frames=num_frames).frames
    except (VideoReadError, OSError) as e:
        raise UploadError(f"video {file.name!r} could not be decoded: {_reason(e, file)}") from None
    if frames.shape[0] != num_frames:
        raise UploadError(
            f"video {file.name!r}: only {frames.shape[0]} of its {info.num_frames} frames decode; "
            f"{num_frames} were asked for"
        )
    return frames
