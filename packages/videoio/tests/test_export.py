"""export_to_video: diffusers' helper, for PIL lists, arrays and pipeline tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cogvx.videoio import export_to_video, read_video


def _frames(t: int = 5, h: int = 16, w: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (t, h // 8, w // 8, 3), dtype=np.uint8)
    return base.repeat(8, axis=1).repeat(8, axis=2)  # blocky: survives H.264 closely


@pytest.mark.parametrize("kind", ["pil", "float-list", "uint8-array", "pt"])
def test_export_to_video_accepts_the_pipeline_outputs(tmp_path, kind):
    frames = _frames()
    video = {
        "pil": [Image.fromarray(f) for f in frames],
        "float-list": [f.astype(np.float32) / 255 for f in frames],
        "uint8-array": frames,
        "pt": torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255,
    }[kind]
    path = export_to_video(video, tmp_path / "out.mp4", fps=8)
    assert isinstance(path, str) and path.endswith("out.mp4")
    back = read_video(path)
    assert back.frames.shape == frames.shape and back.fps == pytest.approx(8)
    assert np.abs(back.frames.astype(int) - frames.astype(int)).mean() < 12


def test_export_to_video_default_path_and_refusals(tmp_path):
    path = export_to_video(_frames(3), fps=4)
    assert path.endswith(".mp4") and read_video(path).frames.shape[0] == 3
    with pytest.raises(ValueError, match=r"video_frames: float frames must be in \[0, 1\]"):
        export_to_video(_frames(3).astype(np.float32), tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="video_frames=\\[\\]"):
        export_to_video([], tmp_path / "b.mp4")
    with pytest.raises(ValueError, match="fps"):
        export_to_video(_frames(3), tmp_path / "c.mp4", fps=0)
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "c.mp4").exists()
