"""Table of bad inputs to ``cogvx caption``: each refused before work with one line naming the
parameter, the right exit code, no traceback and nothing written; and data files with torn or
malformed lines: resume quarantines them, merge names file:line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogvx.captioner.filters import FilterConfig
from cogvx.captioner.pipeline import CaptionConfig, RunPaths, build_report, merge_parts
from cogvx.captioner.upsample import UpsampleConfig
from cogvx.cli.main import main as cogvx_main
from cogvx.videoio import ManifestError, quarantine_path, read_manifest, write_video

GOOD = {"path": "a.mp4", "caption": "", "type": "video", "frames": 9, "height": 8, "width": 8}
GOOD_LINE = json.dumps({**GOOD, "fps": 8.0})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("caption_bad")
    clips = d / "clips"
    clips.mkdir()
    write_video(clips / "a.mp4", np.full((9, 16, 16, 3), 90, np.uint8), fps=8)
    (d / "file.txt").write_text("x")
    (d / "bad.json").write_text("{not json")
    (d / "nan.json").write_text('{"min_motion": NaN}')
    (d / "list.json").write_text("[1]")
    (d / "labels_nopath.jsonl").write_text(
        '{"path": "clips/a.mp4", "labels": {"x": 1}}\n{"labels": {"x": 0}}\n'
    )
    (d / "labels_two.jsonl").write_text('{"path": "clips/a.mp4", "labels": {"x": 2}}\n')
    (d / "labels_gone.jsonl").write_text('{"path": "clips/gone.mp4", "labels": {"x": 1}}\n')
    (d / "labels_json.jsonl").write_text('{"path": "clips/a.mp4", "labels": {"x": 1}}\n{oops\n')
    parts = d / "parts"
    parts.mkdir()
    (parts / "m.part-00000-of-00002.jsonl").write_text(
        GOOD_LINE + "\n{torn json\n" + GOOD_LINE + "\n"
    )
    (parts / "m.part-00001-of-00002.jsonl").write_text(GOOD_LINE + "\n")
    rparts = d / "rparts"
    rparts.mkdir()
    (rparts / "m.rejects.part-00000-of-00001.jsonl").write_text(
        '{"kind": "error", "reason": "x"}\n'
    )
    return d


R = ["caption", "run", "{d}/clips", "--output", "{d}/out/m.jsonl", "--filter-only"]
U = ["caption", "upsample", "a cat", "--endpoint", "http://127.0.0.1:9/v1"]
T = ["caption", "train-filter"]
CASES = [
    (
        ["caption", "run", "{d}/none", "--output", "{d}/m.jsonl", "--filter-only"],
        2,
        "folder={d}/none",
    ),
    (
        ["caption", "run", "{d}/clips", "--output", "{d}/m.txt", "--filter-only"],
        2,
        "--output={d}/m.txt",
    ),
    (
        ["caption", "run", "{d}/clips", "--output", "{d}/clips", "--filter-only"],
        2,
        "--output={d}/clips",
    ),
    (
        ["caption", "run", "{d}/clips", "--output", "{d}/file.txt/m.jsonl"],
        2,
        "--output={d}/file.txt/m.jsonl",
    ),
    ([*R, "--every-seconds", "nan"], 2, "--every-seconds=nan: expected a finite number > 0"),
    ([*R, "--every-seconds", "0"], 2, "--every-seconds=0"),
    ([*R, "--every-seconds", "inf"], 2, "--every-seconds=inf"),
    ([*R, "--max-frames", "0"], 2, "--max-frames=0"),
    ([*R, "--max-words", "-1"], 2, "--max-words=-1"),
    ([*R, "--batch", "abc"], 2, "--batch=abc"),
    ([*R, "--image-batch", "1.5"], 2, "--image-batch=1.5"),
    ([*R, "--workers", "0"], 2, "--workers=0"),
    ([*R, "--shot-threshold", "1.5"], 2, "--shot-threshold=1.5"),
    ([*R, "--shot-min-seconds", "-1"], 2, "--shot-min-seconds=-1"),
    ([*R, "--shot-max-seconds", "nan"], 2, "--shot-max-seconds=nan"),
    ([*R, "--min-motion", "nan"], 2, "--min-motion=nan"),
    ([*R, "--max-text", "inf"], 2, "--max-text=inf"),
    ([*R, "--rank", "2", "--world-size", "2"], 2, "--rank=2: expected 0 <= rank < world size 2"),
    ([*R, "--world-size", "0"], 2, "--world-size=0"),
    ([*R, "--rank", "-1"], 2, "--rank=-1"),
    ([*R, "--dtype", "int8"], 2, "--dtype=int8"),
    ([*R, "--device", "toaster"], 2, "--device=toaster"),
    ([*R, "--flow", "raft"], 2, "--flow=raft"),
    (["caption", "run", "{d}/clips", "--output", "{d}/out/m.jsonl"], 2, "--captioner: required"),
    ([*R[:-1], "--captioner", "{d}/nomodel"], 2, "--captioner={d}/nomodel: not a model folder"),
    ([*R, "--aesthetic-clip", "{d}"], 2, "--aesthetic-clip={d}: goes together"),
    ([*R, "--filter-config", "{d}/none.json"], 2, "--filter-config={d}/none.json: no such file"),
    ([*R, "--filter-config", "{d}/bad.json"], 2, "--filter-config={d}/bad.json: filter config"),
    ([*R, "--filter-config", "{d}/nan.json"], 2, "FilterConfig.min_motion=nan"),
    ([*R, "--filter-config", "{d}/list.json"], 2, "expected a JSON object, got list"),
    ([*R, "--classifier-head", "{d}/nohead"], 2, "--classifier-head={d}/nohead: no head.json"),
    ([*R, "--classifier-features", "{d}/nofeat"], 2, "--classifier-features={d}/nofeat"),
    ([*R, "--split-shots", "{d}/file.txt"], 2, "--split-shots={d}/file.txt: is a file"),
    (["caption", "merge", "{d}/nothing/m.jsonl"], 2, "output={d}/nothing/m.jsonl: no manifest"),
    (["caption", "merge", "{d}/m.txt"], 2, "output={d}/m.txt: expected the .jsonl"),
    (["caption", "merge", "{d}/parts/m.jsonl"], 1, "m.part-00000-of-00002.jsonl:2: not valid JSON"),
    (
        ["caption", "merge", "{d}/rparts/m.jsonl"],
        1,
        'rejects.part-00000-of-00001.jsonl:1: rejects row has no "path"',
    ),
    (["caption", "upsample", " ", "--endpoint", "http://x"], 2, "prompt= : expected a non-empty"),
    (
        [*U, "--min-words", "50", "--max-words", "10"],
        2,
        "--min-words=50: expected <= --max-words 10",
    ),
    ([*U, "--retries", "0"], 2, "--retries=0"),
    ([*U, "--max-new-tokens", "nan"], 2, "--max-new-tokens=nan"),
    ([*U, "--image", "{d}/none.png"], 2, "--image={d}/none.png: no such file"),
    (["caption", "upsample", "a cat", "--model", "{d}/nomodel"], 2, "--model={d}/nomodel"),
    (["caption", "upsample", "a cat"], 2, "one of the arguments --model --endpoint is required"),
    ([*T, "{d}/none.jsonl", "--output", "{d}/head"], 2, "labels={d}/none.jsonl: no such file"),
    (
        [*T, "{d}/labels_nopath.jsonl", "--output", "{d}/head"],
        1,
        'labels_nopath.jsonl:2: row has no "path"',
    ),
    (
        [*T, "{d}/labels_two.jsonl", "--output", "{d}/head"],
        1,
        "labels_two.jsonl:1: labels.x=2: expected 0 or 1",
    ),
    (
        [*T, "{d}/labels_gone.jsonl", "--output", "{d}/head"],
        1,
        "labels_gone.jsonl:1: clip 'clips/gone.mp4' does not exist",
    ),
    (
        [*T, "{d}/labels_json.jsonl", "--output", "{d}/head"],
        1,
        "labels_json.jsonl:2: not valid JSON",
    ),
    (
        [*T, "{d}/labels_two.jsonl", "--output", "{d}/file.txt"],
        2,
        "--output={d}/file.txt: is a file",
    ),
    ([*T, "{d}/labels_two.jsonl", "--output", "{d}/head", "--epochs", "0"], 2, "--epochs=0"),
    ([*T, "{d}/labels_two.jsonl", "--output", "{d}/head", "--hidden", "-3"], 2, "--hidden=-3"),
]


def _tree(d):
    return sorted(
        (str(p.relative_to(d)), p.stat().st_size if p.is_file() else -1) for p in d.rglob("*")
    )


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    CASES,
    ids=[" ".join(c[0][1:4]) + f"#{i}" for i, c in enumerate(CASES)],
)
def test_cli_refuses(data, argv, code, needle, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    before = _tree(data)
    assert cogvx_main([a.format(d=data) for a in argv]) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cogvx caption: error: ")
    assert needle.format(d=data) in lines[0], lines[0]
    assert "Traceback" not in err
    assert _tree(data) == before  # nothing written, nothing changed
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("var", "value"), [("RANK", "abc"), ("WORLD_SIZE", "0"), ("RANK", "-2")])
def test_bad_rank_environment(data, var, value, capsys, monkeypatch):
    monkeypatch.setenv(var, value)
    argv = [
        "caption",
        "run",
        str(data / "clips"),
        "--output",
        str(data / "env" / "m.jsonl"),
        "--filter-only",
    ]
    assert cogvx_main(argv) == 2
    assert f"{var}={value}: environment variable" in capsys.readouterr().err
    assert not (data / "env").exists()


# ---------------------------------------------------------------------------------- resuming
def _run(folder, out):
    argv = ["caption", "run", str(folder), "--output", str(out), "--filter-only", "--flow", "none"]
    return cogvx_main([*argv, "--no-progress", "--workers", "1"])


def test_resume_survives_torn_and_malformed_lines(clip_folder, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert _run(clip_folder, out) == 0
    kept = {r.path for r in read_manifest(out)}
    paths = RunPaths.for_output(out)
    rejects = paths.rejects.read_text().splitlines()
    assert len(kept) == 5 and len(rejects) == 3  # no motion filter: only text and broken files out
    # a crash tore the last manifest line; a hand edit broke a rejects line
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    paths.rejects.write_text("\n".join([rejects[0], "{oops", *rejects[2:]]) + "\n")
    capsys.readouterr()
    assert _run(clip_folder, out) == 0
    report = json.loads(paths.report.read_text())
    assert (
        report["this_run"]["accepted"]
        + report["this_run"]["filtered"]
        + report["this_run"]["errors"]
        == 2
    )
    assert {r.path for r in read_manifest(out)} == kept  # the torn clip was redone
    moved = [json.loads(x) for x in quarantine_path(out).read_text().splitlines()]
    assert [m["reason"] for m in moved] == ["torn last line (an interrupted write)"]
    moved = [json.loads(x) for x in quarantine_path(paths.rejects).read_text().splitlines()]
    assert moved[0]["line"] == 2 and moved[0]["text"] == "{oops\n"
    assert report["bad_lines"] == 0  # both files are clean again


def test_other_ranks_bad_rejects_row_is_skipped_and_counted(clip_folder, tmp_path):
    out = tmp_path / "m.jsonl"
    other = tmp_path / "m.rejects.part-00001-of-00002.jsonl"
    other.write_text('{"kind": "filtered", "failed": ["x"]}\n')  # no "path"
    argv = [
        "caption",
        "run",
        str(clip_folder),
        "--output",
        str(out),
        "--filter-only",
        "--flow",
        "none",
    ]
    assert cogvx_main([*argv, "--no-progress", "--rank", "0", "--world-size", "2"]) == 0
    report = json.loads(RunPaths.for_output(out, 0, 2).report.read_text())
    assert report["bad_lines"] == 1
    assert report["bad_line_examples"] == [
        f'{other}:1: rejects row has no "path" (a non-empty string)'
    ]
    assert other.read_text().count("\n") == 1  # another rank's file is never rewritten


def test_merge_skip_bad_lines_quarantines(tmp_path):
    out = tmp_path / "m.jsonl"
    part0 = tmp_path / "m.part-00000-of-00002.jsonl"
    part0.write_text(GOOD_LINE + "\n{torn")
    (tmp_path / "m.part-00001-of-00002.jsonl").write_text(
        json.dumps({**GOOD, "path": "b.mp4", "fps": 8}) + "\n"
    )
    with pytest.raises(ManifestError, match=r"m\.part-00000-of-00002\.jsonl:2: .*nothing merged"):
        merge_parts(out)
    assert not out.exists() and part0.exists()
    report = merge_parts(out, skip_bad_lines=True)
    assert [r.path for r in read_manifest(out)] == ["a.mp4", "b.mp4"]
    assert report["merge_bad_lines"] == [f"{part0}:2: torn last line (an interrupted write)"]
    assert json.loads(quarantine_path(out).read_text())["text"] == "{torn"
    assert not part0.exists()


# ------------------------------------------------------------------------------------ fuzzing
_value = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
_row = st.dictionaries(
    st.sampled_from(["path", "kind", "caption", "type", "frames", "height", "width", "fps", "x"]),
    _value,
    max_size=8,
)
_line = st.one_of(
    st.builds(lambda extra: json.dumps({**GOOD, "fps": 8.0, **extra}), _row),
    st.builds(lambda extra: json.dumps({"path": "r.mp4", "kind": "error", **extra}), _row),
    _row.map(json.dumps),
    st.text(max_size=15).map(lambda t: t.replace("\n", "").replace("\r", "")),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    manifest=st.lists(_line, max_size=5), rejects=st.lists(_line, max_size=5), torn=st.booleans()
)
def test_fuzzed_parts_merge_or_name_file_and_line(tmp_path_factory, manifest, rejects, torn):
    d = tmp_path_factory.mktemp("merge_fuzz")
    out = d / "m.jsonl"
    for name, lines in (
        ("m.part-00000-of-00001.jsonl", manifest),
        ("m.rejects.part-00000-of-00001.jsonl", rejects),
    ):
        (d / name).write_text("\n".join(lines) + ("" if torn or not lines else "\n"))
    report = build_report(out)  # never raises: bad lines are counted
    assert report["bad_lines"] == len(report["bad_line_examples"]) or report["bad_lines"] > 20
    try:
        merged = merge_parts(out)
    except ManifestError as e:
        message = str(e)
        assert "\n" not in message and ".jsonl:" in message and "nothing merged" in message
        assert not out.exists()
    else:
        assert merged["bad_lines"] == 0
        read_manifest(out)


# ------------------------------------------------------------------------------ Python API
def _head_folder(tmp_path, config, weights):
    folder = tmp_path / "head"
    folder.mkdir()
    (folder / "head.json").write_text(config)
    (folder / "head.pt").write_bytes(weights)
    return folder


@pytest.mark.parametrize(
    ("config", "weights", "needle"),
    [
        ("{oops", b"", r"head\.json' is malformed \(JSONDecodeError"),
        ('{"labels": []}', b"", r"head\.json' is malformed \(missing key 'input_dim'\)"),
        (
            '{"labels": [], "input_dim": 4}',
            b"",
            r"head\.json' is malformed .*labels must not be empty",
        ),
        ('{"labels": ["x"], "input_dim": 4}', b"\x80\x02 truncated", r"head\.pt' cannot be loaded"),
    ],
)
def test_classifier_head_files_are_named(tmp_path, config, weights, needle):
    from cogvx.captioner.classifiers import ClassifierHead

    with pytest.raises(ValueError, match=needle):
        ClassifierHead.load(_head_folder(tmp_path, config, weights))


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("build", "exc", "needle"),
    [
        (lambda: CaptionConfig(every_seconds=NAN), ValueError, "CaptionConfig.every_seconds=nan"),
        (lambda: CaptionConfig(workers=0), ValueError, "CaptionConfig.workers=0"),
        (
            lambda: CaptionConfig(clips_per_batch=2.5),
            TypeError,
            "CaptionConfig.clips_per_batch=2.5",
        ),
        (lambda: FilterConfig(min_motion=INF), ValueError, "FilterConfig.min_motion=inf"),
        (lambda: FilterConfig(max_text=-0.1), ValueError, "FilterConfig.max_text=-0.1"),
        (
            lambda: FilterConfig(negative_thresholds={"blur": NAN}),
            ValueError,
            "negative_thresholds.blur=nan",
        ),
        (lambda: FilterConfig(cut_threshold=2), ValueError, "FilterConfig.cut_threshold=2"),
        (lambda: FilterConfig.from_dict([1]), TypeError, "expected a JSON object, got list"),
        (lambda: UpsampleConfig(top_p=0), ValueError, "UpsampleConfig.top_p=0"),
        (lambda: UpsampleConfig(temperature=NAN), ValueError, "UpsampleConfig.temperature=nan"),
        (lambda: RunPaths.for_output("m.txt"), ValueError, "output must be a .jsonl file"),
    ],
)
def test_configs_refuse(build, exc, needle):
    with pytest.raises(exc, match=re.escape(needle)):
        build()
