import json

import numpy as np

from cogvx.evals.plots import contact_sheet, rank_videos
from cogvx.evals.report import compare_markdown, make_run, run_markdown
from cogvx.evals.results import Aggregation, DimensionResult, EvalRun, Status, VideoScore, aggregate


def result(dim, scores, backend="b", approximate=False):
    per = [VideoScore(f"v{i}", s) for i, s in enumerate(scores)]
    return DimensionResult(
        dim,
        aggregate(per, Aggregation.VIDEO_MEAN),
        Status.OK,
        per,
        {"backend": backend, "approximate": approximate},
    )


def test_json_roundtrip_with_inf_and_errors():
    per = [
        VideoScore("a", float("inf")),
        VideoScore.error("b", "bad"),
        VideoScore.weighted("c", 3.0, 4.0),
    ]
    run = make_run(
        {"psnr": DimensionResult("psnr", float("inf"), Status.OK, per, {"display_scale": 1.0})},
        ["a", "b", "c"],
    )
    text = json.dumps(run.to_dict(), allow_nan=False)
    back = EvalRun.from_dict(json.loads(text))
    assert back.dimensions["psnr"].score == float("inf")
    assert back.dimensions["psnr"].per_video[1].status is Status.ERROR
    assert back.dimensions["psnr"].per_video[2].score == 0.75
    assert back.totals == {}  # no VBench dimension: no totals


def test_markdown_and_compare():
    a = make_run(
        {
            "temporal_flickering": result("temporal_flickering", [0.9, 1.0]),
            "dynamic_degree": result(
                "dynamic_degree", [1.0, 0.0], backend="dis-medium", approximate=True
            ),
        },
        ["v0", "v1"],
    )
    b = make_run(
        {
            "temporal_flickering": result("temporal_flickering", [1.0, 1.0]),
            "dynamic_degree": result("dynamic_degree", [1.0, 1.0], backend="raft"),
        },
        ["v0", "v1"],
    )
    md = run_markdown(a)
    assert "| temporal_flickering | 95.00 | 2 / 0 / 0 |" in md
    assert "approximate backends" in md and "dynamic_degree" in md
    cmp = compare_markdown(a, b)
    assert "| temporal_flickering | 95.00 | 100.00 | +5.00 |" in cmp
    assert "backends differ (dis-medium vs raft)" in cmp


def test_rank_and_contact_sheet():
    run = make_run(
        {"temporal_flickering": result("temporal_flickering", [0.7, 1.0, 0.9])}, ["v0", "v1", "v2"]
    )
    ranked = rank_videos(run)
    assert [n for n, _ in ranked] == ["v0", "v2", "v1"]
    calls = []

    def load(name, n):
        calls.append(name)
        if name == "v2":
            raise ValueError("gone")
        return np.zeros((n, 8, 8, 3), np.uint8)

    fig = contact_sheet(ranked, load, count=1, frames_per_video=3)
    assert calls == ["v0", "v1"] and len(fig.axes) == 6
