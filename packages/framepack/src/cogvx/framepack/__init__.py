"""cogvx.framepack: bucketing and Multi-Resolution Frame Pack batch planning (paper sec. 3).

Pure planning (:func:`plan_epoch` over :class:`SampleShape`), a resumable ``torch.utils.data``
batch sampler (:class:`FramePackSampler`) and the collation into packed sequences
(:class:`PackCollator` -> :class:`PackedBatch`, :func:`unpack`).
"""

from cogvx.framepack.collate import (
    PackCollator,
    PackedBatch,
    SkippedSample,
    collate_packed,
    patchify,
    unpack,
    unpack_video,
    unpatchify,
)
from cogvx.framepack.plan import EpochPlan, Pack, PlanReport, Skip, plan_epoch
from cogvx.framepack.sampler import FramePackSampler, ManifestShapes, shapes_from_manifest
from cogvx.framepack.shapes import (
    ModelGeometry,
    ResolutionStage,
    SampleShape,
    TrainShape,
    UnfitSample,
    assign_train_shape,
)

__all__ = [
    "EpochPlan",
    "FramePackSampler",
    "ManifestShapes",
    "ModelGeometry",
    "Pack",
    "PackCollator",
    "PackedBatch",
    "PlanReport",
    "ResolutionStage",
    "SampleShape",
    "Skip",
    "SkippedSample",
    "TrainShape",
    "UnfitSample",
    "assign_train_shape",
    "collate_packed",
    "patchify",
    "plan_epoch",
    "shapes_from_manifest",
    "unpack",
    "unpack_video",
    "unpatchify",
]
