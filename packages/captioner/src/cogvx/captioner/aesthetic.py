"""Image aesthetic scores (paper §3.4; the lowest aesthetic value used is 4.5, Table 6).

An :class:`AestheticScorer` maps RGB uint8 frames ``[N,H,W,3]`` to float32 scores ``[N]`` on the
LAION aesthetic scale (about 1 to 10). :class:`ClipAestheticScorer` is the usual model: a CLIP
image tower (``transformers``, local folder) whose L2-normalised image embedding goes through a
LAION aesthetic head, either the linear one (``nn.Linear(768, 1)``, keys ``weight``/``bias``;
VBench's ``sa_0_4_vit_l_14_linear.pth``) or the "improved aesthetic predictor" MLP (keys
``layers.{0,2,4,6,7}.*``: 768-1024-128-64-16-1 with dropouts between the first layers).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

__all__ = ["AestheticScorer", "ClipAestheticScorer", "load_aesthetic_head"]


@runtime_checkable
class AestheticScorer(Protocol):
    """RGB uint8 frames ``[N,H,W,3]`` -> float32 scores ``[N]`` (LAION scale, higher is better)."""

    name: str

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


def load_aesthetic_head(path: str | os.PathLike[str]) -> nn.Module:
    """Build the LAION head that matches the state dict at ``path`` (a ``torch.save`` file)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"aesthetic head weights not found: head_path={str(p)!r}")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if "weight" in state and "bias" in state:
        head: nn.Module = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    elif "layers.0.weight" in state:
        d = state["layers.0.weight"].shape[1]
        # index layout of the improved predictor: Linear, Dropout, Linear, Dropout, Linear, Dropout, Linear, Linear
        head = nn.Sequential()
        head.add_module(
            "layers",
            nn.Sequential(
                nn.Linear(d, 1024),
                nn.Dropout(0.2),
                nn.Linear(1024, 128),
                nn.Dropout(0.2),
                nn.Linear(128, 64),
                nn.Dropout(0.1),
                nn.Linear(64, 16),
                nn.Linear(16, 1),
            ),
        )
    else:
        raise ValueError(
            f"{p}: not a LAION aesthetic head (expected keys 'weight'/'bias' or 'layers.*'), got {sorted(state)[:6]}"
        )
    head.load_state_dict(state)
    return head.eval()


class ClipAestheticScorer:
    """CLIP image embedding (L2-normalised) -> LAION aesthetic head."""

    def __init__(
        self,
        clip_dir: str | os.PathLike[str],
        head_path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        from transformers import AutoImageProcessor, CLIPVisionModelWithProjection

        path = Path(clip_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"CLIP folder {str(path)!r} has no config.json")
        self.device = torch.device(device)
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = CLIPVisionModelWithProjection.from_pretrained(path).eval().to(self.device)
        self.head = load_aesthetic_head(head_path).to(self.device)
        self.batch_size = batch_size
        self.name = f"clip-aesthetic:{Path(head_path).name}"

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        scores = []
        for start in range(0, len(frames), self.batch_size):
            pixels = self.processor(
                images=list(frames[start : start + self.batch_size]), return_tensors="pt"
            )["pixel_values"]
            emb = self.model(pixel_values=pixels.to(self.device)).image_embeds.float()  # [B,D]
            emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            scores.append(self.head(emb)[:, 0].cpu().numpy())
        return np.concatenate(scores).astype(np.float32)
