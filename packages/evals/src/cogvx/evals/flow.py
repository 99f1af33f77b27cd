"""Optical-flow backends for motion scores (dynamic degree, static filter, data filtering).

A backend is any object with a ``name`` and ``__call__(frames) -> flow`` where ``frames`` is
``uint8 [T,H,W,3]`` RGB and ``flow`` is ``float32 [T-1,H,W,2]``: the pixel displacement
``(dx, dy)`` from frame ``i`` to frame ``i+1`` (the RAFT convention: ``frame_i(p) ≈
frame_{i+1}(p + flow_i(p))``).

VBench's dynamic degree and static filter were calibrated on RAFT (``raft-things.pth``, 20
iterations). Offline we default to OpenCV's DIS flow (Kroeger et al. 2016), which is a documented
*approximation*: its magnitudes on textured translating content agree with RAFT's to within ~10 %
but differ on low-texture regions, occlusions and large motions, so scores carry
``approximate=True`` in their metadata. :class:`RAFTFlow` runs a real RAFT from local weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = [
    "DISFlow",
    "FarnebackFlow",
    "FlowBackend",
    "RAFTFlow",
    "RAFTUnavailableError",
    "check_frames",
    "flow_magnitude",
    "motion_score",
]


@runtime_checkable
class FlowBackend(Protocol):
    """Pairwise optical flow over a clip: uint8 ``[T,H,W,3]`` -> float32 ``[T-1,H,W,2]``."""

    name: str
    #: True when the backend is a stand-in for the reference estimator (RAFT).
    approximate: bool

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


class RAFTUnavailableError(RuntimeError):
    """RAFT weights or the code needed to build RAFT from them are missing."""


def check_frames(frames: np.ndarray, name: str = "frames", *, min_frames: int = 2) -> np.ndarray:
    """Validate a uint8 ``[T,H,W,3]`` clip; returns it unchanged."""
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [T,H,W,3], got {frames.shape}")
    if frames.shape[0] < min_frames:
        raise ValueError(
            f"{name} must contain at least {min_frames} frames, got T={frames.shape[0]}"
        )
    return frames


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """Per-pixel displacement length ``sqrt(u² + v²)``; ``[...,2] -> [...]``."""
    return np.sqrt(np.square(flow[..., 0]) + np.square(flow[..., 1]))


def motion_score(
    frames: np.ndarray, flow: FlowBackend, *, top_fraction: float | None = None
) -> float:
    """A clip's motion in pixels per frame pair, for filtering and captioning.

    ``top_fraction=None``: mean flow magnitude over all pixels and pairs (DEVIL's ``flow``
    sub-score convention). ``top_fraction=0.05``: mean over pairs of the mean of the largest 5 %
    of magnitudes (the per-pair statistic of VBench's dynamic degree).
    """
    mags = flow_magnitude(flow(check_frames(frames)).astype(np.float64))  # [T-1,H,W]
    if top_fraction is None:
        return float(mags.mean())
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    flat = mags.reshape(len(mags), -1)
    k = max(1, int(flat.shape[1] * top_fraction))
    return float(np.sort(flat, axis=1)[:, ::-1][:, :k].mean())


class DISFlow:
    """OpenCV Dense Inverse Search flow on grayscale frames — an offline approximation of RAFT.

    ``preset`` is one of ``"ultrafast"``, ``"fast"``, ``"medium"`` (default; on a textured square
    translating 8 px/frame at 256² it measures a top-5 % magnitude of ~7.9 px).
    """

    approximate = True
    _PRESETS: ClassVar[dict[str, int]] = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }

    def __init__(self, preset: str = "medium", *, progress: bool = False) -> None:
        if preset not in self._PRESETS:
            raise ValueError(f"preset must be one of {sorted(self._PRESETS)}, got {preset!r}")
        self.preset = preset
        self.name = f"dis-{preset}"
        self.progress = progress

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        check_frames(frames)
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        out = np.empty((len(frames) - 1, *frames.shape[1:3], 2), np.float32)
        # One OpenCV object per call: a shared one crashes when two threads call it at once
        # (the captioner reads clips in worker threads); creating it costs microseconds.
        dis = cv2.DISOpticalFlow_create(self._PRESETS[self.preset])
        for i in tqdm(range(len(gray) - 1), desc=self.name, disable=not self.progress, leave=False):
            out[i] = dis.calc(gray[i], gray[i + 1], None)
        return out


class FarnebackFlow:
    """OpenCV Farnebäck flow (approximation of RAFT; underestimates large motions).

    With the classic settings (3 levels, window 15) a square moving 8 px/frame measures only
    ~2.7 px, so :class:`DISFlow` is the default; more pyramid levels help.
    """

    approximate = True

    def __init__(self, *, levels: int = 5, winsize: int = 15, iterations: int = 3) -> None:
        self.levels, self.winsize, self.iterations = levels, winsize, iterations
        self.name = f"farneback-l{levels}-w{winsize}"

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        check_frames(frames)
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        out = np.empty((len(frames) - 1, *frames.shape[1:3], 2), np.float32)
        for i in range(len(gray) - 1):
            out[i] = cv2.calcOpticalFlowFarneback(
                gray[i],
                gray[i + 1],
                None,
                0.5,
                self.levels,
                self.winsize,
                self.iterations,
                5,
                1.1,
                0,
            )
        return out


class RAFTFlow:
    """RAFT (Teed & Deng 2020) from local weights; the estimator VBench's thresholds assume.

    ``module(image1, image2)`` must take two float32 batches ``[1,3,H,W]`` (``H``, ``W``
    multiples of 8) and return the flow ``[1,2,H,W]`` or a list of refinements whose last item is
    the final flow (torchvision's convention). ``input_range`` says how images are scaled before the
    call: ``"0-255"`` (the original RAFT code, which normalises internally) or ``"-1-1"``
    (torchvision's RAFT). Frames are padded to multiples of 8 with edge replication (RAFT's
    ``InputPadder``, "sintel" mode) and the flow is cropped back.
    """

    approximate = False

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        name: str = "raft",
        input_range: str = "0-255",
        device: str | torch.device = "cpu",
        progress: bool = False,
    ) -> None:
        if input_range not in ("0-255", "-1-1"):
            raise ValueError(f"input_range must be '0-255' or '-1-1', got {input_range!r}")
        self.module = module.eval().to(device)
        self.name = name
        self.input_range = input_range
        self.device = torch.device(device)
        self.progress = progress

    @classmethod
    def from_local(
        cls,
        weights_path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        input_range: str | None = None,
        iters: int = 20,
    ) -> RAFTFlow:
        """Load RAFT from a local file.

        - A TorchScript archive (``torch.jit.save`` of a RAFT module) is loaded directly; this is
          the dependency-free path (export once on a machine with the RAFT code).
        - A plain state dict is loaded into torchvision's ``raft_large`` architecture (torchvision
          key layout, ``input_range="-1-1"``) when torchvision is installed; cogvx does not depend
          on torchvision and does not ship a RAFT architecture, so otherwise this raises
          :class:`RAFTUnavailableError` explaining how to proceed.
        """
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"RAFT weights not found: weights_path={str(path)!r}")
        try:
            module = torch.jit.load(str(path), map_location="cpu")
            return cls(
                module,
                name=f"raft-torchscript:{path.name}",
                input_range=input_range or "0-255",
                device=device,
            )
        except (RuntimeError, ValueError):
            pass  # not a TorchScript archive: try a state dict below
        try:
            import torchvision.models.optical_flow as tv_flow  # optional, not a dependency
        except ImportError as e:
            raise RAFTUnavailableError(
                f"{path} is a plain RAFT state dict, which needs the RAFT architecture: install "
                "torchvision (torchvision key layout, e.g. raft_large_C_T_V2) or export the model "
                "with torch.jit.save and pass that file. Meanwhile use --flow dis (an approximation)."
            ) from e
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model = tv_flow.raft_large(weights=None, num_flow_updates=iters)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise RAFTUnavailableError(
                f"{path} does not match torchvision's raft_large key layout (original "
                f"raft-things.pth checkpoints use different names; export with torch.jit.save): {e}"
            ) from e
        return cls(
            model,
            name=f"raft-torchvision:{path.name}",
            input_range=input_range or "-1-1",
            device=device,
        )

    @staticmethod
    def pad_to_8(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """RAFT ``InputPadder`` ("sintel" mode): replicate-pad ``[N,C,H,W]`` to multiples of 8."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % 8, (-w) % 8
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        return F.pad(x, pad, mode="replicate"), pad

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        check_frames(frames)
        h, w = frames.shape[1:3]
        out = np.empty((len(frames) - 1, h, w, 2), np.float32)
        with torch.no_grad():
            for i in tqdm(
                range(len(frames) - 1), desc=self.name, disable=not self.progress, leave=False
            ):
                # [2,H,W,3] uint8 -> [2,3,H,W] float32
                pair = (
                    torch.from_numpy(frames[i : i + 2]).to(self.device).permute(0, 3, 1, 2).float()
                )
                if self.input_range == "-1-1":
                    pair = pair / 127.5 - 1.0
                pair, (left, _, top, _) = self.pad_to_8(pair)
                flow = self.module(pair[:1], pair[1:])
                if isinstance(flow, list | tuple):
                    flow = flow[-1]
                # [1,2,H',W'] -> crop padding -> [H,W,2]
                flow = flow[0, :, top : top + h, left : left + w]
                out[i] = flow.permute(1, 2, 0).float().cpu().numpy()
        return out
