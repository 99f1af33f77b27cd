"""TorchScript loaders (the dependency-free path for AMT and MUSIQ exports)."""

import numpy as np
import pytest
import torch

from cogvx.evals.backends.vision import TorchScriptIQA
from cogvx.evals.interpolation import LinearBlendInterpolator, TorchScriptInterpolator
from cogvx.evals.samples import VideoSample
from cogvx.evals.vbench.quality import ImagingQuality, longer_side_resize
from cogvx.evals.vbench.temporal import MotionSmoothness


class Blend(torch.nn.Module):
    def forward(
        self, a: torch.Tensor, b: torch.Tensor, embt: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        assert a.shape[-1] % 16 == 0 and a.shape[-2] % 16 == 0
        return {"imgt_pred": a * (1 - embt) + b * embt}


class MeanQuality(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean().reshape(1) * 100


def test_torchscript_interpolator_matches_blend(tmp_path):
    torch.jit.save(torch.jit.script(Blend()), str(tmp_path / "amt.pt"))
    interp = TorchScriptInterpolator.from_local(tmp_path / "amt.pt")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (2, 21, 27, 3), dtype=np.uint8) for _ in range(2))
    got, ref = interp(a, b), LinearBlendInterpolator()(a, b)
    assert got.shape == a.shape
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # float32 rounding at .5 ties
    v = VideoSample.from_frames("v", np.repeat(a[:1], 5, axis=0))
    assert MotionSmoothness(interp).score(v).score == 1.0
    with pytest.raises(FileNotFoundError):
        TorchScriptInterpolator.from_local(tmp_path / "none.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "sd.pth")
    with pytest.raises(ValueError, match="not a TorchScript archive"):
        TorchScriptInterpolator.from_local(tmp_path / "sd.pth")


def test_imaging_quality_longer_mode(tmp_path):
    torch.jit.save(torch.jit.script(MeanQuality()), str(tmp_path / "musiq.pt"))
    iqa = TorchScriptIQA.from_local(tmp_path / "musiq.pt")
    frames = np.full((3, 600, 1024, 3), 51, np.uint8)  # 51/255 = 0.2 everywhere
    x = longer_side_resize(frames)
    assert tuple(x.shape) == (3, 3, 300, 512)  # longer side 1024 -> 512, int(0.5 * 600) = 300
    s = ImagingQuality(iqa).score(VideoSample.from_frames("v", frames))
    assert s.score == pytest.approx(0.2, abs=1e-6)  # MUSIQ-scale 20 -> /100
    small = np.zeros((1, 100, 200, 3), np.uint8)
    assert tuple(longer_side_resize(small).shape) == (1, 3, 100, 200)  # no resize at or below 512
