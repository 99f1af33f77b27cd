"""`cogvx vae` command: demo, encode/decode round trip, errors as one line, no partial files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cogvx.vae3d.cli import main, synthetic_clip

pytest.importorskip("cogvx.videoio")


def test_demo_writes_videos_and_report(tmp_path, capsys):
    assert (
        main(
            [
                "demo",
                "--output",
                str(tmp_path),
                "--frames",
                "9",
                "--height",
                "32",
                "--width",
                "48",
                "--metrics",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "RANDOM UNTRAINED WEIGHTS" in out and "reconstruction.mp4" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["random_weights"] is True and "RANDOM" in report["weights"]
    assert report["latent_shape"] == [4, 3, 4, 6]
    assert np.isfinite(report["psnr_db"]) and -1 <= report["ssim"] <= 1
    assert (tmp_path / "input.mp4").stat().st_size > 0


def test_encode_decode_round_trip(tmp_path):
    from cogvx.videoio import probe_video, write_video

    src = tmp_path / "in.mp4"
    write_video(src, synthetic_clip(11, 24, 32), fps=12.0)
    lat = tmp_path / "z.safetensors"
    # 11 frames is not 4k+1: refused without --pad-frames, padded (and cropped back) with it.
    with pytest.raises(ValueError, match="11 frames"):
        main(["encode", str(src), str(lat), "--no-progress"])
    assert not lat.exists()
    assert main(["encode", str(src), str(lat), "--pad-frames", "--no-progress"]) == 0
    from safetensors import safe_open

    with safe_open(str(lat), framework="pt") as f:
        meta = f.metadata()
        assert f.get_tensor("latents").shape == (4, 4, 3, 4)
    assert (
        meta["num_frames"] == "11"
        and meta["scaled"] == "false"
        and meta["random_weights"] == "true"
    )
    out = tmp_path / "out.mp4"
    assert main(["decode", str(lat), str(out), "--decode-chunk", "1", "--no-progress"]) == 0
    info = probe_video(out)
    assert (info.num_frames, info.height, info.width) == (11, 24, 32)


def test_errors_are_one_line_through_dispatcher(tmp_path, capsys):
    cli = pytest.importorskip("cogvx.cli.main")
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "z.safetensors"
    assert cli.main(["vae", "encode", str(missing), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cogvx vae: error:") and "missing.mp4" in err[0]
    assert not out.exists()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    assert cli.main(["vae", "encode", str(bad), str(out)]) == 1
    assert "bad.mp4" in capsys.readouterr().err
    assert cli.main(["vae", "demo", "--frames", "8", "--output", str(tmp_path / "d")]) == 1
    assert "4k+1" in capsys.readouterr().err
    assert list(tmp_path.glob("**/*.partial*")) == []


def test_decode_refuses_latents_from_another_model(tmp_path, tiny_vae):
    from safetensors.torch import save_file

    lat = tmp_path / "z.safetensors"
    meta = {
        "format": "cogvx-vae-latents/1",
        "config_fingerprint": "0" * 16,
        "model": "other",
        "num_frames": "5",
        "height": "16",
        "width": "16",
        "fps": "8.0",
    }
    save_file({"latents": torch.zeros(4, 2, 2, 2)}, str(lat), metadata=meta)
    with pytest.raises(ValueError, match="same --model"):
        main(["decode", str(lat), str(tmp_path / "o.mp4"), "--no-progress"])
    assert not (tmp_path / "o.mp4").exists()


def test_help_imports_no_torch():
    """``cogvx vae --help`` answers without importing torch (start-up: the commands import it)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cogvx.vae3d.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in ('torch', 'safetensors', 'cv2', 'av') if m in sys.modules), "
        "file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage:" in out.stdout and "encode" in out.stdout
    assert out.stderr.strip() == "[]"
