"""Figures for reports (matplotlib, Agg canvas; no global pyplot state).

- :func:`dimension_figure`: bar chart and radar of dimension scores;
- :func:`distribution_figure`: per-video score distributions per dimension;
- :func:`contact_sheet`: frames of the worst and best videos.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cogvx.evals.results import EvalRun, Status
from cogvx.evals.vbench.scores import NORMALIZE

__all__ = ["contact_sheet", "dimension_figure", "distribution_figure", "rank_videos", "save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    from cogvx.videoio import atomic_output

    p = Path(path)
    with atomic_output(p) as tmp:
        FigureCanvasAgg(fig)
        fig.savefig(tmp, format=p.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    return p


def dimension_figure(run: EvalRun) -> Figure:
    dims = [d for d, r in run.dimensions.items() if r.score is not None]
    vals = [100 * run.dimensions[d].score for d in dims]  # type: ignore[operator]
    fig = Figure(figsize=(12, 5))
    ax = fig.add_subplot(1, 2, 1)
    colors = ["tab:orange" if run.dimensions[d].approximate else "tab:blue" for d in dims]
    ax.barh(dims[::-1], vals[::-1], color=colors[::-1])
    ax.set_xlabel("score (×100; orange = approximate backend)")
    ax.set_xlim(0, 100)
    unavailable = [d for d, r in run.dimensions.items() if r.score is None]
    if unavailable:
        ax.set_title("not scored: " + ", ".join(unavailable), fontsize=7, wrap=True)
    rax = fig.add_subplot(1, 2, 2, projection="polar")
    if len(dims) >= 3:
        ang = np.linspace(0, 2 * np.pi, len(dims), endpoint=False)
        v = np.array(vals)
        rax.plot(np.r_[ang, ang[:1]], np.r_[v, v[:1]], color="tab:blue")
        rax.fill(np.r_[ang, ang[:1]], np.r_[v, v[:1]], alpha=0.2, color="tab:blue")
        rax.set_xticks(ang)
        rax.set_xticklabels(dims, fontsize=7)
        rax.set_ylim(0, 100)
    else:
        rax.set_axis_off()
        rax.text(0.5, 0.5, "radar needs >= 3 dimensions", ha="center", transform=rax.transAxes)
    fig.tight_layout()
    return fig


def distribution_figure(run: EvalRun) -> Figure:
    dims = [d for d, r in run.dimensions.items() if any(v.status is Status.OK for v in r.per_video)]
    fig = Figure(figsize=(max(6, 1.1 * len(dims) + 2), 4.5))
    ax = fig.add_subplot(1, 1, 1)
    if not dims:
        ax.text(0.5, 0.5, "no per-video scores", ha="center", transform=ax.transAxes)
        return fig
    data = [
        [
            100 * v.score
            for v in run.dimensions[d].per_video
            if v.status is Status.OK and v.score is not None
        ]
        for d in dims
    ]
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, ys in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(ys)), ys, s=10, alpha=0.6, color="k")
    ax.set_xticks(range(1, len(dims) + 1))
    ax.set_xticklabels(dims, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("per-video score (×100)")
    fig.tight_layout()
    return fig


def rank_videos(run: EvalRun) -> list[tuple[str, float]]:
    """Videos ordered worst -> best by their mean min-max normalised per-video score."""
    acc: dict[str, list[float]] = {}
    for d, r in run.dimensions.items():
        lo, hi = NORMALIZE.get(d, (0.0, 1.0))
        for v in r.per_video:
            if v.status is Status.OK and v.score is not None:
                acc.setdefault(v.video, []).append((v.score - lo) / (hi - lo))
    return sorted(((k, float(np.mean(v))) for k, v in acc.items()), key=lambda kv: kv[1])


def contact_sheet(
    ranked: Sequence[tuple[str, float]],
    load_frames: Callable[[str, int], np.ndarray],
    *,
    count: int = 3,
    frames_per_video: int = 6,
) -> Figure:
    """Rows of ``frames_per_video`` frames for the ``count`` worst and ``count`` best videos.

    ``load_frames(video, n)`` returns ``n`` uint8 frames of that video.
    """
    k = min(count, (len(ranked) + 1) // 2)  # few videos: split them between the two groups
    worst = list(ranked[:k])
    best = list(ranked[k:][::-1][:count])
    rows = [("worst", kv) for kv in worst] + [("best", kv) for kv in best]
    fig = Figure(figsize=(2 * frames_per_video, 1.8 * max(1, len(rows))))
    if not rows:
        ax = fig.add_subplot(1, 1, 1)
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no scored videos", ha="center", transform=ax.transAxes)
        return fig
    for r, (tag, (name, score)) in enumerate(rows):
        try:
            frames = load_frames(name, frames_per_video)
        except Exception as exc:  # a video that fails now still gets a labelled row
            frames = None
            err = str(exc)
        for c in range(frames_per_video):
            ax = fig.add_subplot(len(rows), frames_per_video, r * frames_per_video + c + 1)
            ax.set_axis_off()
            if frames is not None and c < len(frames):
                ax.imshow(frames[c])
            elif frames is None and c == 0:
                ax.text(0, 0.5, f"cannot read: {err[:60]}", fontsize=6, transform=ax.transAxes)
            if c == 0:
                ax.set_title(f"{tag}: {name[:40]} ({100 * score:.1f})", fontsize=7, loc="left")
    fig.tight_layout()
    return fig
