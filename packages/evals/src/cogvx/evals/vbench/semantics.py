"""VBench's detector/captioner/classifier dimensions: object class, multiple objects, colour,
spatial relationship, scene, human action.

The text-matching and scoring rules are reproduced exactly (with their quirks, see each class);
the models enter through backends (``cogvx.evals.backends.protocols``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cogvx.evals.backends.protocols import (
    ActionClassifier,
    Captioner,
    DenseCaption,
    DenseCaptioner,
    Detection,
    Detector,
)
from cogvx.evals.evaluator import Evaluator
from cogvx.evals.results import Aggregation, VideoScore
from cogvx.evals.samples import VideoSample, middle_frame_indices

__all__ = [
    "COLORS",
    "Color",
    "HumanAction",
    "MultipleObjects",
    "ObjectClass",
    "Scene",
    "SpatialRelationship",
    "action_label_from_name",
    "color_frame_flags",
    "color_object_key",
    "position_score",
    "scene_frame_match",
    "spatial_frame_score",
]

#: The colour words VBench's colour check looks for (``color.py``).
COLORS = (
    "white",
    "red",
    "pink",
    "blue",
    "silver",
    "purple",
    "orange",
    "green",
    "gray",
    "yellow",
    "black",
    "grey",
)


class _FrameEvaluator(Evaluator):
    """Evaluators that look at ``num_frames`` frames chosen by VBench's "middle" rule."""

    frames = "16 (VBench 'middle' sampling)"

    def __init__(self, backend, *, num_frames: int = 16) -> None:
        self.backend = backend
        self.num_frames = num_frames
        self.frames = f"{num_frames} (VBench 'middle' sampling)"

    def _backend(self) -> object:
        return self.backend

    def sampled(self, video: VideoSample) -> np.ndarray:
        frames = video.require_frames()
        return frames[middle_frame_indices(self.num_frames, len(frames))]


class ObjectClass(_FrameEvaluator):
    """Frame success iff the prompt's object is among the detected class names; Σ success / Σ frames."""

    dimension = "object_class"
    reference = "VBench object_class.py (GRiT ObjectDet, 16 frames)"
    aggregation = Aggregation.FRAME_WEIGHTED

    def __init__(self, detector: Detector, *, num_frames: int = 16) -> None:
        super().__init__(detector, num_frames=num_frames)

    def score(self, video: VideoSample) -> VideoScore:
        target = self.aux(video)["object"]
        hits = [target in {d.label for d in self.backend.detect(f)} for f in self.sampled(video)]
        return VideoScore.weighted(video.name, sum(hits), len(hits), frame_hits=hits)


class MultipleObjects(_FrameEvaluator):
    """Frame success iff both objects of ``"A and B"`` are detected; Σ success / Σ frames."""

    dimension = "multiple_objects"
    reference = "VBench multiple_objects.py (GRiT ObjectDet, 16 frames)"
    aggregation = Aggregation.FRAME_WEIGHTED

    def __init__(self, detector: Detector, *, num_frames: int = 16) -> None:
        super().__init__(detector, num_frames=num_frames)

    def score(self, video: VideoSample) -> VideoScore:
        keys = self.aux(video)["object"].split(" and ")
        if len(keys) != 2:
            raise ValueError(
                f"multiple_objects needs 'A and B' in auxiliary_info.object, got {self.aux(video)['object']!r}"
            )
        a, b = keys
        hits = []
        for f in self.sampled(video):
            labels = {d.label for d in self.backend.detect(f)}
            hits.append(a in labels and b in labels)
        return VideoScore.weighted(video.name, sum(hits), len(hits), frame_hits=hits)


def color_object_key(prompt: str, color: str) -> str:
    """VBench's object name for colour: ``prompt.replace('a ','').replace('an ','')
    .replace(color,'').strip()`` (plain substring replaces, quirks included)."""
    return prompt.replace("a ", "").replace("an ", "").replace(color, "").strip()


def color_frame_flags(
    captions: list[DenseCaption], object_key: str, color: str
) -> tuple[bool, bool]:
    """(object_flag, color_flag) of one frame (VBench ``color.check_generate``).

    Among region captions whose label equals the object: object_flag if any caption contains any
    of :data:`COLORS`; color_flag if any contains the target colour (substring tests).
    """
    object_flag = color_flag = False
    for c in captions:
        if c.label == object_key:
            if any(q in c.caption for q in COLORS):
                object_flag = True
            if color in c.caption:
                color_flag = True
    return object_flag, color_flag


class Color(_FrameEvaluator):
    """Per video: #frames with the target colour / #frames with the object in any colour; videos
    where the object never appears with a colour are skipped; mean over the kept videos."""

    dimension = "color"
    reference = "VBench color.py (GRiT DenseCap)"

    def __init__(self, captioner: DenseCaptioner, *, num_frames: int = 16) -> None:
        super().__init__(captioner, num_frames=num_frames)

    def score(self, video: VideoSample) -> VideoScore:
        color = self.aux(video)["color"]
        if video.prompt is None:
            raise LookupError(f"video {video.name!r}: color needs the prompt")
        key = color_object_key(video.prompt, color)
        n_obj = n_col = 0
        for f in self.sampled(video):
            o, c = color_frame_flags(self.backend.dense_captions(f), key, color)
            n_obj += o
            n_col += c
        if n_obj == 0:
            return VideoScore.skipped(
                video.name, f"object {key!r} never detected with a colour", object=key
            )
        return VideoScore(
            video.name,
            n_col / n_obj,
            details={"object": key, "object_frames": n_obj, "color_frames": n_col},
        )


def position_score(relation: str, box1, box2, iou_threshold: float = 0.1) -> float:
    """VBench ``get_position_score``: 1 if the centres are offset mainly along the relation's axis
    and IoU < 0.1, ``0.1/IoU`` if along it with more overlap, else 0. The direction (left vs
    right, top vs bottom) is not checked, and the relation is matched by substring, as in VBench."""
    cx1, cy1 = (box1[0] + box1[2]) / 2, (box1[1] + box1[3]) / 2
    cx2, cy2 = (box2[0] + box2[2]) / 2, (box2[1] + box2[3]) / 2
    dx, dy = cx2 - cx1, cy2 - cy1
    ix = max(0.0, min(box1[2], box2[2]) - max(box1[0], box2[0]))
    iy = max(0.0, min(box1[3], box2[3]) - max(box1[1], box2[1]))
    inter = ix * iy
    union = (
        (box1[2] - box1[0]) * (box1[3] - box1[1])
        + (box2[2] - box2[0]) * (box2[3] - box2[1])
        - inter
    )
    iou = inter / union
    if relation in "on the right of" or relation in "on the left of":
        along = abs(dx) > abs(dy)
    elif relation in "on the bottom of" or relation in "on the top of":
        along = abs(dy) > abs(dx)
    else:
        return 0.0
    if not along:
        return 0.0
    return 1.0 if iou < iou_threshold else iou_threshold / iou


def spatial_frame_score(
    detections: list[Detection], object_a: str, object_b: str, relation: str
) -> float:
    """Max position score over all pairs of boxes labelled ``object_a`` or ``object_b`` (two boxes
    of the same object count, as in VBench); 0 when there is no pair."""
    boxes = [d.box for d in detections if d.label in (object_a, object_b)]
    best = 0.0
    for i in range(len(boxes) - 1):
        for j in range(i + 1, len(boxes)):
            best = max(best, position_score(relation, boxes[i], boxes[j]))
    return best


class SpatialRelationship(_FrameEvaluator):
    """Mean over all sampled frames (frame-weighted) of :func:`spatial_frame_score`."""

    dimension = "spatial_relationship"
    reference = "VBench spatial_relationship.py (GRiT ObjectDet boxes, 16 frames)"
    aggregation = Aggregation.FRAME_WEIGHTED

    def __init__(self, detector: Detector, *, num_frames: int = 16) -> None:
        super().__init__(detector, num_frames=num_frames)

    def score(self, video: VideoSample) -> VideoScore:
        info = self.aux(video)["spatial_relationship"]
        a, b, rel = info["object_a"], info["object_b"], info["relationship"]
        scores = [
            spatial_frame_score(self.backend.detect(f), a, b, rel) for f in self.sampled(video)
        ]
        return VideoScore.weighted(video.name, math.fsum(scores), len(scores), frame_scores=scores)


def scene_frame_match(caption: str, scene: str) -> bool:
    """VBench scene check: every space-separated word of the scene is a substring of the caption."""
    return all(word in caption for word in scene.split(" "))


class Scene(_FrameEvaluator):
    """Frame success iff :func:`scene_frame_match`; Σ success / Σ frames."""

    dimension = "scene"
    reference = "VBench scene.py (Tag2Text captions)"
    aggregation = Aggregation.FRAME_WEIGHTED

    def __init__(self, captioner: Captioner, *, num_frames: int = 16) -> None:
        super().__init__(captioner, num_frames=num_frames)

    def score(self, video: VideoSample) -> VideoScore:
        scene = self.aux(video)["scene"]["scene"]
        captions = self.backend.caption(self.sampled(video))
        hits = [scene_frame_match(c, scene) for c in captions]
        return VideoScore.weighted(video.name, sum(hits), len(hits), captions=captions)


def action_label_from_name(name: str) -> str:
    """VBench's label parsing: ``name.lower().split('-')[0].split("person is ")[-1].split('_')[0]``
    on the video file name (``"A person is riding a bike-0.mp4"`` -> ``"riding a bike"``)."""
    return name.lower().split("-")[0].split("person is ")[-1].split("_")[0]


class HumanAction(_FrameEvaluator):
    """Correct iff the label parsed from the file name is among the top-5 classes whose sigmoid
    probability (rounded to 4 decimals) is ≥ 0.85; accuracy over videos."""

    dimension = "human_action"
    reference = "VBench human_action.py (UMT-L/16 Kinetics-400, 16 frames, sigmoid top-5 >= 0.85)"

    def __init__(self, classifier: ActionClassifier, *, threshold: float = 0.85) -> None:
        super().__init__(classifier, num_frames=int(classifier.num_frames))
        self.threshold = threshold

    def score(self, video: VideoSample) -> VideoScore:
        if video.path is not None:
            label = action_label_from_name(Path(video.path).name)
        elif video.prompt is not None:
            label = action_label_from_name(video.prompt)
        else:
            raise LookupError(f"video {video.name!r}: human_action needs a file name or prompt")
        logits = np.asarray(self.backend.logits(self.sampled(video)), np.float64)
        probs = 1.0 / (1.0 + np.exp(-logits))
        top = np.argsort(-probs, kind="stable")[:5]
        kept = [self.backend.labels[i] for i in top if round(float(probs[i]), 4) >= self.threshold]
        return VideoScore(
            video.name, float(label in kept), details={"label": label, "predicted": kept}
        )
