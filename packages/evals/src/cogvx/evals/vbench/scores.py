"""VBench score normalisation and the Quality / Semantic / Total scores.

Reference: ``scripts/constant.py`` and ``scripts/cal_final_score.py`` (Vchitect/VBench).
``normalized_d = (raw_d − min_d) / (max_d − min_d) · w_d``; Quality = Σ normalised quality dims /
Σ their weights; Semantic likewise; Total = (4·Quality + 1·Semantic) / 5. Raw scores are
fractions (0.9623); the leaderboard shows them ×100.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DIMENSIONS",
    "DIM_WEIGHT",
    "NORMALIZE",
    "QUALITY_DIMENSIONS",
    "QUALITY_WEIGHT",
    "SEMANTIC_DIMENSIONS",
    "SEMANTIC_WEIGHT",
    "normalize",
    "total_scores",
]

QUALITY_DIMENSIONS: tuple[str, ...] = (
    "subject_consistency",
    "background_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "dynamic_degree",
    "aesthetic_quality",
    "imaging_quality",
)
SEMANTIC_DIMENSIONS: tuple[str, ...] = (
    "object_class",
    "multiple_objects",
    "human_action",
    "color",
    "spatial_relationship",
    "scene",
    "temporal_style",
    "appearance_style",
    "overall_consistency",
)
DIMENSIONS: tuple[str, ...] = QUALITY_DIMENSIONS + SEMANTIC_DIMENSIONS

#: (Min, Max) of each dimension's raw score (``NORMALIZE_DIC``); unlisted ones are (0, 1).
NORMALIZE: dict[str, tuple[float, float]] = {
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0),
    "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0),
    "human_action": (0.0, 1.0),
    "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0),
    "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364),
    "overall_consistency": (0.0, 0.364),
}
#: ``DIM_WEIGHT``: dynamic degree counts half.
DIM_WEIGHT: dict[str, float] = {d: (0.5 if d == "dynamic_degree" else 1.0) for d in DIMENSIONS}
QUALITY_WEIGHT = 4.0
SEMANTIC_WEIGHT = 1.0


def normalize(dimension: str, raw: float) -> float:
    """Min-max normalised and weighted score of one dimension (raw as a fraction)."""
    if dimension not in NORMALIZE:
        raise ValueError(f"unknown VBench dimension {dimension!r}; valid: {', '.join(DIMENSIONS)}")
    lo, hi = NORMALIZE[dimension]
    return (raw - lo) / (hi - lo) * DIM_WEIGHT[dimension]


def total_scores(raw: Mapping[str, float | None]) -> dict[str, float | None]:
    """Quality, Semantic and Total from raw per-dimension fractions.

    A group is computed only when all of its dimensions are present (VBench needs all 16 for a
    Total); missing groups are ``None`` and listed under ``"missing"``.
    """
    unknown = sorted(set(raw) - set(DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown VBench dimensions {unknown}; valid: {', '.join(DIMENSIONS)}")

    def group(dims: tuple[str, ...]) -> float | None:
        if any(raw.get(d) is None for d in dims):
            return None
        return sum(normalize(d, float(raw[d])) for d in dims) / sum(DIM_WEIGHT[d] for d in dims)  # type: ignore[arg-type]

    quality, semantic = group(QUALITY_DIMENSIONS), group(SEMANTIC_DIMENSIONS)
    total = None
    if quality is not None and semantic is not None:
        total = (quality * QUALITY_WEIGHT + semantic * SEMANTIC_WEIGHT) / (
            QUALITY_WEIGHT + SEMANTIC_WEIGHT
        )
    out: dict[str, float | None] = {"quality": quality, "semantic": semantic, "total": total}
    out["missing"] = [d for d in DIMENSIONS if raw.get(d) is None]  # type: ignore[assignment]
    return out
