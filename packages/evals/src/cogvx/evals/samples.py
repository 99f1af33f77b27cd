"""Videos to evaluate (:class:`VideoSample`) and VBench's frame-sampling rules."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_FPS",
    "VideoSample",
    "middle_frame_indices",
    "stride_frame_indices",
]

#: Frame rate assumed for frame arrays given without one (CogVideoX renders at 8 fps).
DEFAULT_FPS = 8.0


@dataclass(frozen=True)
class VideoSample:
    """One video with what the evaluators may need about it.

    Either ``path`` (decoded lazily by :meth:`load` through ``cogvx.videoio``) or ``frames``
    (uint8 ``[T,H,W,3]`` RGB) is given. ``prompt`` is the text it was generated from and ``aux``
    the VBench ``auxiliary_info`` of its prompt (keyed by dimension, e.g.
    ``{"color": {"color": "red"}}``). ``name`` identifies it in reports.
    """

    name: str
    path: Path | None = None
    frames: np.ndarray | None = field(default=None, repr=False, compare=False)
    fps: float | None = None
    prompt: str | None = None
    aux: Mapping[str, Any] = field(default_factory=dict)
    dimensions: tuple[str, ...] = ()
    #: True/False when a prompt suite was consulted and had / lacked this prompt; None otherwise.
    in_suite: bool | None = None

    @classmethod
    def from_frames(
        cls,
        name: str,
        frames: np.ndarray,
        *,
        fps: float = DEFAULT_FPS,
        prompt: str | None = None,
        aux: Mapping[str, Any] | None = None,
    ) -> VideoSample:
        return cls(name=name, frames=frames, fps=fps, prompt=prompt, aux=dict(aux or {}))

    @classmethod
    def from_path(cls, path: str | os.PathLike, **kw: Any) -> VideoSample:
        p = Path(path)
        return cls(name=kw.pop("name", p.name), path=p, **kw)

    @property
    def loaded(self) -> bool:
        return self.frames is not None

    def load(self) -> VideoSample:
        """Return a copy with ``frames`` and ``fps`` filled in (decodes ``path`` if needed).

        Raises ``cogvx.videoio.VideoReadError`` (a ValueError) for unreadable or zero-frame files
        and ValueError for malformed frame arrays.
        """
        if self.frames is not None:
            _check_frames(self.frames, self.name)
            return self if self.fps else dataclasses.replace(self, fps=DEFAULT_FPS)
        if self.path is None:
            raise ValueError(f"video {self.name!r} has neither a path nor frames")
        from cogvx.videoio import read_video  # imported here: frame-array users need no decoder

        video = read_video(self.path)
        _check_frames(video.frames, self.name)
        fps = video.fps if video.fps > 0 else (self.fps or DEFAULT_FPS)
        return dataclasses.replace(self, frames=video.frames, fps=fps)

    def require_frames(self) -> np.ndarray:
        if self.frames is None:
            raise ValueError(f"video {self.name!r} is not loaded; call .load() first")
        return self.frames


def _check_frames(frames: np.ndarray, name: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise TypeError(
            f"frames of {name!r} must be a uint8 numpy array, got "
            f"{getattr(frames, 'dtype', type(frames).__name__)}"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames of {name!r} must have shape [T,H,W,3], got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError(f"video {name!r} has no frames")


def middle_frame_indices(num: int, num_frames: int) -> list[int]:
    """VBench ``get_frame_indices(num, vlen, sample="middle")``.

    Split ``[0, num_frames)`` into ``min(num, num_frames)`` equal intervals (boundaries
    ``linspace(0, num_frames, n+1)`` truncated to int), take the middle ``(start + end - 1) // 2``
    of each, and pad with the last index up to ``num``.
    """
    if num < 1 or num_frames < 1:
        raise ValueError(f"num and num_frames must be >= 1, got num={num}, num_frames={num_frames}")
    n = min(num, num_frames)
    edges = np.linspace(0, num_frames, n + 1).astype(int)
    idx = [int((edges[i] + edges[i + 1] - 1) // 2) for i in range(n)]
    return idx + [idx[-1]] * (num - n)


def stride_frame_indices(num_frames: int, fps: float, *, target_fps: float = 8.0) -> list[int]:
    """Every ``max(1, round(fps / 8))``-th frame from 0 (VBench dynamic degree's sub-sampling)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    step = max(1, round(fps / target_fps))
    return list(range(0, num_frames, step))
