"""Image aesthetic scores for filtering (paper §3.4; the strictest stage keeps aesthetic >= 4.5, Table 6).

The scorer protocol is the evaluation package's :class:`cogvx.evals.backends.protocols.AestheticScorer`
(RGB uint8 frames ``[N,H,W,3]`` -> scores ``[N]`` on the LAION 0-10 scale), so one model object
serves both evaluation and data filtering. Evals ships the linear LAION head that VBench uses;
data pipelines more often use the "improved aesthetic predictor" MLP. :class:`ClipAestheticScorer`
takes either head on top of any evals :class:`~cogvx.evals.backends.protocols.ImageEmbedder`
(L2-normalised CLIP image features; :class:`cogvx.evals.backends.clip.CLIPBackend` by default):

- linear: ``nn.Linear(D, 1)``, keys ``weight``/``bias`` (``sa_0_4_vit_l_14_linear.pth``);
- MLP: keys ``layers.{0,2,4,6,7}.*``: D-1024-128-64-16-1 with dropouts between the first layers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cogvx.evals.backends.protocols import AestheticScorer, ImageEmbedder

__all__ = ["AestheticScorer", "ClipAestheticScorer", "load_aesthetic_head"]


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
        # index layout of the improved predictor: Linear, Dropout, Linear, Dropout, Linear,
        # Dropout, Linear, Linear (the state dict keys are layers.0/2/4/6/7)
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
            f"{p}: not a LAION aesthetic head (expected keys 'weight'/'bias' or 'layers.*'), "
            f"got {sorted(state)[:6]}"
        )
    head.load_state_dict(state)
    return head.eval()


class ClipAestheticScorer:
    """L2-normalised image features from an evals ``ImageEmbedder`` -> LAION head -> ``[N]``."""

    approximate = False

    def __init__(
        self, embedder: ImageEmbedder, head: nn.Module, *, name: str | None = None
    ) -> None:
        self.embedder = embedder
        self.head = head.eval().float()
        self.name = name or f"laion-aesthetic[{embedder.name}]"

    @classmethod
    def from_local(
        cls,
        clip_dir: str | os.PathLike[str],
        head_path: str | os.PathLike[str],
        *,
        device: str = "cpu",
    ) -> ClipAestheticScorer:
        """A transformers CLIP folder (evals' ``CLIPBackend``: VBench preprocessing) and a head file."""
        from cogvx.evals.backends.clip import CLIPBackend

        head = load_aesthetic_head(head_path)  # check the small file before loading CLIP
        clip = CLIPBackend.from_local(clip_dir, device=device)
        kind = "linear" if isinstance(head, nn.Linear) else "mlp"
        return cls(clip, head, name=f"laion-aesthetic-{kind}[{clip.name}]")

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        feats = torch.from_numpy(
            np.ascontiguousarray(self.embedder.embed_images(frames), np.float32)
        )
        return self.head(feats)[:, 0].numpy().astype(np.float32)
