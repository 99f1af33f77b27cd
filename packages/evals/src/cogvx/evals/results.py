"""Result types shared by every evaluator, and their JSON form.

A run scores each video on each requested dimension (:class:`VideoScore`), then aggregates the
per-video scores with the dimension's reference rule into a :class:`DimensionResult`. Scores are
raw VBench fractions (``0.9623``, not ``96.23``); reports multiply by 100 for display, as VBench's
leaderboard does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

__all__ = [
    "Aggregation",
    "DimensionResult",
    "EvalRun",
    "Status",
    "VideoScore",
    "aggregate",
]


class Status(StrEnum):
    """Outcome of one video on one dimension, or of a whole dimension."""

    OK = "ok"
    #: The video was valid but the reference rule leaves it out (e.g. colour with no object found).
    SKIPPED = "skipped"
    #: The video could not be scored (unreadable, too few frames, prompt missing from the suite).
    ERROR = "error"
    #: The whole dimension could not run (its model backend is missing).
    UNAVAILABLE = "unavailable"


class Aggregation(StrEnum):
    """How per-video scores become a dimension score (VBench differs per dimension)."""

    #: Mean of the per-video scores.
    VIDEO_MEAN = "video_mean"
    #: Σ numerator / Σ denominator over videos (e.g. Σ frame similarities / Σ (T−1)).
    FRAME_WEIGHTED = "frame_weighted"


@dataclass
class VideoScore:
    """One video on one dimension.

    ``score`` is the per-video value VBench reports in ``video_results``; ``numerator`` and
    ``denominator`` carry the frame sums for frame-weighted dimensions (``score = num / den``).
    """

    video: str
    score: float | None = None
    status: Status = Status.OK
    numerator: float | None = None
    denominator: float | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def error(cls, video: str, reason: str) -> VideoScore:
        return cls(video=video, status=Status.ERROR, reason=reason)

    @classmethod
    def skipped(cls, video: str, reason: str, **details: Any) -> VideoScore:
        return cls(video=video, status=Status.SKIPPED, reason=reason, details=dict(details))

    @classmethod
    def weighted(
        cls, video: str, numerator: float, denominator: float, **details: Any
    ) -> VideoScore:
        if denominator <= 0:
            raise ValueError(f"denominator must be > 0, got {denominator}")
        return cls(
            video=video,
            score=numerator / denominator,
            numerator=float(numerator),
            denominator=float(denominator),
            details=dict(details),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["status"] = self.status.value
        return _json_safe(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VideoScore:
        kw = dict(d)
        kw["status"] = Status(kw.get("status", "ok"))
        kw["score"] = _float_or_none(kw.get("score"))
        return cls(**kw)


def aggregate(scores: Sequence[VideoScore], how: Aggregation) -> float | None:
    """Dimension score from per-video scores; ``None`` when no video produced a score."""
    ok = [s for s in scores if s.status is Status.OK and s.score is not None]
    if not ok:
        return None
    if how is Aggregation.VIDEO_MEAN:
        return math.fsum(s.score for s in ok) / len(ok)  # type: ignore[misc]
    num = math.fsum(s.numerator for s in ok)  # type: ignore[misc]
    den = math.fsum(s.denominator for s in ok)  # type: ignore[misc]
    return num / den


@dataclass
class DimensionResult:
    """A dimension over a set of videos.

    ``metadata`` records how the number was produced: ``backend`` (which model or estimator),
    ``frames`` (which frames were looked at), ``aggregation``, ``approximate`` (True when a stand-in
    replaced the reference model, so the value is not comparable with published numbers) and
    ``reference`` (the algorithm matched).
    """

    dimension: str
    score: float | None
    status: Status
    per_video: list[VideoScore] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def approximate(self) -> bool:
        return bool(self.metadata.get("approximate", False))

    @classmethod
    def unavailable(cls, dimension: str, reason: str, **metadata: Any) -> DimensionResult:
        return cls(dimension, None, Status.UNAVAILABLE, [], dict(metadata), reason)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in (Status.OK, Status.SKIPPED, Status.ERROR)}
        for v in self.per_video:
            out[v.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "dimension": self.dimension,
                "score": self.score,
                "status": self.status.value,
                "reason": self.reason,
                "metadata": self.metadata,
                "counts": self.counts(),
                "per_video": [v.to_dict() for v in self.per_video],
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DimensionResult:
        return cls(
            dimension=d["dimension"],
            score=_float_or_none(d.get("score")),
            status=Status(d["status"]),
            per_video=[VideoScore.from_dict(v) for v in d.get("per_video", [])],
            metadata=dict(d.get("metadata", {})),
            reason=d.get("reason"),
        )


@dataclass
class EvalRun:
    """Everything one ``cogvx eval`` run produced (the JSON report)."""

    dimensions: dict[str, DimensionResult]
    videos: list[str]
    totals: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    format_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "format": "cogvx-eval",
                "format_version": self.format_version,
                "config": self.config,
                "videos": self.videos,
                "totals": self.totals,
                "dimensions": {k: v.to_dict() for k, v in self.dimensions.items()},
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalRun:
        if d.get("format") != "cogvx-eval":
            raise ValueError(
                f"not a cogvx eval report: 'format' is {d.get('format')!r}, expected 'cogvx-eval'"
            )
        return cls(
            dimensions={k: DimensionResult.from_dict(v) for k, v in d["dimensions"].items()},
            videos=list(d.get("videos", [])),
            totals=dict(d.get("totals", {})),
            config=dict(d.get("config", {})),
            format_version=int(d.get("format_version", 1)),
        )


def _float_or_none(x: Any) -> float | None:
    """Read back a score written by :func:`_json_safe` (``"inf"`` strings become floats)."""
    return None if x is None else float(x)


def _json_safe(x: Any) -> Any:
    """Recursively convert numpy scalars/arrays, enums and non-finite floats for strict JSON."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, Enum):
        return x.value
    if hasattr(x, "tolist"):  # numpy scalar or array, torch tensor
        return _json_safe(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x
