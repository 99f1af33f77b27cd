"""The evaluator interface and the loop that runs evaluators over videos.

Every dimension is an :class:`Evaluator`: ``score(video) -> VideoScore`` for one loaded video and
an aggregation rule. :func:`evaluate` decodes each video once, asks every evaluator for its
score, and turns any failure into a per-video error entry, so one bad file never stops a run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from tqdm import tqdm

from cogvx.evals.results import Aggregation, DimensionResult, Status, VideoScore, aggregate
from cogvx.evals.samples import VideoSample

__all__ = ["Evaluator", "Unavailable", "evaluate"]


class Evaluator(ABC):
    """One evaluation dimension.

    Subclasses set ``dimension`` (the VBench key, e.g. ``"subject_consistency"``), ``aggregation``,
    ``reference`` (the algorithm reproduced) and ``frames`` (which frames are looked at), and
    implement :meth:`score`. ``backend_name`` and ``approximate`` describe the model in use.
    """

    dimension: str
    aggregation: Aggregation = Aggregation.VIDEO_MEAN
    reference: str = ""
    frames: str = "all"

    def _backend(self) -> object | None:
        """The model object this dimension runs (None for weight-free dimensions)."""
        return None

    @property
    def backend_name(self) -> str:
        backend = self._backend()
        return "none" if backend is None else str(getattr(backend, "name", type(backend).__name__))

    @property
    def approximate(self) -> bool:
        """True when a stand-in replaces the reference model. Backends without an
        ``approximate`` attribute count as approximate (unknown = not the reference)."""
        backend = self._backend()
        return backend is not None and bool(getattr(backend, "approximate", True))

    def metadata(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "approximate": self.approximate,
            "frames": self.frames,
            "aggregation": self.aggregation.value,
            "reference": self.reference,
        }

    @abstractmethod
    def score(self, video: VideoSample) -> VideoScore:
        """Score one loaded video (``video.frames`` is set). Raise ValueError for bad input."""

    def aggregate(self, scores: Sequence[VideoScore]) -> float | None:
        return aggregate(scores, self.aggregation)

    def result(self, scores: list[VideoScore]) -> DimensionResult:
        value = self.aggregate(scores)
        status = Status.OK if value is not None else Status.ERROR
        reason = None if value is not None else "no video could be scored"
        return DimensionResult(self.dimension, value, status, scores, self.metadata(), reason)

    def aux(self, video: VideoSample) -> Any:
        """The VBench ``auxiliary_info`` of this dimension for ``video`` (error if missing)."""
        if self.dimension not in video.aux:
            if video.in_suite is False:
                raise LookupError(
                    f"video {video.name!r}: prompt {video.prompt!r} is missing from the prompt "
                    f"suite, and {self.dimension} needs its auxiliary_info"
                )
            if video.prompt is None:
                raise LookupError(
                    f"video {video.name!r}: no prompt found in the suite, and "
                    f"{self.dimension} needs its auxiliary_info"
                )
            raise LookupError(
                f"video {video.name!r}: prompt {video.prompt!r} has no auxiliary_info for "
                f"{self.dimension} in the suite"
            )
        return video.aux[self.dimension]


class Unavailable:
    """Placeholder for a dimension whose backend could not be built; reported, never skipped."""

    def __init__(self, dimension: str, reason: str, **metadata: Any) -> None:
        self.dimension = dimension
        self.reason = reason
        self.metadata = metadata

    def result(self) -> DimensionResult:
        return DimensionResult.unavailable(self.dimension, self.reason, **self.metadata)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def evaluate(
    videos: Iterable[VideoSample],
    evaluators: Sequence[Evaluator | Unavailable],
    *,
    progress: bool = True,
) -> dict[str, DimensionResult]:
    """Run ``evaluators`` over ``videos``; returns one :class:`DimensionResult` per dimension.

    Videos are decoded once each. A video that cannot be read, or that an evaluator rejects,
    gets an ``error`` entry with the reason on that dimension; the run goes on.
    """
    videos = list(videos)
    active = [e for e in evaluators if isinstance(e, Evaluator)]
    seen: set[str] = set()
    for e in evaluators:
        if e.dimension in seen:
            raise ValueError(f"dimension {e.dimension!r} is requested twice")
        seen.add(e.dimension)
    per_dim: dict[str, list[VideoScore]] = {e.dimension: [] for e in active}
    for sample in tqdm(videos, desc="evaluating", unit="video", disable=not progress or not active):
        try:
            loaded = sample.load()
        except Exception as exc:  # any decoder failure is this video's problem, not the run's
            for e in active:
                per_dim[e.dimension].append(
                    VideoScore.error(sample.name, f"cannot read video: {_one_line(exc)}")
                )
            continue
        for e in active:
            try:
                s = e.score(loaded)
            except Exception as exc:  # reported per video; see docstring
                s = VideoScore.error(sample.name, _one_line(exc))
            per_dim[e.dimension].append(s)
    out: dict[str, DimensionResult] = {}
    for e in evaluators:
        out[e.dimension] = (
            e.result(per_dim[e.dimension]) if isinstance(e, Evaluator) else e.result()
        )
    return out
