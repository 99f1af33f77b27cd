"""The run's CSV log, ``<run>/logs/metrics.csv``: a Lightning logger that survives resumes, and its reader.

Lightning's own ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts, so a resumed run
would lose the steps before its checkpoint. :class:`RunCSVLogger` appends instead: each flush is
one ``write`` to a file opened for appending (a kill never leaves half a row), and when a new metric
appears the file is rewritten with the wider header atomically (temporary file + rename). After a
resume the steps between the checkpoint and the kill appear twice; :func:`read_metrics` keeps the
last row of each step, which is the resumed run's.
"""

from __future__ import annotations

import csv
import io
import os
from argparse import Namespace
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from cogvx.videoio import atomic_output

__all__ = ["METRICS_FILE", "RunCSVLogger", "read_metrics"]

METRICS_FILE = Path("logs") / "metrics.csv"


class RunCSVLogger(Logger):
    """Per-step metrics of a run as CSV rows ``step, <metric>...`` (``step`` is the optimizer step).

    Rows are buffered and flushed every ``flush_every`` rows, at every checkpoint and at the end.
    """

    def __init__(self, run_dir: str | os.PathLike[str], flush_every: int = 10):
        super().__init__()
        self.path = Path(run_dir) / METRICS_FILE
        self.flush_every = flush_every
        self._rows: list[dict[str, float]] = []
        self._keys: list[str] = []
        if self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                self._keys = next(csv.reader(f), [])

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def log_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """Nothing to do: the run's config is ``.hydra/config.yaml``."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {k: float(v.item() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}
        # Lightning passes the count of finished steps minus one; the log names steps from 1
        row["step"] = float((step if step is not None else len(self._rows)) + 1)
        self._rows.append(row)
        if len(self._rows) >= self.flush_every:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        keys = sorted(
            {k for row in self._rows for k in row if k != "step"} | set(self._keys) - {"step"}
        )
        keys = ["step", *keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keys != self._keys and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                old = list(csv.DictReader(f))
            with atomic_output(self.path) as tmp:
                tmp.write_text(_csv_text(keys, old, header=True), encoding="utf-8")
        text = _csv_text(keys, self._rows, header=not self.path.is_file())
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        self._keys = keys
        self._rows = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()


def _csv_text(keys: list[str], rows: list[dict[str, Any]], *, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in keys})
    return buf.getvalue()


def _cell(value: Any) -> str:
    """A number as the shortest text that reads back to the same float (``repr``); empty for None."""
    return "" if value is None or value == "" else repr(float(value))


def read_metrics(run_dir: str | os.PathLike[str]) -> dict[str, dict[int, float]]:
    """``{metric: {step: value}}`` from a run's CSV log; the last row of a step wins.

    Empty cells are skipped; NaN/inf values are kept (a skipped NaN step shows as NaN).
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"run_dir={str(run_dir)!r}: no {METRICS_FILE} (is it a cogvx train run folder?)"
        )
    out: dict[str, dict[int, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or ""))
            except ValueError:
                continue
            for key, text in row.items():
                if key in (None, "step") or not text:
                    continue
                try:
                    out.setdefault(key, {})[step] = float(text)
                except (TypeError, ValueError):
                    continue
    return out
