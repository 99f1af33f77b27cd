import numpy as np
import pytest
import torch

from cogvx.evals.flow import (
    DISFlow,
    FarnebackFlow,
    FlowBackend,
    RAFTFlow,
    RAFTUnavailableError,
    flow_magnitude,
)

from .conftest import static_video, textured_square_video


def top5(flow: np.ndarray) -> float:
    mag = np.sort(flow_magnitude(flow).ravel())[::-1]
    return float(mag[: int(mag.size * 0.05)].mean())


def test_dis_measures_translation():
    dis = DISFlow()
    assert isinstance(dis, FlowBackend) and dis.approximate
    flow = dis(textured_square_video(8, frames=3))
    assert flow.shape == (2, 256, 256, 2) and flow.dtype == np.float32
    assert 6.5 < top5(flow[0]) < 9.0
    # direction: the square moves right (+x)
    mag = flow_magnitude(flow[0])
    moving = mag > 4
    assert np.median(flow[0][moving][:, 0]) > 6
    assert top5(dis(static_video(frames=3, size=64))[0]) < 1e-3


def test_farneback_shape():
    flow = FarnebackFlow()(textured_square_video(2, frames=2, size=64, square=32))
    assert flow.shape == (1, 64, 64, 2)


def test_backend_rejects_bad_frames():
    with pytest.raises(TypeError, match="uint8"):
        DISFlow()(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        DISFlow()(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="preset"):
        DISFlow("slow")


class ShiftNet(torch.nn.Module):
    """Stand-in RAFT: returns a constant flow and records the input it saw."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = a.shape
        assert h % 8 == 0 and w % 8 == 0
        flow = torch.zeros(n, 2, h, w)
        flow[:, 0] = a.mean() / 1000  # depends on input scaling
        flow[:, 1] = 2.0
        return flow, flow  # (low-res, up-sampled) like RAFT's test_mode


def test_raft_wrapper_pads_and_crops(tmp_path):
    frames = np.full((3, 13, 21, 3), 255, np.uint8)
    out = RAFTFlow(ShiftNet())(frames)
    assert out.shape == (2, 13, 21, 2)
    np.testing.assert_allclose(out[..., 1], 2.0)
    np.testing.assert_allclose(out[..., 0], 0.255, rtol=1e-5)  # "0-255": raw pixel values
    out = RAFTFlow(ShiftNet(), input_range="-1-1")(frames)
    np.testing.assert_allclose(out[..., 0], 0.001, rtol=1e-4)


def test_raft_from_local_torchscript_and_errors(tmp_path):
    path = tmp_path / "raft.pt"
    torch.jit.save(torch.jit.script(ShiftNet()), str(path))
    raft = RAFTFlow.from_local(path)
    assert not raft.approximate and "raft" in raft.name
    assert raft(np.zeros((2, 16, 16, 3), np.uint8)).shape == (1, 16, 16, 2)
    with pytest.raises(FileNotFoundError, match="weights_path"):
        RAFTFlow.from_local(tmp_path / "missing.pth")
    sd = tmp_path / "raft-things.pth"
    torch.save({"module.fnet.conv1.weight": torch.zeros(1)}, sd)
    with pytest.raises(RAFTUnavailableError, match="RAFT"):
        RAFTFlow.from_local(sd)


def test_motion_score():
    from cogvx.evals.flow import motion_score

    still = static_video(frames=3, size=64)
    assert motion_score(still, DISFlow()) < 1e-3
    moving = textured_square_video(8, frames=3)
    top = motion_score(moving, DISFlow(), top_fraction=0.05)
    assert 6.5 < top < 9.0
    assert motion_score(moving, DISFlow()) < top  # most pixels are static background
    with pytest.raises(ValueError, match="top_fraction"):
        motion_score(moving, DISFlow(), top_fraction=0)
