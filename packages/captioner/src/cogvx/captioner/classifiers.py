"""Negative-label video classifiers (paper §3.4, App. K, Table 14).

The paper labels 20,000 videos and trains six Video-LLaMA based filters, one per negative label.
Here any object with ``labels`` and ``__call__(frames) -> {label: probability}`` is a
:class:`VideoClassifier`, so a large video-language filter can be plugged in. The light
classifier shipped here is a head (logistic regression or a small MLP, multi-label sigmoid) on
clip features: per-frame features from a :class:`FrameFeatureExtractor` pooled by mean and
standard deviation over time (the standard deviation carries the temporal signal: static clips
and slideshows have little). Train it with :func:`train_head` from labelled examples.

Feature extractors:

- :class:`HandcraftedFeatures` — colour statistics, edge density, text-line coverage and
  frame-difference energy; no model, useful as a baseline and in tests.
- :class:`TransformersImageFeatures` — the pooled output of any ``transformers`` vision encoder
  loaded from a local folder (e.g. a CLIP vision tower).
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torch import nn

from cogvx.captioner.scores import resize_short_side, text_dominance

__all__ = [
    "ClassifierHead",
    "FrameFeatureExtractor",
    "HandcraftedFeatures",
    "HeadClassifier",
    "NegativeLabel",
    "TransformersImageFeatures",
    "VideoClassifier",
    "clip_features",
    "train_head",
]


class NegativeLabel(StrEnum):
    """The paper's six negative labels (App. K). A clip scoring high on any is filtered out."""

    EDITING = "editing"  # obvious re-editing or special effects
    STATIC = "static"  # lack of motion connectivity: spliced clips, still images
    LOW_QUALITY = "low_quality"  # unclear visuals, heavy shake
    LECTURE = "lecture"  # a talking person with little motion, live streams
    TEXT = "text_dominated"  # lots of visible text
    SCREENSHOT = "noisy_screenshot"  # phone or computer screen captures


@runtime_checkable
class VideoClassifier(Protocol):
    """Probabilities of negative labels for a clip of RGB uint8 frames ``[T,H,W,3]``."""

    labels: tuple[str, ...]

    def __call__(self, frames: np.ndarray) -> dict[str, float]: ...


@runtime_checkable
class FrameFeatureExtractor(Protocol):
    """Per-frame features: RGB uint8 ``[T,H,W,3]`` -> float32 ``[T,D]``."""

    dim: int

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


class HandcraftedFeatures:
    """Model-free frame features (D = 12), computed at ``analysis_size`` px on the short side.

    Per frame: RGB mean and std (6), grey-level std, Canny edge density, text-line coverage
    (:func:`cogvx.captioner.scores.text_dominance`), saturation mean, Laplacian variance
    (sharpness, log-scaled) and the mean absolute difference to the previous frame (0 for the
    first frame). Values are scaled to roughly [0, 1].
    """

    dim = 12

    def __init__(self, analysis_size: int = 128) -> None:
        self.analysis_size = analysis_size

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        small = resize_short_side(frames, self.analysis_size)
        feats = np.zeros((len(small), self.dim), np.float32)
        prev = None
        for i, frame in enumerate(small):
            f = frame.astype(np.float32) / 255.0
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
            feats[i, 0:3] = f.reshape(-1, 3).mean(0)
            feats[i, 3:6] = f.reshape(-1, 3).std(0)
            feats[i, 6] = gray.std() / 255.0
            feats[i, 7] = np.count_nonzero(cv2.Canny(gray, 100, 200)) / gray.size
            feats[i, 8] = text_dominance(frame[None], analysis_size=self.analysis_size)
            feats[i, 9] = hsv[..., 1].mean() / 255.0
            feats[i, 10] = np.log1p(cv2.Laplacian(gray, cv2.CV_32F).var()) / 10.0
            feats[i, 11] = 0.0 if prev is None else float(np.abs(f - prev).mean())
            prev = f
        return feats


class TransformersImageFeatures:
    """Pooled features of a ``transformers`` vision model from a local folder.

    Uses ``image_embeds`` when the model has a projection (CLIP ``...WithProjection``), else
    ``pooler_output``, else the mean of ``last_hidden_state`` over tokens.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        from transformers import AutoImageProcessor, AutoModel

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"feature model folder {str(path)!r} has no config.json")
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval().to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size
        cfg = self.model.config
        self.dim = int(
            getattr(cfg, "projection_dim", None) or getattr(cfg, "vision_config", cfg).hidden_size
        )

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(frames), self.batch_size):
            batch = list(frames[start : start + self.batch_size])
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"].to(
                self.device
            )
            model = self.model
            if hasattr(model, "get_image_features"):
                feats = model.get_image_features(pixel_values=pixels)
                if not isinstance(feats, torch.Tensor):  # some versions return an output object
                    feats = feats.pooler_output
            else:
                out = model(pixel_values=pixels)
                feats = getattr(out, "image_embeds", None)
                if feats is None:
                    feats = getattr(out, "pooler_output", None)
                if feats is None:
                    feats = out.last_hidden_state.mean(1)  # [B,N,D] -> [B,D]
            outs.append(feats.float().cpu().numpy())
        return np.concatenate(outs).astype(np.float32)


def clip_features(frame_features: np.ndarray) -> np.ndarray:
    """Pool per-frame features ``[T,D]`` into a clip feature ``[2D]``: mean and std over time."""
    if frame_features.ndim != 2 or len(frame_features) == 0:
        raise ValueError(f"frame_features must be [T,D] with T >= 1, got {frame_features.shape}")
    return np.concatenate([frame_features.mean(0), frame_features.std(0)]).astype(np.float32)


@dataclass(frozen=True)
class HeadConfig:
    """What is saved beside the weights (``head.json``)."""

    labels: tuple[str, ...]
    input_dim: int
    hidden_dim: int = 0  # 0: logistic regression; > 0: one hidden layer MLP


class ClassifierHead(nn.Module):
    """Multi-label head on standardised clip features; ``forward`` returns logits ``[B,L]``.

    The feature mean and std seen in training are buffers, so a saved head standardises inputs
    the same way after loading.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        n_labels = len(config.labels)
        if n_labels == 0:
            raise ValueError("labels must not be empty")
        if config.hidden_dim > 0:
            self.net = nn.Sequential(
                nn.Linear(config.input_dim, config.hidden_dim),
                nn.GELU(),
                nn.Linear(config.hidden_dim, n_labels),
            )
        else:
            self.net = nn.Sequential(nn.Linear(config.input_dim, n_labels))
        self.register_buffer("feat_mean", torch.zeros(config.input_dim))
        self.register_buffer("feat_std", torch.ones(config.input_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.feat_mean) / self.feat_std)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        from cogvx.videoio import atomic_output

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_output(out / "head.pt") as tmp:
            torch.save(self.state_dict(), tmp)
        with atomic_output(out / "head.json") as tmp:
            tmp.write_text(
                json.dumps(
                    {
                        "labels": list(self.config.labels),
                        "input_dim": self.config.input_dim,
                        "hidden_dim": self.config.hidden_dim,
                    },
                    indent=2,
                )
            )
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> ClassifierHead:
        path = Path(folder)
        for name in ("head.json", "head.pt"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"classifier head folder {str(path)!r} has no {name}")
        config_file = path / "head.json"
        try:
            raw = json.loads(config_file.read_text(encoding="utf-8"))
            config = HeadConfig(
                labels=tuple(raw["labels"]),
                input_dim=int(raw["input_dim"]),
                hidden_dim=int(raw.get("hidden_dim", 0)),
            )
            head = cls(config)
        except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise ValueError(
                f"classifier head config {str(config_file)!r} is malformed ({what})"
            ) from e
        weights = path / "head.pt"
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            head.load_state_dict(state)
        except (
            RuntimeError,
            OSError,
            EOFError,
            ValueError,
            TypeError,
            AttributeError,
            pickle.UnpicklingError,
        ) as e:
            message = " ".join(str(e).split())[:300]
            raise ValueError(
                f"classifier head weights {str(weights)!r} cannot be loaded ({type(e).__name__}: {message})"
            ) from e
        return head.eval()


def train_head(
    features: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    *,
    hidden_dim: int = 0,
    epochs: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> ClassifierHead:
    """Fit a head on clip features ``[N,D]`` and 0/1 targets ``[N,L]`` (NaN = not labelled).

    Full-batch AdamW on the masked binary cross-entropy: labelled sets are small (the paper
    labelled 20,000 clips), so there is no need for mini-batches.
    """
    x = torch.as_tensor(np.asarray(features, np.float32))
    y = torch.as_tensor(np.asarray(targets, np.float32))
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(
            f"features must be [N,D] and targets [N,L] with the same N, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if y.shape[1] != len(labels):
        raise ValueError(f"targets has {y.shape[1]} columns but {len(labels)} labels were given")
    mask = ~torch.isnan(y)
    if not bool(((y == 0) | (y == 1) | ~mask).all()):
        raise ValueError("targets must be 0, 1 or NaN")
    torch.manual_seed(seed)
    head = ClassifierHead(
        HeadConfig(labels=tuple(labels), input_dim=x.shape[1], hidden_dim=hidden_dim)
    )
    head.feat_mean.copy_(x.mean(0))
    head.feat_std.copy_(x.std(0, unbiased=False).clamp_min(1e-6))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    y0 = torch.nan_to_num(y)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(head(x), y0, reduction="none")
        loss = (loss * mask).sum() / mask.sum().clamp_min(1)
        loss.backward()
        opt.step()
    return head.eval()


class HeadClassifier:
    """A :class:`VideoClassifier` from a feature extractor and a trained head."""

    def __init__(self, extractor: FrameFeatureExtractor, head: ClassifierHead) -> None:
        self.extractor = extractor
        self.head = head.eval()
        self.labels = tuple(head.config.labels)

    def features(self, frames: np.ndarray) -> np.ndarray:
        return clip_features(self.extractor(frames))

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> dict[str, float]:
        probs = torch.sigmoid(self.head(torch.from_numpy(self.features(frames))[None]))[0]
        return {label: float(p) for label, p in zip(self.labels, probs)}
