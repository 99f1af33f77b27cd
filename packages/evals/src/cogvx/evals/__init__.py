"""cogvx.evals: VBench-style evaluators, CogVideoX metrics, reconstruction/distribution metrics.

Light entry points are re-exported here; model backends live in ``cogvx.evals.backends`` and
the VBench dimensions in ``cogvx.evals.vbench`` (imported on demand: they pull in transformers).
"""

from cogvx.evals.evaluator import Evaluator, Unavailable, evaluate
from cogvx.evals.flow import (
    DISFlow,
    FarnebackFlow,
    FlowBackend,
    RAFTFlow,
    RAFTUnavailableError,
    motion_score,
)
from cogvx.evals.frechet import FeatureStats, frechet_distance, fvd
from cogvx.evals.metrics import (
    adjacent_frame_l1,
    adjacent_frame_l1_per_pair,
    lpips,
    psnr,
    psnr_per_frame,
    ssim,
    ssim_per_frame,
)
from cogvx.evals.results import Aggregation, DimensionResult, EvalRun, Status, VideoScore
from cogvx.evals.samples import VideoSample, middle_frame_indices, stride_frame_indices

__all__ = [
    "Aggregation",
    "DISFlow",
    "DimensionResult",
    "EvalRun",
    "Evaluator",
    "FarnebackFlow",
    "FeatureStats",
    "FlowBackend",
    "RAFTFlow",
    "RAFTUnavailableError",
    "Status",
    "Unavailable",
    "VideoSample",
    "VideoScore",
    "adjacent_frame_l1",
    "adjacent_frame_l1_per_pair",
    "evaluate",
    "frechet_distance",
    "fvd",
    "lpips",
    "middle_frame_indices",
    "motion_score",
    "psnr",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
    "stride_frame_indices",
]
