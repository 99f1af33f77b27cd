import json

import numpy as np
import pytest

from cogvx.evals.cli import main
from cogvx.videoio import write_video

from .conftest import static_video, textured_square_video


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    write_video(
        d / "In a still frame, a teapot on a wooden table-0.mp4",
        static_video(frames=9, size=64),
        fps=8,
    )
    write_video(
        d / "a dog running across a snowy field-0.mp4",
        textured_square_video(8, frames=9, size=128, square=32),
        fps=8,
    )
    write_video(d / "a green bus-0.mp4", static_video(frames=9, size=64, seed=3), fps=8)
    (d / "broken-0.mp4").write_bytes(b"not a video at all")
    (d / "empty-0.mp4").write_bytes(b"")
    return d


def test_run_writes_reports_and_reports_bad_videos(video_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            str(video_dir),
            "--dims",
            "temporal_flickering,dynamic_degree,motion_smoothness,subject_consistency,color",
            "--suite",
            "builtin",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    dims = data["dimensions"]
    assert dims["subject_consistency"]["status"] == "unavailable"
    assert "--dino" in dims["subject_consistency"]["reason"]
    assert dims["color"]["status"] == "unavailable"
    tf = dims["temporal_flickering"]
    assert tf["counts"] == {"ok": 3, "skipped": 0, "error": 2}
    errors = {v["video"]: v["reason"] for v in tf["per_video"] if v["status"] == "error"}
    assert set(errors) == {"broken-0.mp4", "empty-0.mp4"} and all(
        "cannot read video" in r for r in errors.values()
    )
    dd = {
        v["video"]: v["score"] for v in dims["dynamic_degree"]["per_video"] if v["status"] == "ok"
    }
    assert dd["a dog running across a snowy field-0.mp4"] == 1.0
    assert dd["In a still frame, a teapot on a wooden table-0.mp4"] == 0.0
    assert dims["dynamic_degree"]["metadata"]["approximate"] is True
    assert data["totals"]["total"] is None and "scene" in data["totals"]["missing"]
    cov = data["config"]["suite_coverage"]["temporal_flickering"]
    assert cov == {
        "prompts": 2,
        "with_videos": 1,
        "fewer_than_expected": 2,
        "examples_missing": ["In a still frame, an empty park bench at dawn"],
    }
    assert set(data["config"]["videos_not_in_suite"]) == {"broken-0.mp4", "empty-0.mp4"}
    md = (out / "results.md").read_text()
    assert "## Prompt suite coverage" in md
    assert "| subject_consistency | unavailable |" in md and "broken-0.mp4" in md
    for png in ("dimensions.png", "distributions.png", "contact_sheet.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "results.json" in capsys.readouterr().out


def test_compare_and_dispatcher(video_dir, tmp_path):
    from cogvx.cli.main import main as cogvx_main

    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        main(
            [
                str(video_dir),
                "--dims",
                "temporal_flickering",
                "--out",
                str(a),
                "--no-plots",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        cogvx_main(
            [
                "eval",
                str(video_dir),
                "--dims",
                "temporal_flickering,dynamic_degree",
                "--out",
                str(b),
                "--no-plots",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "compare",
                str(a / "results.json"),
                str(b / "results.json"),
                "--out",
                str(tmp_path / "cmp.md"),
            ]
        )
        == 0
    )
    cmp = (tmp_path / "cmp.md").read_text()
    assert "| temporal_flickering |" in cmp and "+0.00" in cmp and "not in a" in cmp
    # bad arguments surface through the dispatcher as usage errors (exit code 2)
    assert cogvx_main(["eval", str(video_dir), "--dims", "smoothness"]) == 2
    assert (
        cogvx_main(["eval", "compare", str(a / "results.json"), str(tmp_path / "missing.json")])
        == 2
    )


def test_recon_pairs(tmp_path):
    ref, rec = tmp_path / "ref", tmp_path / "rec"
    v = static_video(frames=5, size=32)
    write_video(ref / "x.mp4", v, fps=8)
    write_video(rec / "x.mp4", v, fps=8)
    write_video(ref / "y.mp4", v, fps=8)
    write_video(rec / "y.mp4", v[:3], fps=8)  # frame-count mismatch: reported for this pair only
    out = tmp_path / "out"
    assert (
        main(["recon", str(rec), "--reference", str(ref), "--out", str(out), "--no-progress"]) == 0
    )
    data = json.loads((out / "recon.json").read_text())
    psnr = {v["video"]: v for v in data["dimensions"]["psnr"]["per_video"]}
    assert psnr["x.mp4"]["status"] == "ok" and float(psnr["x.mp4"]["score"]) > 30
    assert psnr["y.mp4"]["status"] == "error" and "shape" in psnr["y.mp4"]["reason"]
    assert data["dimensions"]["ssim"]["score"] > 0.9


def test_fvd_command(tmp_path):
    import torch

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.stack([x.mean(dim=(1, 2, 3, 4)), x.std(dim=(1, 2, 3, 4))], dim=1)

    torch.jit.save(torch.jit.script(Net()), str(tmp_path / "net.pt"))
    rng = np.random.default_rng(0)
    for side in ("real", "fake"):
        for i in range(3):
            write_video(
                tmp_path / side / f"{i}.mp4",
                rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
                fps=8,
            )
    (tmp_path / "fake" / "bad.mp4").write_bytes(b"x")
    out = tmp_path / "fvd.json"
    assert (
        main(
            [
                "fvd",
                "--real",
                str(tmp_path / "real"),
                "--fake",
                str(tmp_path / "fake"),
                "--i3d",
                str(tmp_path / "net.pt"),
                "--num-frames",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert (
        data["real"] == 3 and data["fake"] == 3 and len(data["skipped"]) == 1 and data["fvd"] >= 0
    )
