"""The shapes evaluator as ``cogvx eval`` dimensions: ``shapes_color``, ``shapes_shape``,
``shapes_motion``.

Each video's prompt comes from its :class:`~cogvx.evals.samples.VideoSample` (the file name
``{prompt}-{i}.mp4``, as for VBench suites); a video scores 1 when the measured attribute matches
the prompt and 0 otherwise, so the dimension's mean is the accuracy as a fraction.
"""

from __future__ import annotations

from cogvx.evals.evaluator import Evaluator
from cogvx.evals.results import VideoScore
from cogvx.evals.samples import VideoSample
from cogvx.evals.shapes.evaluator import score_video
from cogvx.evals.shapes.vocabulary import require_prompt

__all__ = ["SHAPES_ASPECTS", "ShapesAdherence"]

SHAPES_ASPECTS = ("color", "shape", "motion")


class ShapesAdherence(Evaluator):
    """Accuracy of one aspect (colour, shape or direction) of shapes videos against their prompts."""

    frames = "all"
    reference = "cogvx shapes evaluator (docs/evals.md, shapes): hue, coverage fit, centroid track"

    def __init__(self, aspect: str) -> None:
        if aspect not in SHAPES_ASPECTS:
            raise ValueError(f"aspect={aspect!r}: expected one of {', '.join(SHAPES_ASPECTS)}")
        self.aspect = aspect
        self.dimension = f"shapes_{aspect}"

    def score(self, video: VideoSample) -> VideoScore:
        if video.prompt is None:
            raise ValueError(
                f"video {video.name!r}: no prompt (name the file '{{prompt}}-{{i}}.mp4')"
            )
        result = score_video(video.require_frames(), require_prompt(video.prompt), name=video.name)
        correct = getattr(result, f"{self.aspect}_correct")
        return VideoScore(
            video=video.name,
            score=1.0 if correct else 0.0,
            details={
                "expected": getattr(result.prompt, self.aspect),
                "measured": getattr(result.measured, self.aspect),
            },
        )
