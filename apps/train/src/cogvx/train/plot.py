"""The loss plot of a run folder: ``<run>/loss.png`` from ``<run>/logs/metrics.csv``.

Written at the end of every run and on demand (``cogvx train plot RUN_DIR``), also while a run is
still going; the log is read by :func:`cogvx.train.logs.read_metrics` (the last row of a step wins,
so a resumed run plots the values that count).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from cogvx.train.logs import METRICS_FILE, read_metrics
from cogvx.videoio import atomic_output

__all__ = ["plot_run"]


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        finite = [a for a in acc if math.isfinite(a)]
        out.append(sum(finite) / len(finite) if finite else math.nan)
    return out


def plot_run(run_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """Draw loss (raw and smoothed), per-timestep-bucket loss and learning rate; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_metrics(run_dir)
    loss = metrics.get("train/loss")
    if not loss:
        raise ValueError(f"run_dir={str(run_dir)!r}: {METRICS_FILE} has no train/loss rows yet")
    target = Path(output) if output is not None else Path(run_dir) / "loss.png"
    steps = sorted(loss)
    values = [loss[s] for s in steps]
    buckets = sorted(
        (k for k in metrics if k.startswith("train/loss_bucket_")),
        key=lambda k: int(k.rsplit("_", 1)[1]),
    )
    lr = metrics.get("train/lr")

    fig, axes = plt.subplots(
        1, 3 if buckets else 2, figsize=(15 if buckets else 10, 4), squeeze=False
    )
    ax = axes[0][0]
    ax.plot(steps, values, lw=0.8, alpha=0.5, label="loss")
    ax.plot(steps, _smooth(values, max(2, len(steps) // 20)), lw=1.5, label="smoothed")
    ax.set(xlabel="step", ylabel="loss", title="training loss")
    if all(v > 0 for v in values if math.isfinite(v)):
        ax.set_yscale("log")
    ax.legend()
    ax = axes[0][1]
    if lr:
        ax.plot(sorted(lr), [lr[s] for s in sorted(lr)])
    ax.set(xlabel="step", ylabel="learning rate", title="learning rate")
    if buckets:
        ax = axes[0][2]
        n = len(buckets)
        finite = [[v for v in metrics[k].values() if math.isfinite(v)] for k in buckets]
        means = [sum(f) / len(f) if f else math.nan for f in finite]
        ax.bar(range(n), means)
        ax.set(
            xlabel="timestep bucket (0: least noise)",
            ylabel="mean loss",
            title="loss per timestep bucket",
        )
    fig.tight_layout()
    with atomic_output(target) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return target
