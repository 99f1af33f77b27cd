"""Reports: the JSON run file, a Markdown table, and side-by-side comparison of two runs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cogvx.evals.results import DimensionResult, EvalRun, Status
from cogvx.evals.vbench.scores import DIMENSIONS, total_scores

__all__ = ["compare_markdown", "load_run", "make_run", "run_markdown", "write_json", "write_text"]


def _atomic_write_text(path: Path, text: str) -> None:
    from cogvx.videoio import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> Path:
    p = Path(path)
    _atomic_write_text(p, json.dumps(data, indent=2, allow_nan=False) + "\n")
    return p


def write_text(path: str | os.PathLike, text: str) -> Path:
    p = Path(path)
    _atomic_write_text(p, text)
    return p


def make_run(
    results: Mapping[str, DimensionResult],
    videos: list[str],
    config: Mapping[str, Any] | None = None,
) -> EvalRun:
    """Bundle results; VBench Quality/Semantic/Total are added when all their dimensions ran."""
    vb = {d: r.score for d, r in results.items() if d in DIMENSIONS}
    totals: dict[str, Any] = {}
    if vb:
        full = {d: vb.get(d) for d in DIMENSIONS}
        totals = total_scores(full)
        approx = sorted(d for d, r in results.items() if d in DIMENSIONS and r.approximate)
        totals["approximate_dimensions"] = approx
    return EvalRun(dict(results), videos, totals, dict(config or {}))


def load_run(path: str | os.PathLike) -> EvalRun:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"eval report not found: {str(p)!r}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"eval report {str(p)!r} is not valid JSON: {e}") from e
    try:
        return EvalRun.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"eval report {str(p)!r} is not a cogvx eval results.json ({what})") from e


def _pct(x: float | None, scale: float = 100.0) -> str:
    return "—" if x is None else f"{scale * x:.2f}"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def run_markdown(run: EvalRun, *, title: str = "cogvx eval") -> str:
    lines = [
        f"# {title}",
        "",
        f"{len(run.videos)} videos. VBench scores are shown ×100 (as on its leaderboard).",
        "",
    ]
    lines += [
        "| dimension | score | ok / skipped / error | backend | approximate | note |",
        "|---|---|---|---|---|---|",
    ]
    for d, r in run.dimensions.items():
        c = r.counts()
        note = r.reason or ""
        if r.status is Status.UNAVAILABLE:
            score = "unavailable"
        else:
            score = _pct(r.score, r.metadata.get("display_scale", 100.0))
        lines.append(
            f"| {d} | {score} | {c['ok']} / {c['skipped']} / {c['error']} | {_md_escape(str(r.metadata.get('backend', '—')))} "
            f"| {'yes' if r.approximate else 'no'} | {_md_escape(note)} |"
        )
    t = run.totals
    if t:
        lines += ["", "## VBench totals", ""]
        for k in ("quality", "semantic", "total"):
            lines.append(f"- {k.capitalize()}: {_pct(t.get(k))}")
        if t.get("missing"):
            lines.append(f"- not computed without: {', '.join(t['missing'])}")
        if t.get("approximate_dimensions"):
            lines.append(
                f"- approximate backends (not comparable with published numbers): {', '.join(t['approximate_dimensions'])}"
            )
    cov = run.config.get("suite_coverage")
    if cov:
        lines += [
            "",
            f"## Prompt suite coverage ({run.config.get('suite')})",
            "",
            "| dimension | suite prompts | with videos | fewer than 5 videos | e.g. missing |",
            "|---|---|---|---|---|",
        ]
        for d, c in cov.items():
            ex = "; ".join(c["examples_missing"])
            lines.append(
                f"| {d} | {c['prompts']} | {c['with_videos']} | {c['fewer_than_expected']} | {_md_escape(ex)} |"
            )
    if run.config.get("videos_not_in_suite"):
        lines += [
            "",
            f"Videos whose prompt is not in the suite: {len(run.config['videos_not_in_suite'])} "
            "(dimensions needing auxiliary info report them as errors).",
        ]
    errors = [
        (d, v) for d, r in run.dimensions.items() for v in r.per_video if v.status is not Status.OK
    ]
    if errors:
        lines += [
            "",
            "## Videos not scored",
            "",
            "| dimension | video | status | reason |",
            "|---|---|---|---|",
        ]
        for d, v in errors:
            lines.append(
                f"| {d} | {_md_escape(v.video)} | {v.status.value} | {_md_escape(v.reason or '')} |"
            )
    return "\n".join(lines) + "\n"


def compare_markdown(a: EvalRun, b: EvalRun, *, names: tuple[str, str] = ("A", "B")) -> str:
    """Side-by-side table of two runs; flags dimensions whose backends differ."""
    na, nb = names
    lines = [
        f"# cogvx eval: {na} vs {nb}",
        "",
        f"| dimension | {na} | {nb} | {nb} − {na} | note |",
        "|---|---|---|---|---|",
    ]
    dims = list(dict.fromkeys([*a.dimensions, *b.dimensions]))
    for d in dims:
        ra, rb = a.dimensions.get(d), b.dimensions.get(d)
        sa = ra.score if ra else None
        sb = rb.score if rb else None
        scale = (ra or rb).metadata.get("display_scale", 100.0)  # type: ignore[union-attr]
        delta = "—" if sa is None or sb is None else f"{scale * (sb - sa):+.2f}"
        notes = []
        if ra and rb and ra.metadata.get("backend") != rb.metadata.get("backend"):
            notes.append(
                f"backends differ ({ra.metadata.get('backend')} vs {rb.metadata.get('backend')})"
            )
        for n, r in ((na, ra), (nb, rb)):
            if r is None:
                notes.append(f"not in {n}")
            elif r.status is Status.UNAVAILABLE:
                notes.append(f"unavailable in {n}")
        lines.append(
            f"| {d} | {_pct(sa, scale)} | {_pct(sb, scale)} | {delta} | {_md_escape('; '.join(notes))} |"
        )
    for k in ("quality", "semantic", "total"):
        ta, tb = a.totals.get(k), b.totals.get(k)
        if ta is not None or tb is not None:
            delta = "—" if ta is None or tb is None else f"{100 * (tb - ta):+.2f}"
            lines.append(f"| **{k}** | {_pct(ta)} | {_pct(tb)} | {delta} | |")
    return "\n".join(lines) + "\n"
