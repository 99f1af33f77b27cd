"""The cogvx data manifest: JSON Lines, one sample per line (docs/data.md §Manifest).

    {"path": "clips/0001.mp4", "caption": "...", "type": "video", "frames": 49,
     "height": 480, "width": 720, "fps": 8.0, "scores": {...}, "tags": [...]}

Paths are relative to the manifest's folder (absolute paths are kept as they are). The captioner
writes it, frame packing and training read it. Keys this version does not know are kept in
``ManifestRecord.extra`` and written back, so tools can add fields without breaking readers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogvx.videoio.jsonl import JsonlAppender, JsonlProblem, iter_jsonl

__all__ = [
    "ManifestError",
    "ManifestRecord",
    "ManifestWriter",
    "read_manifest",
    "resolve_path",
    "scan_manifest",
]

SAMPLE_TYPES = ("video", "image")
_KNOWN = ("path", "caption", "type", "frames", "height", "width", "fps", "scores", "tags")


class ManifestError(ValueError):
    """A manifest line is not valid; the message names the file, line and field."""


@dataclass(frozen=True)
class ManifestRecord:
    """One training sample. ``frames`` is 1 for images; ``fps`` may be None for images."""

    path: str
    caption: str
    type: str
    frames: int
    height: int
    width: int
    fps: float | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ManifestError(f"path must be a non-empty string, got {self.path!r}")
        if not isinstance(self.caption, str):
            raise ManifestError(f"caption must be a string, got {type(self.caption).__name__}")
        if self.type not in SAMPLE_TYPES:
            raise ManifestError(f"type must be one of {SAMPLE_TYPES}, got {self.type!r}")
        for name in ("frames", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ManifestError(f"{name} must be an integer >= 1, got {value!r}")
        if self.type == "image" and self.frames != 1:
            raise ManifestError(f"an image sample has frames == 1, got {self.frames}")
        if self.fps is not None and (
            isinstance(self.fps, bool)
            or not isinstance(self.fps, int | float)
            or not math.isfinite(self.fps)
            or self.fps <= 0
        ):
            raise ManifestError(f"fps must be a finite number > 0, got {self.fps!r}")
        if self.type == "video" and self.fps is None:
            raise ManifestError("a video sample needs fps")
        object.__setattr__(self, "scores", dict(self.scores))
        object.__setattr__(self, "tags", tuple(self.tags))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestRecord:
        missing = [k for k in ("path", "type", "frames", "height", "width") if k not in data]
        if missing:
            raise ManifestError(f"missing required field(s) {missing}")
        scores = data.get("scores")
        scores = {} if scores is None else scores
        if not isinstance(scores, Mapping):
            raise ManifestError(f"scores must be an object, got {type(scores).__name__}")
        for name, value in scores.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ManifestError(f"scores.{name} must be a finite number, got {value!r}")
        tags = data.get("tags")
        tags = [] if tags is None else tags
        if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
            raise ManifestError(f"tags must be a list of strings, got {tags!r}")
        return cls(
            path=data["path"],
            caption=data.get("caption", ""),
            type=data["type"],
            frames=data["frames"],
            height=data["height"],
            width=data["width"],
            fps=data.get("fps"),
            scores=scores,
            tags=tuple(tags),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "caption": self.caption,
            "type": self.type,
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "fps": self.fps,
        }
        if self.scores:
            out["scores"] = dict(self.scores)
        if self.tags:
            out["tags"] = list(self.tags)
        out.update(self.extra)
        return out


def _check_record(data: dict[str, Any]) -> None:
    ManifestRecord.from_dict(data)


def scan_manifest(
    path: str | os.PathLike[str],
) -> tuple[list[ManifestRecord], list[tuple[int, str]]]:
    """Read every line, keeping the valid records and listing the invalid ones.

    Returns ``(records, invalid)`` where ``invalid`` holds ``(line_number, reason)`` (1-based), so
    a caller that tolerates a few bad lines in a large manifest can still report each of them
    (as ``file:line: reason``). A missing file raises ``FileNotFoundError`` naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"manifest {str(p)!r} does not exist")
    problems: list[JsonlProblem] = []
    records = [
        ManifestRecord.from_dict(obj)
        for _, obj in iter_jsonl(p, policy="skip", check=_check_record, problems=problems)
    ]
    return records, [(pr.line, pr.reason) for pr in problems]


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRecord]:
    """Read and validate every line; blank lines are allowed, an invalid line raises
    :class:`ManifestError` ``"<file>:<line>: <reason>"`` (with the count of further bad lines)."""
    records, invalid = scan_manifest(path)
    if invalid:
        lineno, reason = invalid[0]
        more = f" (and {len(invalid) - 1} more invalid lines)" if len(invalid) > 1 else ""
        raise ManifestError(f"{Path(path)}:{lineno}: {reason}{more}")
    return records


def resolve_path(manifest_path: str | os.PathLike[str], record: ManifestRecord) -> Path:
    """The sample's file: relative paths are taken from the manifest's folder."""
    p = Path(record.path)
    return p if p.is_absolute() else Path(manifest_path).parent / p


class ManifestWriter:
    """Append records to a manifest, one flushed and fsynced line at a time.

    A crash can only cut the line being written. Opening the file again moves such a torn line,
    and any line that is not a valid record, to ``<manifest>.quarantine`` (with its line number and
    the reason; :attr:`repaired` lists them), so everything written before survives, a resumed run
    never stops on it, and :meth:`done_paths` tells the run what to skip.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._out = JsonlAppender(self.path, check=_check_record)
        self.repaired = self._out.repaired

    def done_paths(self) -> set[str]:
        """The ``path`` of every record already in the file."""
        return {obj["path"] for _, obj in iter_jsonl(self.path, policy="skip", check=_check_record)}

    def write(self, record: ManifestRecord | Mapping[str, Any]) -> None:
        rec = record if isinstance(record, ManifestRecord) else ManifestRecord.from_dict(record)
        self._out.write(rec.to_dict())

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
