"""cogvx.evals: VBench-style evaluators, CogVideoX metrics, reconstruction/distribution metrics.

Light entry points are re-exported here; model backends live in ``cogvx.evals.backends`` and
the VBench dimensions in ``cogvx.evals.vbench`` (imported on demand: they pull in transformers);
every dimension ``cogvx eval`` runs is a row of :data:`DIMENSION_TABLE`. The synthetic shapes task
(vocabulary, prompt parser, evaluator) is :mod:`cogvx.evals.shapes`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ imports them
    from cogvx.evals.dimensions import (
        DEFAULT_DIMENSIONS,
        DIMENSION_TABLE,
        BackendOptions,
        Dimension,
        build_evaluators,
        parse_dimensions,
    )
    from cogvx.evals.evaluator import (
        Evaluator,
        Unavailable,
        evaluate,
    )
    from cogvx.evals.flow import (
        DISFlow,
        FarnebackFlow,
        FlowBackend,
        RAFTFlow,
        RAFTUnavailableError,
        motion_score,
    )
    from cogvx.evals.frechet import (
        FeatureStats,
        frechet_distance,
        fvd,
    )
    from cogvx.evals.metrics import (
        adjacent_frame_l1,
        adjacent_frame_l1_per_pair,
        lpips,
        psnr,
        psnr_per_frame,
        ssim,
        ssim_per_frame,
    )
    from cogvx.evals.results import (
        Aggregation,
        DimensionResult,
        EvalRun,
        Status,
        VideoScore,
    )
    from cogvx.evals.samples import (
        VideoSample,
        middle_frame_indices,
        stride_frame_indices,
    )

# Public name -> submodule, imported on first use: `import cogvx.evals` (and each CLI's --help) stays
# free of torch and the model backends until a name is used.
_EXPORTS: dict[str, str] = {
    "DEFAULT_DIMENSIONS": "dimensions",
    "DIMENSION_TABLE": "dimensions",
    "BackendOptions": "dimensions",
    "Dimension": "dimensions",
    "build_evaluators": "dimensions",
    "parse_dimensions": "dimensions",
    "Evaluator": "evaluator",
    "Unavailable": "evaluator",
    "evaluate": "evaluator",
    "DISFlow": "flow",
    "FarnebackFlow": "flow",
    "FlowBackend": "flow",
    "RAFTFlow": "flow",
    "RAFTUnavailableError": "flow",
    "motion_score": "flow",
    "FeatureStats": "frechet",
    "frechet_distance": "frechet",
    "fvd": "frechet",
    "adjacent_frame_l1": "metrics",
    "adjacent_frame_l1_per_pair": "metrics",
    "lpips": "metrics",
    "psnr": "metrics",
    "psnr_per_frame": "metrics",
    "ssim": "metrics",
    "ssim_per_frame": "metrics",
    "Aggregation": "results",
    "DimensionResult": "results",
    "EvalRun": "results",
    "Status": "results",
    "VideoScore": "results",
    "VideoSample": "samples",
    "middle_frame_indices": "samples",
    "stride_frame_indices": "samples",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.evals' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.evals.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DEFAULT_DIMENSIONS",
    "DIMENSION_TABLE",
    "Aggregation",
    "BackendOptions",
    "DISFlow",
    "Dimension",
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
    "build_evaluators",
    "evaluate",
    "frechet_distance",
    "fvd",
    "lpips",
    "middle_frame_indices",
    "motion_score",
    "parse_dimensions",
    "psnr",
    "psnr_per_frame",
    "ssim",
    "ssim_per_frame",
    "stride_frame_indices",
]
