"""Clip filtering (paper §3.4): scores per clip, thresholds from a frozen config, decisions.

A :class:`ClipFilter` turns a clip's analysis frames into one flat ``scores`` dict (the same
dict goes into the manifest record) and the list of filters the clip fails. The paper publishes
no optical-flow threshold ("dynamically adjusted during training") and uses aesthetic >= 4.5 at
its strictest stage (Table 6); our defaults are stated in :class:`FilterConfig` and are meant to
be tuned per data set. ``None`` switches a filter off (its score is still computed when the
needed model is there, so it can be used for later re-filtering from the manifest).

Score keys: ``motion``, ``motion_top`` (px per 1/8 s at 256 px; :mod:`cogvx.captioner.scores`),
``text`` (fraction of frame area), ``aesthetic`` (LAION scale), ``cuts`` (number of shot cuts
seen in the analysed frames), and ``neg_<label>`` (negative-label probabilities).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from cogvx.captioner.aesthetic import AestheticScorer
from cogvx.captioner.classifiers import VideoClassifier
from cogvx.captioner.scores import motion_scores, text_dominance
from cogvx.captioner.shots import detect_cuts
from cogvx.evals.flow import FlowBackend
from cogvx.modelio.fields import check_float, check_int

__all__ = ["ClipFilter", "FilterConfig", "FilterResult"]


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds and analysis settings. Load overrides with :meth:`from_dict` / :meth:`from_json`.

    - ``min_motion``: reject clips whose ``motion_top`` is below (static, "lack of motion").
    - ``max_motion``: reject clips whose mean ``motion`` is above (heavy shake / chaos).
    - ``max_text``: reject clips whose text-line coverage is above.
    - ``min_aesthetic``: reject clips whose mean frame aesthetic score is below.
    - ``max_negative``: reject clips with any negative-label probability above; per-label
      overrides in ``negative_thresholds`` (label -> threshold).
    - ``max_cuts``: reject clips with more shot cuts than this in the analysed frames.
    - ``min_seconds``: reject clips shorter than this.
    """

    min_motion: float | None = 0.5
    max_motion: float | None = None
    max_text: float | None = 0.15
    min_aesthetic: float | None = 4.5
    max_negative: float | None = 0.5
    negative_thresholds: Mapping[str, float] = field(default_factory=dict)
    max_cuts: int | None = None
    min_seconds: float | None = 1.0
    # analysis settings
    content_frames: int = 8  # frames spread over the clip for text, aesthetic, classifiers, cuts
    analysis_size: int = 256
    motion_pairs: int = 8
    motion_step_seconds: float = 0.125
    cut_threshold: float = 0.35

    def __post_init__(self) -> None:
        owner = "FilterConfig"
        if not isinstance(self.negative_thresholds, Mapping):
            raise TypeError(
                f"{owner}.negative_thresholds={self.negative_thresholds!r}: expected an object "
                "label -> threshold"
            )
        object.__setattr__(self, "negative_thresholds", dict(self.negative_thresholds))
        for label, value in self.negative_thresholds.items():
            check_float(owner, f"negative_thresholds.{label}", value, minimum=0)
        for name in (
            "min_motion",
            "max_motion",
            "max_text",
            "min_aesthetic",
            "max_negative",
            "min_seconds",
        ):
            check_float(owner, name, getattr(self, name), minimum=0, optional=True)
        check_int(owner, "max_cuts", self.max_cuts, minimum=0, optional=True)
        check_int(owner, "content_frames", self.content_frames, minimum=1)
        check_int(owner, "motion_pairs", self.motion_pairs, minimum=1)
        check_int(owner, "analysis_size", self.analysis_size, minimum=8)
        check_float(
            owner,
            "motion_step_seconds",
            self.motion_step_seconds,
            minimum=0,
            exclusive_minimum=True,
        )
        check_float(owner, "cut_threshold", self.cut_threshold, minimum=0, maximum=1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilterConfig:
        known = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping):
            raise TypeError(f"filter config: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown filter config key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> FilterConfig:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"filter config {str(p)!r} does not exist")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"filter config {str(p)!r} is not valid JSON: {e}") from e
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise type(e)(f"filter config {str(p)!r}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["negative_thresholds"] = dict(self.negative_thresholds)
        return out

    def negative_threshold(self, label: str) -> float | None:
        return self.negative_thresholds.get(label, self.max_negative)


@dataclass(frozen=True)
class FilterResult:
    """Scores of one clip and the names of the filters it fails (empty: keep)."""

    scores: dict[str, float]
    failed: tuple[str, ...]

    @property
    def keep(self) -> bool:
        return not self.failed


class ClipFilter:
    """Computes scores and applies :class:`FilterConfig`.

    ``flow``, ``aesthetic`` and ``classifier`` are optional: a missing model means that score is
    not computed and its filter cannot fail (the run report lists which scorers were active).
    """

    def __init__(
        self,
        config: FilterConfig | None = None,
        *,
        flow: FlowBackend | None = None,
        aesthetic: AestheticScorer | None = None,
        classifier: VideoClassifier | None = None,
    ) -> None:
        self.config = config or FilterConfig()
        self.flow = flow
        self.aesthetic = aesthetic
        self.classifier = classifier
        # the pipeline scores clips from worker threads; user-supplied backends need not be
        # thread-safe (and torch models gain nothing from racing on 2 cores), so model calls
        # take turns
        self._models_lock = threading.Lock()

    def active_scorers(self) -> list[str]:
        names = ["text", "cuts", "duration"]
        if self.flow is not None:
            names.append(f"motion[{getattr(self.flow, 'name', type(self.flow).__name__)}]")
        if self.aesthetic is not None:
            names.append(
                f"aesthetic[{getattr(self.aesthetic, 'name', type(self.aesthetic).__name__)}]"
            )
        if self.classifier is not None:
            names.append(f"negative{list(self.classifier.labels)}")
        return names

    def score(
        self, frames: np.ndarray, pairs: np.ndarray | None, *, seconds: float
    ) -> dict[str, float]:
        """Scores from content frames ``[T,H,W,3]`` and motion pairs ``[P,2,H,W,3]`` (or None)."""
        cfg = self.config
        scores: dict[str, float] = {"seconds": float(seconds)}
        scores["text"] = text_dominance(frames, analysis_size=cfg.analysis_size)
        scores["cuts"] = (
            float(len(detect_cuts(frames, threshold=cfg.cut_threshold))) if len(frames) > 1 else 0.0
        )
        with self._models_lock:
            if self.flow is not None and pairs is not None and len(pairs):
                scores.update(motion_scores(pairs, self.flow, analysis_size=cfg.analysis_size))
            if self.aesthetic is not None:
                scores["aesthetic"] = float(np.mean(self.aesthetic(frames)))
            if self.classifier is not None:
                for label, p in self.classifier(frames).items():
                    scores[f"neg_{label}"] = float(p)
        return scores

    def decide(self, scores: Mapping[str, float]) -> tuple[str, ...]:
        """Names of the failed filters, in a fixed order."""
        cfg = self.config
        failed = []

        def below(key: str, limit: float | None) -> bool:
            return limit is not None and key in scores and scores[key] < limit

        def above(key: str, limit: float | None) -> bool:
            return limit is not None and key in scores and scores[key] > limit

        if below("seconds", cfg.min_seconds):
            failed.append("too_short")
        if below("motion_top", cfg.min_motion):
            failed.append("low_motion")
        if above("motion", cfg.max_motion):
            failed.append("high_motion")
        if above("text", cfg.max_text):
            failed.append("text")
        if below("aesthetic", cfg.min_aesthetic):
            failed.append("aesthetic")
        if above("cuts", cfg.max_cuts):
            failed.append("cuts")
        for key in sorted(k for k in scores if k.startswith("neg_")):
            label = key.removeprefix("neg_")
            if above(key, self.config.negative_threshold(label)):
                failed.append(f"negative:{label}")
        return tuple(failed)

    def __call__(
        self, frames: np.ndarray, pairs: np.ndarray | None, *, seconds: float
    ) -> FilterResult:
        scores = self.score(frames, pairs, seconds=seconds)
        return FilterResult(scores=scores, failed=self.decide(scores))


def summarize_failures(results: Sequence[Sequence[str]]) -> dict[str, int]:
    """How many clips each filter removed (a clip failing two filters counts for both)."""
    counts: dict[str, int] = {}
    for failed in results:
        for name in failed:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
