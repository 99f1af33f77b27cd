"""Video and image files through PyAV (bundled FFmpeg, no system ffmpeg needed).

Frames are ``np.uint8`` arrays ``[T, H, W, 3]`` (RGB) everywhere in this module; conversion to the
model layout (``[3, T, H, W]`` floats in [-1, 1]) lives in :mod:`cogvx.videoio.tensors`.
Every writer is atomic: output goes to a temporary file in the target folder and is moved into
place only when complete, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from cogvx.modelio import atomic_write
from cogvx.videoio.paths import WRITABLE_VIDEO_SUFFIXES

__all__ = [
    "Video",
    "VideoInfo",
    "VideoReadError",
    "atomic_output",
    "probe_video",
    "read_image",
    "read_video",
    "write_image",
    "write_video",
]


class VideoReadError(ValueError):
    """A video file could not be read: missing, corrupt, or without any frame."""


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about its first video stream."""

    num_frames: int
    height: int
    width: int
    fps: float


@dataclass(frozen=True)
class Video:
    """Decoded RGB frames ``[T, H, W, 3]`` uint8 and the stream's frame rate."""

    frames: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def atomic_output(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The workspace's one atomic write, :func:`cogvx.modelio.atomic_write` (missing parent folders
    are created): the temporary name ``.<stem>.<random>.partial<suffix>`` keeps the suffix
    (encoders pick the container from it) and is skipped by :func:`cogvx.videoio.collect_media`;
    on any exception, KeyboardInterrupt included, it is removed and ``path`` is left untouched.
    """
    return atomic_write(path, parents=True)


def _open(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    if not p.is_file():
        raise VideoReadError(f"video file {str(p)!r} does not exist")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoReadError(f"cannot open video {str(p)!r}: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{str(p)!r} has no video stream")
    return container


def _stream_fps(stream: Any) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(rate) if rate else 0.0


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, size and fps of the first video stream.

    The frame count comes from the container header when it has one and from decoding otherwise
    (GIF and some MP4 writers leave it empty), so it is always the number of decodable frames.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        n = int(stream.frames or 0)
        height, width = int(stream.codec_context.height), int(stream.codec_context.width)
        if n <= 0:
            try:
                n = sum(1 for _ in container.decode(stream))
            except av.FFmpegError as e:
                raise VideoReadError(f"cannot decode {str(path)!r}: {e}") from e
    if n <= 0:
        raise VideoReadError(f"video {str(path)!r} has no frames")
    return VideoInfo(num_frames=n, height=height, width=width, fps=fps)


def read_video(
    path: str | os.PathLike[str],
    *,
    max_frames: int | None = None,
    frame_indices: Sequence[int] | None = None,
) -> Video:
    """Decode a video into RGB uint8 frames ``[T, H, W, 3]``.

    ``frame_indices`` keeps only those frames (in the given order, repeats allowed);
    ``max_frames`` stops after that many frames. Raises :class:`VideoReadError` for missing,
    corrupt or zero-frame files and for indices past the end.
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    wanted = None if frame_indices is None else sorted(set(int(i) for i in frame_indices))
    if wanted is not None and wanted and wanted[0] < 0:
        raise ValueError(f"frame_indices must be >= 0, got {wanted[0]}")
    last = None if wanted is None else (wanted[-1] if wanted else -1)
    frames: dict[int, np.ndarray] = {}
    decoded: list[np.ndarray] = []
    count = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _stream_fps(stream)
        try:
            for i, frame in enumerate(container.decode(stream)):
                if last is not None and i > last:
                    break
                count = i + 1
                if wanted is None:
                    decoded.append(frame.to_ndarray(format="rgb24"))
                    if max_frames is not None and len(decoded) >= max_frames:
                        break
                elif i in wanted:
                    frames[i] = frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise VideoReadError(f"cannot decode {str(path)!r}: {e}") from e
    if wanted is not None:
        missing = [i for i in wanted if i not in frames]
        if missing:
            raise VideoReadError(
                f"frame_indices {missing[:5]} are past the end of {str(path)!r}, "
                f"which has {count} frames (valid: 0..{count - 1})"
            )
        decoded = [frames[int(i)] for i in frame_indices]  # type: ignore[union-attr]
    if not decoded:
        raise VideoReadError(f"video {str(path)!r} has no frames")
    return Video(frames=np.stack(decoded), fps=fps)


FLOAT_FRAME_TOLERANCE = 1.0 / 512
"""Float frames may leave [0, 1] by this much (under half a uint8 level, decoder rounding)."""


def _as_uint8_frames(frames: Any, name: str = "frames") -> np.ndarray:
    """Accept uint8 ``[T,H,W,3]`` or floats in [0, 1] (numpy or torch) and return uint8.

    Floats outside [0, 1] (beyond :data:`FLOAT_FRAME_TOLERANCE`), e.g. [0, 255] data in a float
    array or [-1, 1] model output, are refused with the observed range, never clipped.
    """
    if hasattr(frames, "detach"):  # a torch tensor; keep torch an optional import here
        frames = frames.detach().cpu().float().numpy()
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"{name} must be [T, H, W, 3], got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: a video needs at least one frame")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 or float in [0, 1], got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = float(arr.min()), float(arr.max())
    if low < -FLOAT_FRAME_TOLERANCE or high > 1 + FLOAT_FRAME_TOLERANCE:
        raise ValueError(
            f"{name}: float frames must be in [0, 1], observed range [{low:g}, {high:g}] "
            "(give [0, 255] data as uint8; map [-1, 1] model output with x / 2 + 0.5)"
        )
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


MP4_PIXEL_FORMATS = ("yuv420p", "yuv444p")


def write_video(
    path: str | os.PathLike[str],
    frames: Any,
    fps: float,
    *,
    crf: int = 18,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write frames (uint8 ``[T,H,W,3]`` or floats in [0,1]) to ``.mp4`` (H.264) or ``.gif``.

    ``pix_fmt`` (mp4 only): ``"yuv420p"`` (default, plays everywhere; chroma at half resolution,
    which blurs colour edges of small frames) or ``"yuv444p"`` (full-resolution chroma; with
    ``crf=0`` H.264 is lossless up to the RGB/YUV rounding, max error 1 level). H.264 with yuv420p
    needs even sizes: odd heights/widths are refused rather than cropped.
    The file appears only once complete.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in WRITABLE_VIDEO_SUFFIXES:
        raise ValueError(
            f"path={str(target)!r}: a video is written as one of {', '.join(WRITABLE_VIDEO_SUFFIXES)}"
        )
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if pix_fmt not in MP4_PIXEL_FORMATS:
        raise ValueError(f"pix_fmt={pix_fmt!r}: expected one of {MP4_PIXEL_FORMATS}")
    arr = _as_uint8_frames(frames)
    _, height, width, _ = arr.shape
    if suffix == ".mp4" and pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"mp4 (yuv420p) needs even height and width, got {height}x{width}")
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    with atomic_output(target) as tmp, av.open(str(tmp), mode="w", format=suffix[1:]) as out:
        if suffix == ".mp4":
            stream = out.add_stream("libx264", rate=rate)
            stream.pix_fmt = pix_fmt
            stream.options = {"crf": str(crf), "preset": "medium"}
        else:
            stream = out.add_stream("gif", rate=rate)
            stream.pix_fmt = "rgb8"
        stream.width, stream.height = width, height
        for frame in arr:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    """Any Pillow mode -> RGB uint8, scaling deep images instead of clipping them."""
    if im.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own RGB conversion clips 16-bit grey at 255 (a white image); scale instead.
        # Mode "I" (32-bit ints) is how Pillow holds 16-bit PNG/TIFF data: read as 0..65535.
        grey = np.asarray(im).astype(np.float64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise ValueError(
                f"image {str(path)!r}: mode {im.mode} values [{grey.min():g}, {grey.max():g}] "
                "are outside the 16-bit range 0..65535"
            )
        grey8 = np.rint(grey / 257.0).astype(np.uint8)
        return np.repeat(grey8[..., None], 3, axis=-1)
    if im.mode == "F":
        grey = np.asarray(im).astype(np.float64)
        if not np.isfinite(grey).all() or (grey.size and (grey.min() < 0 or grey.max() > 1)):
            raise ValueError(
                f"image {str(path)!r}: float (mode F) values must be finite and in [0, 1], "
                f"observed [{np.nanmin(grey):g}, {np.nanmax(grey):g}]"
            )
        grey8 = np.rint(grey * 255.0).astype(np.uint8)
        return np.repeat(grey8[..., None], 3, axis=-1)
    # palette (with or without transparency), L, LA, 1, CMYK, YCbCr, RGBA, ...: Pillow converts
    # these exactly; an alpha channel is dropped (the colour under it is kept), as the reference
    # loader (diffusers ``load_image``: exif_transpose + convert("RGB")) does.
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB uint8 ``[H, W, 3]``, upright.

    The EXIF orientation is applied (a phone photo comes out as it is shown); 16-bit grey images
    are scaled to 8 bits (``v / 257``), not clipped; palette, grey, grey+alpha, CMYK and other
    modes are converted to RGB (alpha dropped). Missing, corrupt or unreadable files raise with
    the path.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image file {str(p)!r} does not exist")
    try:
        with Image.open(p) as im:
            upright = ImageOps.exif_transpose(im)
            return _to_rgb8(upright if upright is not None else im, p)
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image {str(p)!r}: {e}") from e


def write_image(path: str | os.PathLike[str], image: Any) -> Path:
    """Write an RGB image (uint8 ``[H,W,3]`` or floats in [0,1]) atomically; format by suffix."""
    arr = _as_uint8_frames(
        np.asarray(image)[None] if not hasattr(image, "detach") else image[None], name="image"
    )[0]
    target = Path(path)
    fmt = Image.registered_extensions().get(target.suffix.lower())
    if fmt is None:
        raise ValueError(f"image path {str(target)!r}: unknown image suffix {target.suffix!r}")
    with atomic_output(target) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt)
    return target


def export_to_video(
    video_frames: Any, output_video_path: str | os.PathLike[str] | None = None, fps: float = 10
) -> str:
    """diffusers' ``export_to_video``: write one video's frames and return the path (a temporary
    ``.mp4`` when ``output_video_path`` is None).

    ``video_frames``: a list of PIL images, a list of ``[H, W, 3]`` arrays (uint8, or float in
    [0, 1]), a ``[T, H, W, 3]`` array, or a float ``[T, 3, H, W]`` tensor in [0, 1] (a pipeline's
    ``output_type="pt"`` video). Floats outside [0, 1] are refused, not clipped. Written with
    :func:`write_video` (atomic; ``.mp4`` or ``.gif``).
    """
    if isinstance(video_frames, (list, tuple)):
        if not video_frames:
            raise ValueError("video_frames=[]: a video needs at least one frame")
        items = [
            np.asarray(f.convert("RGB")) if isinstance(f, Image.Image) else np.asarray(f)
            for f in video_frames
        ]
        if len({(a.shape, a.dtype) for a in items}) != 1:
            raise ValueError("video_frames: every frame must have the same shape and dtype")
        arr = np.stack(items)
    elif hasattr(video_frames, "detach"):  # a torch tensor
        arr = video_frames.detach().cpu().numpy()
        if arr.ndim == 4 and arr.shape[1] == 3 and arr.shape[-1] != 3:
            arr = arr.transpose(0, 2, 3, 1)  # [T, 3, H, W] -> [T, H, W, 3]
    else:
        arr = np.asarray(video_frames)
    if np.issubdtype(arr.dtype, np.floating) and arr.size and np.isfinite(arr).all():
        low, high = float(arr.min()), float(arr.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"video_frames: float frames must be in [0, 1], got [{low:g}, {high:g}] "
                "(uint8 data: pass uint8 arrays)"
            )
    if output_video_path is None:
        with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as tmp:
            output_video_path = tmp.name
    return str(write_video(output_video_path, _as_uint8_frames(arr, "video_frames"), fps))
