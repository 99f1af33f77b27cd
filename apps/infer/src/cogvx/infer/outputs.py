"""What ``cogvx generate`` writes, and the checks it makes on output paths before any work.

A single run writes ``PATH.mp4`` (or ``PATH.gif``), a GIF preview ``PATH.gif`` beside an mp4, a
contact sheet ``PATH.png`` (evenly spaced frames in one row) and an entry in ``generation.json`` in
the same folder: a JSON object keyed by video file name (``{"PATH.mp4": {prompt, negative prompt,
seed, steps, guidance, sampler, model folder, shape, fps, package versions, files}}``), so several
runs can share a folder without one record replacing another. Every file is written to a temporary dot-file in its folder and renamed into place
(:func:`cogvx.videoio.atomic_output`), so an interrupted run leaves either the complete file or
nothing a video collector lists. An existing output is never replaced unless ``overwrite``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cogvx.cli.usage import UsageError

__all__ = [
    "RECORD_NAME",
    "VIDEO_SUFFIXES",
    "RunOutputs",
    "check_writable_folder",
    "contact_sheet",
    "plan_outputs",
    "read_records",
    "versions",
    "write_record",
    "write_run_outputs",
]

VIDEO_SUFFIXES = (".mp4", ".gif")
RECORD_NAME = "generation.json"


@dataclass(frozen=True)
class RunOutputs:
    """The files one single-prompt run will write."""

    video: Path
    preview: Path | None  # the GIF beside an mp4 (None when the video is a GIF)
    sheet: Path
    record: Path

    @property
    def all(self) -> list[Path]:
        return [p for p in (self.video, self.preview, self.sheet, self.record) if p is not None]


def check_writable_folder(folder: Path, parameter: str, shown: str | None = None) -> None:
    """``folder`` is, or can be created as, a writable folder: a temporary file is created and removed
    in its nearest existing ancestor (nothing is left behind, no folder is created)."""
    shown = str(folder) if shown is None else shown
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(parameter, shown, f"{probe} is a file, not a folder")
    try:  # a real write: permission bits say nothing about read-only or virtual file systems
        fd, name = tempfile.mkstemp(prefix=".cogvx-write-test.", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise UsageError(parameter, shown, f"{probe} is not writable ({e.strerror})") from None


def plan_outputs(
    path: str | os.PathLike[str], *, overwrite: bool, parameter: str = "--output"
) -> RunOutputs:
    """Check ``path`` before any work (suffix, not a folder, folder writable, no earlier output
    unless ``overwrite``) and return the files the run will write."""
    video = Path(path)
    text = str(path)
    if text.endswith(os.sep) or video.is_dir():
        raise UsageError(parameter, text, "a video file path ending in .mp4 or .gif, not a folder")
    if video.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(parameter, text, "a file path ending in .mp4 or .gif")
    if video.stem.startswith("."):
        raise UsageError(parameter, text, "a name not starting with '.' (dot-files are temporary)")
    check_writable_folder(video.parent, parameter, text)
    preview = video.with_suffix(".gif") if video.suffix.lower() == ".mp4" else None
    planned = RunOutputs(video, preview, video.with_suffix(".png"), video.parent / RECORD_NAME)
    for p in planned.all:
        if p.is_dir():
            raise UsageError(parameter, text, f"{p} is a folder; choose another output path")
    existing = [str(p) for p in (video, preview, planned.sheet) if p is not None and p.exists()]
    if planned.record.exists():
        try:
            entries = read_records(planned.record)
        except ValueError as e:
            if not overwrite:
                raise UsageError(parameter, text, f"{e}; pass --overwrite to replace it") from None
            entries = {}
        if video.name in entries:
            existing.append(f"{planned.record} entry {video.name!r}")
    if existing and not overwrite:
        raise UsageError(
            parameter,
            text,
            f"would replace earlier output(s) {', '.join(existing)}; "
            "choose another path or pass --overwrite",
        )
    return planned


def contact_sheet(frames: np.ndarray, *, count: int = 8, min_height: int = 96) -> np.ndarray:
    """``count`` evenly spaced frames of a uint8 ``[F, H, W, 3]`` video side by side, 2 px apart,
    enlarged by an integer factor (nearest) so tiny videos stay visible."""
    num = frames.shape[0]
    picks = np.unique(np.linspace(0, num - 1, min(count, num)).round().astype(int))
    scale = max(1, -(-min_height // frames.shape[1]))
    tiles = [frames[i].repeat(scale, axis=0).repeat(scale, axis=1) for i in picks]
    gap = np.full((tiles[0].shape[0], 2, 3), 255, dtype=np.uint8)
    row = [t for tile in tiles for t in (tile, gap)][:-1]
    return np.concatenate(row, axis=1)


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide the output."""
    out = {"python": sys.version.split()[0]}
    for dist in ("cogvx-infer", "cogvx-expert-dit", "cogvx-vae3d", "torch", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def read_records(path: Path) -> dict[str, Any]:
    """The entries of a ``generation.json`` (ValueError naming the file when it is not one)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a readable generation record ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path} is not a generation record (an object of objects by video name)")
    return data


def write_record(path: Path, record: Mapping[str, Any]) -> Path:
    """Write a JSON record atomically (temporary dot-file in the same folder, then rename)."""
    from cogvx.videoio import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


def write_run_outputs(
    planned: RunOutputs, frames: np.ndarray, fps: float, record: Mapping[str, Any]
) -> list[Path]:
    """Write the video, its GIF preview, the contact sheet and ``generation.json``; returns them."""
    from PIL import Image

    from cogvx.videoio import atomic_output, write_video

    written = [write_video(planned.video, frames, fps)]
    if planned.preview is not None:
        written.append(write_video(planned.preview, frames, fps))
    # PNG by name: Pillow's suffix lookup would import all ~40 of its format plugins first
    with atomic_output(planned.sheet) as tmp:
        Image.fromarray(contact_sheet(frames)).save(tmp, format="PNG")
    written.append(planned.sheet)
    entries: dict[str, Any] = {}
    if planned.record.exists():
        try:
            entries = read_records(planned.record)
        except ValueError:
            entries = {}  # plan_outputs refused it unless overwrite was asked for
    entries[planned.video.name] = {**record, "files": [p.name for p in planned.all]}
    written.append(write_record(planned.record, entries))
    return written
