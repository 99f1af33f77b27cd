"""Atomic file writes: a temporary file in the target's folder, then one ``os.replace``.

An interrupted write (exception, SIGINT, SIGKILL) never leaves a half-written file under the final
name: the target is either the old file or the complete new one. The temporary name is
``.<stem>.<random>.partial<suffix>``: a dot-file (folder scans skip it), marked partial (a rerun
can find and remove what a SIGKILL left), and with the target's suffix kept (encoders choose the
container from it). It is removed when the write fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "write_text_atomic"]


@contextmanager
def atomic_write(path: str | os.PathLike[str], *, parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it is moved onto ``path``.

    The parent folder must exist unless ``parents`` (then it is created). The result gets the
    permissions a plain ``open()`` would give (``mkstemp`` creates files readable by the owner
    only).
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {str(target)!r}: it is a folder")
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(target)!r}: folder {str(target.parent)!r} does not exist"
        )
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        if tmp.exists():
            tmp.chmod(0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
