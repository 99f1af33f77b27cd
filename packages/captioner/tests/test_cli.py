import json

import pytest

from cogvx.captioner.cli import main
from cogvx.cli import UsageError
from cogvx.videoio import read_manifest


def _cogvx(argv):
    from cogvx.cli.main import main as cogvx_main

    return cogvx_main(argv)


def test_run_and_resume(clip_folder, tmp_path, captioner_dir, chat_lm_dir, capsys):
    out = tmp_path / "data" / "manifest.jsonl"
    argv = [
        "run",
        str(clip_folder),
        "--output",
        str(out),
        "--captioner",
        str(captioner_dir),
        "--summarizer",
        str(chat_lm_dir),
        "--no-progress",
        "--workers",
        "1",
        "--batch",
        "3",
        "--device",
        "cpu",
        "--min-motion",
        "1.0",
    ]
    assert main(argv) == 0
    assert "4 kept, 2 filtered, 2 errors" in capsys.readouterr().out
    first = read_manifest(out)
    assert len(first) == 4
    assert main(argv) == 0  # resumes: nothing to redo
    assert "8 already done" in capsys.readouterr().out
    assert read_manifest(out) == first
    report = json.loads((tmp_path / "data" / "manifest.report.json").read_text())
    assert report["accepted"] == 4 and report["filter_config"]["min_motion"] == 1.0


def test_dispatcher_filter_only_and_errors(clip_folder, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert (
        _cogvx(
            [
                "caption",
                "run",
                str(clip_folder),
                "--output",
                str(out),
                "--filter-only",
                "--no-progress",
            ]
        )
        == 0
    )
    records = read_manifest(out)
    assert len(records) == 4 and all(r.caption == "" for r in records)
    capsys.readouterr()
    assert (
        _cogvx(
            [
                "caption",
                "run",
                str(clip_folder),
                "--output",
                str(out),
                "--captioner",
                str(tmp_path / "nope"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("cogvx caption: error: --captioner") and "no config.json" in err
    assert _cogvx(["caption", "run", str(clip_folder), "--output", str(out)]) == 2
    assert "--filter-only" in capsys.readouterr().err


def test_filter_config_file_and_overrides(clip_folder, tmp_path):
    cfg = tmp_path / "f.json"
    cfg.write_text(json.dumps({"min_motion": None, "max_text": None}))
    out = tmp_path / "m.jsonl"
    assert (
        main(
            [
                "run",
                str(clip_folder),
                "--output",
                str(out),
                "--filter-only",
                "--no-progress",
                "--filter-config",
                str(cfg),
                "--flow",
                "none",
            ]
        )
        == 0
    )
    assert len(read_manifest(out)) == 6  # nothing filtered, only the two broken files rejected
    cfg.write_text(json.dumps({"min_motoin": 1}))
    with pytest.raises(UsageError, match="unknown filter config key"):
        main(
            [
                "run",
                str(clip_folder),
                "--output",
                str(tmp_path / "n.jsonl"),
                "--filter-only",
                "--filter-config",
                str(cfg),
            ]
        )


def test_sharded_cli_and_merge(clip_folder, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    for rank in ("0", "1"):
        assert (
            main(
                [
                    "run",
                    str(clip_folder),
                    "--output",
                    str(out),
                    "--filter-only",
                    "--no-progress",
                    "--rank",
                    rank,
                    "--world-size",
                    "2",
                ]
            )
            == 0
        )
    assert not out.exists()
    assert main(["merge", str(out)]) == 0
    assert "4 kept, 2 filtered, 2 errors" in capsys.readouterr().out
    assert len(read_manifest(out)) == 4


def test_upsample_cli(chat_lm_dir, capsys):
    assert (
        main(
            [
                "upsample",
                "a dog runs on the beach",
                "--model",
                str(chat_lm_dir),
                "--max-new-tokens",
                "30",
                "--min-words",
                "5",
                "--max-words",
                "40",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out.strip()
    assert text and text != "a dog runs on the beach" and len(text.split()) <= 40


def test_upsample_cli_unreachable_endpoint_falls_back(capsys):
    assert (
        _cogvx(
            [
                "caption",
                "upsample",
                "a dog",
                "--endpoint",
                "http://127.0.0.1:9/v1",
                "--retries",
                "1",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["prompt"] == "a dog" and result["fallback"] is True and result["error"]


def test_train_filter_then_use_it(tmp_path, synth, capsys):
    folder = tmp_path / "lab"
    folder.mkdir()
    rows = []
    for i in range(3):
        synth.write(folder / f"m{i}.mp4", synth.moving(16, speed=3 + i, seed=i))
        rows.append({"path": f"m{i}.mp4", "labels": {"text_dominated": 0}})
        synth.write(folder / f"t{i}.mp4", synth.text(16))
        rows.append({"path": f"t{i}.mp4", "labels": {"text_dominated": 1}})
    (folder / "labels.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    head = tmp_path / "head"
    assert (
        main(
            [
                "train-filter",
                str(folder / "labels.jsonl"),
                "--output",
                str(head),
                "--epochs",
                "100",
                "--frames",
                "4",
            ]
        )
        == 0
    )
    out = tmp_path / "m.jsonl"
    assert (
        main(
            [
                "run",
                str(folder),
                "--output",
                str(out),
                "--filter-only",
                "--no-progress",
                "--classifier-head",
                str(head),
                "--max-text",
                "-1",
                "--min-motion",
                "-1",
            ]
        )
        == 0
    )
    kept = {r.path for r in read_manifest(out)}
    assert kept == {f"lab/m{i}.mp4" for i in range(3)}
    rejects = [json.loads(x) for x in (tmp_path / "m.rejects.jsonl").read_text().splitlines()]
    assert {r["path"] for r in rejects} == {f"lab/t{i}.mp4" for i in range(3)}
    assert all(r["failed"] == ["negative:text_dominated"] for r in rejects)


def test_aesthetic_filter_cli(clip_folder, clip_dir, tmp_path):
    import torch

    lin = torch.nn.Linear(8, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.fill_(3.0)  # every frame scores 3.0
    torch.save(lin.state_dict(), tmp_path / "head.pth")
    out = tmp_path / "m.jsonl"
    base = [
        "run",
        str(clip_folder),
        "--output",
        str(out),
        "--filter-only",
        "--no-progress",
        "--min-motion",
        "-1",
        "--max-text",
        "-1",
        "--aesthetic-clip",
        str(clip_dir),
        "--aesthetic-head",
        str(tmp_path / "head.pth"),
    ]
    assert main([*base, "--min-aesthetic", "4.5"]) == 0
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["accepted"] == 0 and report["removed_by_filter"] == {"aesthetic": 6}
    assert any(s.startswith("aesthetic[laion-aesthetic-linear") for s in report["scorers"])
    with pytest.raises(UsageError, match="goes together"):
        main(
            [
                "run",
                str(clip_folder),
                "--output",
                str(out),
                "--filter-only",
                "--aesthetic-clip",
                str(clip_dir),
            ]
        )


def test_split_shots_cli(tmp_path, synth):
    import numpy as np

    folder = tmp_path / "films"
    folder.mkdir()
    a = synth.moving(24, speed=3.0)
    b = 255 - synth.moving(24, speed=3.0, seed=4)[:, :, ::-1]
    synth.write(folder / "film.mp4", np.concatenate([a, b]))
    out = tmp_path / "m.jsonl"
    argv = [
        "run",
        str(folder),
        "--output",
        str(out),
        "--filter-only",
        "--no-progress",
        "--split-shots",
        str(tmp_path / "shots"),
        "--shot-max-seconds",
        "2",
        "--shot-min-seconds",
        "0.5",
    ]
    assert main(argv) == 0
    # two shots of 3 s, each cut into a 2 s and a 1 s piece
    assert sorted(r.path for r in read_manifest(out)) == [
        f"shots/film.shot00{k}.mp4" for k in range(4)
    ]
    assert sorted(r.frames for r in read_manifest(out)) == [8, 8, 16, 16]
