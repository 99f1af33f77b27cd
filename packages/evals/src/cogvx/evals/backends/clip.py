"""CLIP through transformers (``CLIPModel.from_pretrained(local_dir)``) and the LAION aesthetic head.

VBench uses OpenAI CLIP ViT-B/32 (background consistency, appearance style) and ViT-L/14
(aesthetic quality); their transformers conversions (``openai/clip-vit-base-patch32``,
``openai/clip-vit-large-patch14``) hold the same weights. Preprocessing is VBench's
``clip_transform``: shorter side to 224 (bicubic), center crop 224, CLIP mean/std.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cogvx.evals.backends.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    center_crop,
    normalize,
    resize_shorter,
)
from cogvx.evals.backends.protocols import BackendUnavailableError

__all__ = ["CLIPBackend", "FrameMeanVideoText", "LaionAestheticScorer"]


def _require_dir(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(
            f"{what} folder not found: {str(p)!r} (a transformers save_pretrained folder)"
        )
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{what} folder {str(p)!r} has no config.json")
    return p


class CLIPBackend:
    """Image and text embeddings from a transformers CLIP model (L2-normalised, float32).

    ``pil_resize=True`` follows ``clip_transform_Image`` (PIL bicubic, antialiased), which
    VBench's appearance style uses; the default follows ``clip_transform`` on tensors.
    """

    approximate = False

    def __init__(
        self,
        model,
        tokenizer,
        *,
        name: str = "clip",
        image_size: int | None = None,
        pil_resize: bool = False,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.name = name
        self.image_size = int(image_size or model.config.vision_config.image_size)
        self.pil_resize = pil_resize
        self.batch_size = batch_size
        self.device = torch.device(device)

    @classmethod
    def from_local(cls, path: str | os.PathLike, *, device: str = "cpu", **kw) -> CLIPBackend:
        from transformers import AutoTokenizer, CLIPModel

        p = _require_dir(path, "CLIP")
        model = CLIPModel.from_pretrained(str(p))
        tokenizer = AutoTokenizer.from_pretrained(str(p))
        return cls(model, tokenizer, name=kw.pop("name", f"clip:{p.name}"), device=device, **kw)

    def with_pil_resize(self) -> CLIPBackend:
        return CLIPBackend(
            self.model,
            self.tokenizer,
            name=self.name,
            image_size=self.image_size,
            pil_resize=True,
            batch_size=self.batch_size,
            device=str(self.device),
        )

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        x = resize_shorter(frames, self.image_size, "bicubic", pil=self.pil_resize)
        return normalize(center_crop(x, self.image_size), CLIP_MEAN, CLIP_STD)

    @torch.no_grad()
    def embed_images(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), self.batch_size):
            x = self.preprocess(frames[i : i + self.batch_size]).to(self.device)
            pooled = self.model.vision_model(pixel_values=x).pooler_output
            feats = self.model.visual_projection(pooled).float()
            out.append(F.normalize(feats, dim=-1).cpu().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        tok = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(
            self.device
        )
        pooled = self.model.text_model(
            input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask")
        ).pooler_output
        feats = self.model.text_projection(pooled).float()
        return F.normalize(feats, dim=-1).cpu().numpy()


class LaionAestheticScorer:
    """LAION aesthetic predictor v1: ``Linear(D, 1)`` on L2-normalised CLIP ViT-L/14 features.

    The head file is ``sa_0_4_vit_l_14_linear.pth`` (a state dict with ``weight`` ``[1,D]`` and
    ``bias`` ``[1]``), from LAION's ``aesthetic-predictor`` repository.
    """

    approximate = False

    def __init__(self, clip: CLIPBackend, head: torch.nn.Linear) -> None:
        self.clip = clip
        self.head = head.eval().float()
        self.name = f"laion-aesthetic[{clip.name}]"

    @classmethod
    def from_local(
        cls, clip_path: str | os.PathLike, head_path: str | os.PathLike, *, device: str = "cpu"
    ) -> LaionAestheticScorer:
        clip = CLIPBackend.from_local(clip_path, device=device)
        hp = Path(head_path)
        if not hp.is_file():
            raise FileNotFoundError(f"aesthetic head not found: head_path={str(hp)!r}")
        state = torch.load(str(hp), map_location="cpu", weights_only=True)
        if "weight" not in state or "bias" not in state:
            raise BackendUnavailableError(
                f"{hp} is not a Linear state dict (keys: {sorted(state)[:5]})"
            )
        d = clip.model.config.projection_dim
        if tuple(state["weight"].shape) != (1, d):
            raise ValueError(
                f"aesthetic head weight has shape {tuple(state['weight'].shape)}, expected (1, {d}) for this CLIP"
            )
        head = torch.nn.Linear(d, 1)
        head.load_state_dict(state)
        return cls(clip, head)

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        feats = torch.from_numpy(self.clip.embed_images(frames))
        return self.head(feats).squeeze(-1).double().numpy()


class FrameMeanVideoText:
    """Approximation of ViCLIP: mean of per-frame CLIP features of the clip, re-normalised.

    VBench's temporal style and overall consistency use ViCLIP-L/14 (InternVid), which
    transformers does not provide; this stand-in keeps the frame sampling and cosine rule.
    """

    approximate = True
    num_frames = 8

    def __init__(self, clip: CLIPBackend) -> None:
        self.clip = clip
        self.name = f"frame-mean[{clip.name}]"

    def embed_video(self, frames: np.ndarray) -> np.ndarray:
        f = self.clip.embed_images(frames).mean(axis=0)
        return f / max(float(np.linalg.norm(f)), 1e-12)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.clip.embed_texts(texts)
