"""The cogvx data manifest: JSON Lines, one sample per line (docs/data.md §Manifest).

    {"path": "clips/0001.mp4", "caption": "...", "type": "video", "frames": 49,
     "height": 480, "width": 720, "fps": 8.0, "scores": {...}, "tags": [...]}

Paths are relative to the manifest's folder (absolute paths are kept as they are). The captioner
writes it, frame packing and training read it. Keys this version does not know are kept in
``ManifestRecord.extra`` and written back, so tools can add fields without breaking readers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
            isinstance(self.fps, bool) or not isinstance(self.fps, int | float) or self.fps <= 0
        ):
            raise ManifestError(f"fps must be a number > 0, got {self.fps!r}")
        if self.type == "video" and self.fps is None:
            raise ManifestError("a video sample needs fps")
        object.__setattr__(self, "scores", dict(self.scores))
        object.__setattr__(self, "tags", tuple(self.tags))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestRecord:
        missing = [k for k in ("path", "type", "frames", "height", "width") if k not in data]
        if missing:
            raise ManifestError(f"missing required field(s) {missing}")
        scores = data.get("scores") or {}
        if not isinstance(scores, Mapping):
            raise ManifestError(f"scores must be an object, got {type(scores).__name__}")
        tags = data.get("tags") or []
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


def scan_manifest(
    path: str | os.PathLike[str],
) -> tuple[list[ManifestRecord], list[tuple[int, str]]]:
    """Read every line, keeping the valid records and listing the invalid ones.

    Returns ``(records, invalid)`` where ``invalid`` holds ``(line_number, reason)`` (1-based), so
    a caller that tolerates a few bad lines in a large manifest can still report each of them.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"manifest {str(p)!r} does not exist")
    records: list[ManifestRecord] = []
    invalid: list[tuple[int, str]] = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ManifestError(f"expected a JSON object, got {type(data).__name__}")
                records.append(ManifestRecord.from_dict(data))
            except (json.JSONDecodeError, ManifestError) as e:
                invalid.append((lineno, str(e)))
    return records, invalid


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRecord]:
    """Read and validate every line; blank lines are allowed, the first invalid line raises."""
    records, invalid = scan_manifest(path)
    if invalid:
        lineno, reason = invalid[0]
        more = f" ({len(invalid) - 1} more invalid lines)" if len(invalid) > 1 else ""
        raise ManifestError(f"{Path(path)}: line {lineno}: {reason}{more}")
    return records


def resolve_path(manifest_path: str | os.PathLike[str], record: ManifestRecord) -> Path:
    """The sample's file: relative paths are taken from the manifest's folder."""
    p = Path(record.path)
    return p if p.is_absolute() else Path(manifest_path).parent / p


class ManifestWriter:
    """Append records to a manifest, one flushed and fsynced line at a time.

    A crash can only cut the line being written; opening the file again drops such a partial
    last line (it was never a finished record), so everything written before survives and
    :meth:`done_paths` tells a resumed run what to skip.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_line()
        self._file = self.path.open("a", encoding="utf-8")

    def _drop_partial_line(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        with self.path.open("r+b") as f:
            f.truncate(cut)

    def done_paths(self) -> set[str]:
        """The ``path`` of every complete record already in the file."""
        done = set()
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    done.add(json.loads(line)["path"])
        return done

    def write(self, record: ManifestRecord | Mapping[str, Any]) -> None:
        rec = record if isinstance(record, ManifestRecord) else ManifestRecord.from_dict(record)
        self._file.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def write_all(self, records: Iterable[ManifestRecord | Mapping[str, Any]]) -> None:
        for r in records:
            self.write(r)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
