"""Synthetic videos with known answers (seeded numpy; no files, no weights)."""

from __future__ import annotations

import numpy as np
import pytest


def textured_square_video(
    speed: int, *, frames: int = 9, size: int = 256, square: int = 64, seed: int = 0
) -> np.ndarray:
    """A textured ``square``-pixel patch translating ``speed`` px/frame right on a flat background."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, size=(square // 4, square // 4, 3), dtype=np.uint8)
    tex = np.kron(tex, np.ones((4, 4, 1), np.uint8))  # 4x4 blocks: trackable texture
    video = np.full((frames, size, size, 3), 96, np.uint8)
    y0 = (size - square) // 2
    for t in range(frames):
        x0 = 16 + t * speed
        video[t, y0 : y0 + square, x0 : x0 + square] = tex
    return video


def static_video(*, frames: int = 8, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    return np.repeat(frame[None], frames, axis=0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
