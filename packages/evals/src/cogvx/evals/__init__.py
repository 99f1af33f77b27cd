"""cogvx.evals: VBench-style evaluators, CogVideoX metrics, reconstruction/distribution metrics.

Light entry points are re-exported here; model backends live in ``cogvx.evals.backends`` and
the VBench dimensions in ``cogvx.evals.vbench`` (imported on demand: they pull in transformers);
every dimension ``cogvx eval`` runs is a row of :data:`DIMENSION_TABLE`. The synthetic shapes task
(vocabulary, prompt parser, evaluator) is :mod:`cogvx.evals.shapes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

# Submodule -> its public names, imported on first use (lazy_loader.attach, PEP 562): `import cogvx.evals` (and each CLI's --help) stays
# free of torch and the model backends until a name is used.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "dimensions": [
            "BackendOptions",
            "DEFAULT_DIMENSIONS",
            "DIMENSION_TABLE",
            "Dimension",
            "build_evaluators",
            "parse_dimensions",
        ],
        "evaluator": ["Evaluator", "Unavailable", "evaluate"],
        "flow": [
            "DISFlow",
            "FarnebackFlow",
            "FlowBackend",
            "RAFTFlow",
            "RAFTUnavailableError",
            "motion_score",
        ],
        "frechet": ["FeatureStats", "frechet_distance", "fvd"],
        "metrics": [
            "adjacent_frame_l1",
            "adjacent_frame_l1_per_pair",
            "lpips",
            "psnr",
            "psnr_per_frame",
            "ssim",
            "ssim_per_frame",
        ],
        "results": ["Aggregation", "DimensionResult", "EvalRun", "Status", "VideoScore"],
        "samples": ["VideoSample", "middle_frame_indices", "stride_frame_indices"],
    },
)


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
