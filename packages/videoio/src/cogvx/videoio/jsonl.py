"""JSON Lines files: one reader and one appender for every data file of the workspace.

The data manifest, the captioner's rejects file and its per-rank parts, label files: all are JSON
Lines, one object per line (docs/data.md). Every problem is reported as ``file:line: reason``.
A reader chooses a policy: ``"raise"`` stops at the first bad line, ``"skip"`` leaves bad lines
out and hands them back as :class:`JsonlProblem` so the caller can count and report them.

Appending is crash-safe: each line is flushed and fsynced, so a crash can only tear the line
being written. :class:`JsonlAppender` (and so every resumed run) repairs a file on open: a torn
or malformed line is moved to a side file ``<name>.quarantine`` next to it, with its line number,
instead of stopping the run or being lost (docs/reliability.md).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cogvx.modelio import atomic_write

__all__ = [
    "QUARANTINE_SUFFIX",
    "JsonlAppender",
    "JsonlError",
    "JsonlProblem",
    "iter_jsonl",
    "quarantine_path",
    "read_jsonl",
    "repair_jsonl",
]

logger = logging.getLogger(__name__)

QUARANTINE_SUFFIX = ".quarantine"

Policy = Literal["raise", "skip"]
Check = Callable[[dict[str, Any]], None]
"""Extra validation of one parsed object; raise ``ValueError`` (or a subclass) to refuse it."""


@dataclass(frozen=True)
class JsonlProblem:
    """One bad line: where, why, and its raw text (for the quarantine file)."""

    path: Path
    line: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class JsonlError(ValueError):
    """A JSON Lines file has a bad line; ``str()`` is ``file:line: reason``."""

    def __init__(self, problem: JsonlProblem, more: int = 0) -> None:
        self.problem = problem
        suffix = f" (and {more} more bad line{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{problem}{suffix}")


def quarantine_path(path: str | os.PathLike[str]) -> Path:
    """The side file bad lines of ``path`` are moved to: ``<name>.quarantine``."""
    p = Path(path)
    return p.with_name(p.name + QUARANTINE_SUFFIX)


def _parse(raw: bytes, check: Check | None) -> dict[str, Any]:
    text = raw.decode("utf-8")  # UnicodeDecodeError is a ValueError
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if check is not None:
        check(obj)
    return obj


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    return " ".join(str(exc).split()) or type(exc).__name__


def iter_jsonl(
    path: str | os.PathLike[str],
    *,
    policy: Policy = "raise",
    check: Check | None = None,
    problems: list[JsonlProblem] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for every valid line (1-based; blank lines are skipped).

    A line is bad when it is not UTF-8, not JSON, not an object, or refused by ``check``; a last
    line without its newline that does not parse is reported as torn (an interrupted write).
    ``policy="raise"`` raises :class:`JsonlError` at the first bad line; ``"skip"`` appends it to
    ``problems`` (when given) and goes on. A missing file raises ``FileNotFoundError`` naming it.
    """
    p = Path(path)
    if policy not in ("raise", "skip"):
        raise ValueError(f"policy={policy!r}: expected 'raise' or 'skip'")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    with p.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = _parse(raw, check)
            except (ValueError, TypeError) as e:
                torn = not raw.endswith(b"\n") and not isinstance(e, TypeError)
                reason = "torn last line (an interrupted write)" if torn else _reason(e)
                problem = JsonlProblem(p, lineno, reason, raw.decode("utf-8", "replace"))
                if policy == "raise":
                    raise JsonlError(problem) from None
                if problems is not None:
                    problems.append(problem)
                continue
            yield lineno, obj


def read_jsonl(
    path: str | os.PathLike[str], *, policy: Policy = "raise", check: Check | None = None
) -> tuple[list[dict[str, Any]], list[JsonlProblem]]:
    """Every valid object of a file and the bad lines (empty under ``policy="raise"``)."""
    problems: list[JsonlProblem] = []
    rows = [obj for _, obj in iter_jsonl(path, policy=policy, check=check, problems=problems)]
    return rows, problems


def repair_jsonl(path: str | os.PathLike[str], *, check: Check | None = None) -> list[JsonlProblem]:
    """Move every bad line of ``path`` to its quarantine file; returns what was moved.

    The good lines are rewritten atomically (same folder, then rename), so a crash during the
    repair leaves either the old or the repaired file. Quarantined lines are appended to
    ``<name>.quarantine`` as ``{"line": n, "reason": ..., "text": ...}`` objects. A missing file
    is nothing to repair.
    """
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return []
    problems: list[JsonlProblem] = []
    for _ in iter_jsonl(p, policy="skip", check=check, problems=problems):
        pass
    data = p.read_bytes()
    if not problems and data.endswith(b"\n"):
        return []
    bad = {pr.line for pr in problems}
    lines = io.BytesIO(data).readlines()  # split on b"\n" only, exactly as iter_jsonl reads
    kept = [
        ln if ln.endswith(b"\n") else ln + b"\n" for i, ln in enumerate(lines, 1) if i not in bad
    ]
    if problems:
        side = quarantine_path(p)
        with side.open("a", encoding="utf-8") as f:
            for pr in problems:
                f.write(json.dumps({"line": pr.line, "reason": pr.reason, "text": pr.text}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for pr in problems:
            logger.warning("%s (moved to %s)", pr, side)
    with atomic_write(p) as tmp:
        tmp.write_bytes(b"".join(kept))
    return problems


class JsonlAppender:
    """Append JSON objects to a file, one flushed and fsynced line at a time.

    Opening repairs the file first (:func:`repair_jsonl`): lines torn by a crash, or malformed
    by hand edits, go to the quarantine file, and :attr:`repaired` lists them.
    """

    def __init__(self, path: str | os.PathLike[str], *, check: Check | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: is a folder, expected a .jsonl file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired = repair_jsonl(self.path, check=check)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, obj: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(dict(obj), ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
