"""Frame interpolators for VBench motion smoothness.

VBench uses AMT-S (Li et al. 2023, ``amt-s.pth``) to predict the midpoint of two frames. An
interpolator maps two uint8 batches ``[N,H,W,3]`` to their midpoints ``[N,H,W,3]``. Offline
stand-ins (clearly marked ``approximate``): a linear blend and a flow-warp midpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from cogvx.evals.flow import FlowBackend

__all__ = [
    "FlowWarpInterpolator",
    "FrameInterpolator",
    "LinearBlendInterpolator",
    "TorchScriptInterpolator",
]


@runtime_checkable
class FrameInterpolator(Protocol):
    name: str
    approximate: bool

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray) -> np.ndarray: ...


class LinearBlendInterpolator:
    """Midpoint = rounded mean of the two frames (exact for linear brightness ramps only)."""

    name = "linear-blend"
    approximate = True

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray) -> np.ndarray:
        mid = (frames0.astype(np.float32) + frames1.astype(np.float32)) / 2
        return np.clip(np.round(mid), 0, 255).astype(np.uint8)


class FlowWarpInterpolator:
    """Midpoint by warping both frames half-way along optical flow and averaging.

    ``I_½(x) ≈ ½[I_0(x − ½F_0→1(x)) + I_1(x − ½F_1→0(x))]`` (backward warping with the flow at
    ``x`` — a first-order approximation that is exact for uniform translation).
    """

    approximate = True

    def __init__(self, flow: FlowBackend) -> None:
        self.flow = flow
        self.name = f"flow-warp[{flow.name}]"

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray) -> np.ndarray:
        out = np.empty_like(frames0)
        h, w = frames0.shape[1:3]
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        for i, (a, b) in enumerate(zip(frames0, frames1)):
            f01, f10 = self.flow(np.stack([a, b, a]))  # a->b, b->a
            wa = cv2.remap(
                a,
                gx - 0.5 * f01[..., 0],
                gy - 0.5 * f01[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            wb = cv2.remap(
                b,
                gx - 0.5 * f10[..., 0],
                gy - 0.5 * f10[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            out[i] = np.clip(np.round((wa.astype(np.float32) + wb) / 2), 0, 255).astype(np.uint8)
        return out


class TorchScriptInterpolator:
    """A learned interpolator (e.g. AMT-S exported with ``torch.jit.save``) from a local file.

    The module is called as ``module(img0, img1, embt)`` with ``img*`` float32 ``[1,3,H,W]`` in
    ``[0,1]`` (``H``, ``W`` padded to multiples of 16 by edge replication) and ``embt`` the time
    step ``0.5`` as ``[1,1,1,1]``; it returns the middle frame or a dict with ``"imgt_pred"``
    (AMT's output). Predictions are converted back with ``round(x·255)`` clipped to uint8.
    """

    approximate = False

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        name: str = "torchscript-interpolator",
        device: str = "cpu",
    ) -> None:
        self.module = module.eval().to(device)
        self.name = name
        self.device = torch.device(device)

    @classmethod
    def from_local(cls, path: str | os.PathLike, *, device: str = "cpu") -> TorchScriptInterpolator:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"interpolator weights not found: path={str(p)!r}")
        try:
            module = torch.jit.load(str(p), map_location="cpu")
        except (RuntimeError, ValueError) as e:
            raise ValueError(
                f"{p} is not a TorchScript archive; the AMT architecture is not shipped with cogvx, "
                "so export the model with torch.jit.save (see the evals README)"
            ) from e
        return cls(module, name=f"torchscript:{p.name}", device=device)

    def __call__(self, frames0: np.ndarray, frames1: np.ndarray) -> np.ndarray:
        h, w = frames0.shape[1:3]
        ph, pw = (-h) % 16, (-w) % 16
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        embt = torch.full((1, 1, 1, 1), 0.5, device=self.device)
        out = np.empty_like(frames0)
        with torch.no_grad():
            for i, (a, b) in enumerate(zip(frames0, frames1)):
                # [H,W,3] uint8 -> [1,3,H,W] float in [0,1], padded
                ta, tb = (
                    F.pad(
                        torch.from_numpy(x).to(self.device).permute(2, 0, 1)[None].float() / 255,
                        pad,
                        mode="replicate",
                    )
                    for x in (a, b)
                )
                pred = self.module(ta, tb, embt)
                if isinstance(pred, dict):
                    pred = pred["imgt_pred"]
                pred = pred[0, :, pad[2] : pad[2] + h, pad[0] : pad[0] + w]
                out[i] = (
                    (pred * 255)
                    .clamp(0, 255)
                    .round()
                    .to(torch.uint8)
                    .permute(1, 2, 0)
                    .cpu()
                    .numpy()
                )
        return out
