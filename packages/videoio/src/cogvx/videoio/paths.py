"""Which files are videos and images, and the one collector of media files for every command.

The suffix lists here are the workspace's only ones: readers (evals, captioner, training data)
accept :data:`VIDEO_SUFFIXES` (what the bundled FFmpeg decodes), writers produce
:data:`WRITABLE_VIDEO_SUFFIXES`. A folder is expanded without its dot-files and without the
temporary ``*.partial.*`` files that an interrupted atomic write leaves (docs/reliability.md):
an unfinished output is never mistaken for a video.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "IMAGE_SUFFIXES",
    "PARTIAL_MARKER",
    "VIDEO_SUFFIXES",
    "WRITABLE_VIDEO_SUFFIXES",
    "collect_media",
    "is_image_path",
    "is_partial_output",
    "is_video_path",
]

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif")
"""Video containers every reader accepts (lower case; matching ignores case)."""

WRITABLE_VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".gif")
"""Video containers :func:`cogvx.videoio.write_video` writes (H.264 MP4 and GIF)."""

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
"""Still images every reader accepts."""

PARTIAL_MARKER = ".partial"
"""The suffix part that marks a temporary output (``.name.XXXX.partial.mp4``)."""


def is_partial_output(path: str | os.PathLike[str]) -> bool:
    """True for dot-files and for temporary outputs of an unfinished write (``*.partial.*``)."""
    name = Path(path).name
    return name.startswith(".") or PARTIAL_MARKER in Path(name).suffixes


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when the suffix is a readable video container (no file access)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the suffix is a readable still image (no file access)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def collect_media(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    images: bool = False,
    recursive: bool = False,
    parameter: str = "paths",
) -> list[Path]:
    """Files as given, folders expanded to their video (and, with ``images``, image) files.

    Folder contents are sorted by path, with dot-files and ``*.partial.*`` outputs left out;
    ``recursive`` descends into sub-folders (dot-folders excluded). A file named explicitly is
    kept whatever its suffix (the reader then says what is wrong with it). A path that does not
    exist raises ``FileNotFoundError`` naming ``parameter`` and the path, before any work.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    suffixes = VIDEO_SUFFIXES + (IMAGE_SUFFIXES if images else ())
    out: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            out += sorted(
                f
                for f in found
                if f.suffix.lower() in suffixes
                and not is_partial_output(f)
                and not any(part.startswith(".") for part in f.relative_to(p).parts[:-1])
                and f.is_file()
            )
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{parameter}={str(p)!r}: no such file or folder")
    return out
