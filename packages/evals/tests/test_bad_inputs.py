"""Table of bad inputs to ``cogvx eval`` and the evals Python API: each is refused before any
work with one line naming the parameter, the right exit code, no traceback and no output left."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cogvx.cli.main import main as cogvx_main
from cogvx.evals.dimensions import BackendOptions, build_evaluators, parse_dimensions
from cogvx.videoio import write_video


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_inputs")
    videos = d / "videos"
    videos.mkdir()
    frames = np.full((5, 32, 32, 3), 100, np.uint8)
    write_video(videos / "a red circle rises-0.mp4", frames, fps=8)
    write_video(videos / "b-0.mp4", frames, fps=8)
    debris = d / "debris"
    debris.mkdir()
    (debris / ".x.abcd.partial.mp4").write_bytes(b"half")
    (debris / "y.0001.q1.partial.mp4").write_bytes(b"half")
    (debris / ".hidden.mp4").write_bytes(b"x")
    (d / "file.txt").write_text("x")
    (d / "bad.json").write_text("{not json")
    (d / "list.json").write_text("[]")
    (d / "other.json").write_text(json.dumps({"format": "something-else"}))
    (d / "noformat.json").write_text(json.dumps({"format": "cogvx-eval"}))
    refs = d / "refs"
    refs.mkdir()
    return d


def _run(argv, d):
    return cogvx_main(["eval", *[a.format(d=d) for a in argv]])


V = "{d}/videos"
CASES = [
    # (argv, exit code, text that must be in the one-line error)
    (["{d}/nope.mp4"], 2, "videos={d}/nope.mp4: no such file or folder"),
    ([V, "{d}/gone"], 2, "videos={d}/gone"),
    (["{d}/debris"], 2, "videos={d}/debris: no video files found"),
    ([V, "--dims", "smoothness"], 2, "--dims=smoothness"),
    ([V, "--dims", ","], 2, "--dims=,"),
    ([V, "--out", "{d}/file.txt"], 2, "--out={d}/file.txt: is an existing file"),
    ([V, "--out", "{d}/file.txt/sub"], 2, "--out={d}/file.txt/sub: cannot write under"),
    ([V, "--suite", "{d}/nosuite.json"], 2, "--suite={d}/nosuite.json"),
    ([V, "--flow", "{d}/raft.pt"], 2, "--flow={d}/raft.pt"),
    ([V, "--interpolator", "cubic"], 2, "--interpolator=cubic"),
    ([V, "--clip", "{d}/no-clip"], 2, "--clip={d}/no-clip: no such file or folder"),
    ([V, "--dino", "{d}/no-dino"], 2, "--dino={d}/no-dino"),
    ([V, "--judge-local", "{d}/no-judge"], 2, "--judge-local={d}/no-judge"),
    ([V, "--device", "toaster"], 2, "--device=toaster"),
    ([V, "--frobnicate"], 2, "--frobnicate"),
    ([], 2, "videos"),
    (["compare", "{d}/nope.json", "{d}/bad.json"], 2, "a={d}/nope.json"),
    (["compare", "{d}/bad.json", "{d}/nope.json"], 2, "b={d}/nope.json"),
    (["compare", "{d}/bad.json", "{d}/bad.json"], 1, "'{d}/bad.json' is not valid JSON"),
    (["compare", "{d}/list.json", "{d}/list.json"], 1, "'{d}/list.json' is not a cogvx eval"),
    (["compare", "{d}/other.json", "{d}/other.json"], 1, "'{d}/other.json' is not a cogvx eval"),
    (["compare", "{d}/noformat.json", "{d}/bad.json"], 1, "'{d}/noformat.json' is not a cogvx"),
    (["compare", "{d}/bad.json", "{d}/bad.json", "--out", "{d}"], 2, "--out={d}: is a folder"),
    (["recon", V, "--reference", "{d}/none"], 2, "--reference={d}/none: no such file"),
    (["recon", V, "--reference", "{d}/refs"], 2, "--reference={d}/refs: has no video named"),
    (["recon", V, "--reference", "{d}/videos/b-0.mp4"], 2, "gives 1 videos for 2"),
    (["recon", "{d}/nope"], 2, "--reference: required"),
    (["recon", V, "--reference", V, "--out", "{d}/file.txt"], 2, "--out={d}/file.txt"),
    (["fvd", "--real", V, "--fake", V, "--i3d", "{d}/i3d.pt"], 2, "--i3d={d}/i3d.pt"),
    (["fvd", "--real", "{d}/x", "--fake", V, "--i3d", "y"], 2, "--real={d}/x"),
    (["fvd", "--real", V, "--fake", "{d}/debris", "--i3d", "y"], 2, "--fake={d}/debris"),
    (["fvd", "--real", V, "--fake", V, "--i3d", "y", "--num-frames", "0"], 2, "--num-frames=0"),
    (["fvd", "--real", V, "--fake", V, "--i3d", "y", "--num-frames", "nan"], 2, "--num-frames=nan"),
    (["fvd", "--real", V, "--fake", V, "--i3d", "y", "--num-frames", "2.5"], 2, "--num-frames=2.5"),
    (
        ["fvd", "--real", V, "--fake", V, "--i3d", "{d}/file.txt", "--out", "{d}/x.csv"],
        2,
        "--out={d}/x.csv: expected a .json file",
    ),
    (
        ["fvd", "--real", V, "--fake", V, "--i3d", "{d}/file.txt", "--out", "{d}/file.txt/x.json"],
        2,
        "cannot write under",
    ),
]


@pytest.mark.parametrize(("argv", "code", "needle"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_cli_refuses(data, argv, code, needle, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # default --out folders would land here
    before = sorted(p.name for p in data.rglob("*"))
    assert _run(argv, data) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cogvx eval: error: ")
    assert needle.format(d=data) in lines[0]
    assert "Traceback" not in err
    assert sorted(p.name for p in data.rglob("*")) == before
    assert list(tmp_path.iterdir()) == []


def test_missing_video_is_not_a_successful_run(tmp_path, capsys):
    """Issue 11: ``cogvx eval`` on a missing path used to exit 0 with an error entry."""
    assert cogvx_main(["eval", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("call", "exc", "needle"),
    [
        (lambda: parse_dimensions("nope"), ValueError, "--dims=nope"),
        (lambda: parse_dimensions(" , "), ValueError, "no dimension named"),
        (lambda: build_evaluators(["nope"]), ValueError, "dimension='nope'"),
        (lambda: BackendOptions(device=""), ValueError, "device=''"),
        (lambda: BackendOptions(clip=3), ValueError, "clip=3"),
        (lambda: BackendOptions(static_filter="yes"), TypeError, "static_filter='yes'"),
    ],
)
def test_api_refuses(call, exc, needle):
    with pytest.raises(exc, match=needle):
        call()


def test_table_defaults_and_unavailable_reasons():
    from cogvx.evals.dimensions import DEFAULT_DIMENSIONS, DIMENSION_TABLE
    from cogvx.evals.evaluator import Unavailable
    from cogvx.evals.vbench.scores import DIMENSIONS

    assert DEFAULT_DIMENSIONS == DIMENSIONS
    assert parse_dimensions(None) == parse_dimensions("all") == list(DIMENSIONS)
    built = build_evaluators(DIMENSION_TABLE)
    for dim, ev in zip(DIMENSION_TABLE, built):
        needs = DIMENSION_TABLE[dim].needs
        assert isinstance(ev, Unavailable) == bool(needs), dim
        if needs:
            assert BackendOptions.flag(needs[0]) in ev.reason, (dim, ev.reason)
