"""What the evaluators need from a model. Any object with these methods works (fakes in tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ActionClassifier",
    "AestheticScorer",
    "BackendUnavailableError",
    "Captioner",
    "DenseCaption",
    "DenseCaptioner",
    "Detection",
    "Detector",
    "ImageEmbedder",
    "ImageQualityModel",
    "TextImageModel",
    "VideoTextModel",
]


class BackendUnavailableError(RuntimeError):
    """A model backend cannot be built (missing weights, missing optional code)."""


@runtime_checkable
class ImageEmbedder(Protocol):
    """Frames uint8 ``[N,H,W,3]`` -> L2-normalised features ``[N,D]`` (float32 numpy)."""

    name: str
    approximate: bool

    def embed_images(self, frames: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class TextImageModel(ImageEmbedder, Protocol):
    """A CLIP-like model: images and texts in one L2-normalised space."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class VideoTextModel(Protocol):
    """A ViCLIP-like model: a clip uint8 ``[T,H,W,3]`` -> ``[D]``, texts -> ``[M,D]`` (normalised)."""

    name: str
    approximate: bool
    num_frames: int

    def embed_video(self, frames: np.ndarray) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class AestheticScorer(Protocol):
    """Frames uint8 ``[N,H,W,3]`` -> LAION aesthetic scores ``[N]`` on the 0–10 scale."""

    name: str
    approximate: bool

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ImageQualityModel(Protocol):
    """One image float32 ``[1,3,H,W]`` in ``[0,1]`` -> a MUSIQ-style score on a 0–100 scale."""

    name: str
    approximate: bool

    def __call__(self, image) -> float: ...


@dataclass(frozen=True)
class Detection:
    """One detected object: class name (lower case), box ``(x0, y0, x1, y1)`` in pixels, score."""

    label: str
    box: tuple[float, float, float, float]
    score: float = 1.0


@dataclass(frozen=True)
class DenseCaption:
    """A region caption with the (first) class the dense captioner assigned to the region."""

    caption: str
    label: str
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@runtime_checkable
class Detector(Protocol):
    """Frame uint8 ``[H,W,3]`` -> detections above the model's score threshold."""

    name: str
    approximate: bool

    def detect(self, frame: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class DenseCaptioner(Protocol):
    """Frame uint8 ``[H,W,3]`` -> region captions (GRiT DenseCap)."""

    name: str
    approximate: bool

    def dense_captions(self, frame: np.ndarray) -> list[DenseCaption]: ...


@runtime_checkable
class Captioner(Protocol):
    """Frames uint8 ``[N,H,W,3]`` -> one caption per frame (Tag2Text)."""

    name: str
    approximate: bool

    def caption(self, frames: np.ndarray) -> list[str]: ...


@runtime_checkable
class ActionClassifier(Protocol):
    """A clip uint8 ``[T,H,W,3]`` -> logits ``[C]``; ``labels[c]`` names class ``c`` (lower case)."""

    name: str
    approximate: bool
    num_frames: int
    labels: Sequence[str]

    def logits(self, frames: np.ndarray) -> np.ndarray: ...
