"""cogvx.evals.shapes: the synthetic "shapes" task: vocabulary, captions, prompt parser, evaluator.

The vocabulary (:mod:`cogvx.evals.shapes.vocabulary`) is what the data generator draws and captions
clips from; the evaluator measures a generated video's colour, shape and direction against the
prompt with classical vision (docs/evals.md, "shapes").
"""

from cogvx.evals.shapes.vocabulary import (
    BACKGROUND_LEVELS,
    COLOR_HUES,
    COLORS,
    HELD_OUT_PAIRS,
    HELD_OUT_PHRASINGS,
    MIN_SIZE_FRACTION,
    MIN_TRAVEL_FRACTION,
    MOTION_VECTORS,
    MOTIONS,
    SHAPES,
    TRAIN_PHRASINGS,
    HeldOutPrompt,
    ShapesPrompt,
    caption,
    held_out_prompts,
    is_held_out_pair,
    parse_prompt,
    phrasings,
    require_prompt,
    training_pairs,
    vocabulary_words,
)

__all__ = [
    "BACKGROUND_LEVELS",
    "COLORS",
    "COLOR_HUES",
    "HELD_OUT_PAIRS",
    "HELD_OUT_PHRASINGS",
    "MIN_SIZE_FRACTION",
    "MIN_TRAVEL_FRACTION",
    "MOTIONS",
    "MOTION_VECTORS",
    "SHAPES",
    "TRAIN_PHRASINGS",
    "HeldOutPrompt",
    "ShapesPrompt",
    "caption",
    "held_out_prompts",
    "is_held_out_pair",
    "parse_prompt",
    "phrasings",
    "require_prompt",
    "training_pairs",
    "vocabulary_words",
]
