"""The "shapes" world: the words, colours and motions of the synthetic text-to-video task.

One coloured shape on a plain grey background, moving in one direction or standing still
(docs/evals.md, "shapes"). This module is the single source of the vocabulary: the data generator
draws and captions clips from it, the tokenizer is built from it, and the evaluator parses prompts
and measures generated videos against it. It imports nothing heavy.

Captions read ``"a <colour> <shape> <phrase>"``, e.g. ``"a red circle moves to the right"``. Each
motion has TRAIN phrasings (used to caption training clips) and HELD-OUT phrasings (only in the
evaluation prompts). Held-out phrasings are new combinations of words that all occur in training
captions ("slides to the right" when training has "slides right" and "moves to the right"), so a
word-level tokenizer built from the training captions covers them. Some (colour, shape) pairs are
never shown in training (:func:`is_held_out_pair`); the generator must skip them.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from typing import Literal

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
    "Color",
    "HeldOutPrompt",
    "Motion",
    "Shape",
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

Shape = Literal["circle", "square", "triangle"]
Color = Literal["red", "yellow", "green", "cyan", "blue", "magenta"]
Motion = Literal["left", "right", "up", "down", "still"]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
"""Circle (diameter ``s``), axis-aligned square (side ``s``), upright isosceles triangle (base and
height ``s``, apex at the top). Their bounding-box fill ratios are pi/4, 1 and 1/2."""

# Six hues 60 degrees apart at full saturation and value: as far apart as six hues can be.
COLOR_HUES: dict[str, float] = {
    "red": 0.0,
    "yellow": 60.0,
    "green": 120.0,
    "cyan": 180.0,
    "blue": 240.0,
    "magenta": 300.0,
}
"""Hue of each colour in degrees (HSV), the value the evaluator's hue classifier is centred on."""

COLORS: dict[str, tuple[int, int, int]] = {
    name: tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue / 360.0, 1.0, 1.0))  # type: ignore[misc]
    for name, hue in COLOR_HUES.items()
}
"""RGB (uint8) of each colour: HSV (hue, 1, 1), e.g. red (255, 0, 0), cyan (0, 255, 255)."""

MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "still")

MOTION_VECTORS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
    "still": (0, 0),
}
"""Unit direction of each motion in image coordinates ``(dx, dy)``: y grows downwards."""

BACKGROUND_LEVELS: tuple[int, ...] = (48, 80, 112, 144, 176)
"""Grey levels (R = G = B) of the plain backgrounds: zero saturation, so every saturated pixel is
foreground. Kept away from black and white so every colour stays visible on every background."""

MIN_SIZE_FRACTION = 0.15
"""Smallest shape size ``s`` as a fraction of the frame width (issue: at least 15%)."""

MIN_TRAVEL_FRACTION = 1.0 / 3.0
"""Smallest travel of a moving shape over a clip, as a fraction of the frame side along the motion."""

TRAIN_PHRASINGS: dict[str, tuple[str, ...]] = {
    "right": (
        "moves to the right",
        "slides right",
        "drifts to the right",
        "travels right",
        "moves right",
    ),
    "left": (
        "moves to the left",
        "slides left",
        "drifts to the left",
        "travels left",
        "moves left",
    ),
    "up": ("moves up", "drifts upward", "rises", "slides up", "travels upward"),
    "down": ("moves down", "drifts downward", "sinks", "slides down", "travels downward"),
    "still": ("stays still", "does not move", "rests in place", "stays in place", "is still"),
}
"""Phrasings used to caption training clips, per motion."""

HELD_OUT_PHRASINGS: dict[str, tuple[str, ...]] = {
    "right": ("slides to the right", "drifts right", "travels to the right"),
    "left": ("slides to the left", "drifts left", "travels to the left"),
    "up": ("slides upward", "drifts up", "moves upward"),
    "down": ("slides downward", "drifts down", "moves downward"),
    "still": ("rests still", "is still in place"),
}
"""Phrasings that never caption a training clip; every word in them occurs in training captions."""

HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "square"), ("blue", "circle")}
)
"""(colour, shape) pairs never shown in training. Each colour and each shape still appears in
training with other partners, so a held-out pair tests composition, not a new word."""


def _check_choice(name: str, value: object, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(valid)}")
    return value


def is_held_out_pair(color: str, shape: str) -> bool:
    """True when ``(color, shape)`` is reserved for evaluation: the data generator must skip it."""
    _check_choice("color", color, tuple(COLORS))
    _check_choice("shape", shape, SHAPES)
    return (color, shape) in HELD_OUT_PAIRS


def training_pairs() -> tuple[tuple[str, str], ...]:
    """Every (colour, shape) pair the training data may use, in a fixed order (colour-major)."""
    return tuple((c, s) for c in COLORS for s in SHAPES if (c, s) not in HELD_OUT_PAIRS)


def phrasings(motion: str, *, held_out: bool = False) -> tuple[str, ...]:
    """The TRAIN (default) or HELD-OUT phrasings of ``motion``."""
    _check_choice("motion", motion, MOTIONS)
    return (HELD_OUT_PHRASINGS if held_out else TRAIN_PHRASINGS)[motion]


def caption(color: str, shape: str, motion: str, phrasing: int | str = 0) -> str:
    """``"a <color> <shape> <phrase>"``.

    ``phrasing`` is an index into the motion's TRAIN phrasings (what the data generator uses, e.g.
    ``rng.integers(len(phrasings(motion)))``) or one of the motion's phrasings spelled out (train or
    held-out). Anything else raises ``ValueError`` naming the parameter.
    """
    _check_choice("color", color, tuple(COLORS))
    _check_choice("shape", shape, SHAPES)
    _check_choice("motion", motion, MOTIONS)
    train = TRAIN_PHRASINGS[motion]
    if isinstance(phrasing, bool) or not isinstance(phrasing, int | str):
        raise ValueError(f"phrasing={phrasing!r}: expected an int index or a phrase string")
    if isinstance(phrasing, int):
        if not 0 <= phrasing < len(train):
            raise ValueError(
                f"phrasing={phrasing}: expected an index in [0, {len(train) - 1}] "
                f"into the train phrasings of {motion!r}"
            )
        phrase = train[phrasing]
    else:
        known = train + HELD_OUT_PHRASINGS[motion]
        phrase = _check_choice("phrasing", phrasing, known)
    return f"a {color} {shape} {phrase}"


def vocabulary_words() -> tuple[str, ...]:
    """Every word of every caption (train and held-out), sorted: the tokenizer's word list."""
    words = {"a", *COLORS, *SHAPES}
    for table in (TRAIN_PHRASINGS, HELD_OUT_PHRASINGS):
        for phrases in table.values():
            for phrase in phrases:
                words.update(phrase.split())
    return tuple(sorted(words))


@dataclass(frozen=True)
class ShapesPrompt:
    """What a shapes prompt asks for."""

    color: str
    shape: str
    motion: str


# Motion cues, matched on whole words of the lower-cased prompt. Multi-word cues come first so
# "does not move" is read as still before the bare verb "move" could be read as anything.
_MOTION_CUES: tuple[tuple[str, str], ...] = (
    (r"\bnot move\b", "still"),
    (r"\bin place\b", "still"),
    (r"\bstill\b", "still"),
    (r"\bstationary\b", "still"),
    (r"\bmotionless\b", "still"),
    (r"\bleft(?:ward|wards)?\b", "left"),
    (r"\bright(?:ward|wards)?\b", "right"),
    (r"\bup(?:ward|wards)?\b", "up"),
    (r"\b(?:rises|rising|rise|climbs|ascends)\b", "up"),
    (r"\bdown(?:ward|wards)?\b", "down"),
    (r"\b(?:sinks|sinking|sink|falls|descends)\b", "down"),
)


def _found(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def parse_prompt(text: str) -> ShapesPrompt | None:
    """The (colour, shape, motion) a prompt names, or ``None`` when it is not a shapes prompt.

    Works on every train and held-out phrasing and on plain variants ("a blue square moves
    rightward"). ``None`` when a colour, a shape or a motion is missing, or when the prompt names
    two different ones of a kind ("a red circle moves left and a blue square moves right" is not a
    single-shape prompt). Use :func:`require_prompt` for an error that says which part is missing.
    """
    try:
        return require_prompt(text)
    except ValueError:
        return None


def require_prompt(text: str) -> ShapesPrompt:
    """Like :func:`parse_prompt` but raises ``ValueError`` saying what is missing or ambiguous."""
    if not isinstance(text, str):
        raise ValueError(f"prompt={text!r}: expected a string")
    low = text.lower()
    colors = sorted({c for c in COLORS if _found(rf"\b{c}\b", low)})
    shapes = sorted({s for s in SHAPES if _found(rf"\b{s}s?\b", low)})
    motions = sorted({m for pattern, m in _MOTION_CUES if _found(pattern, low)})
    for kind, found, valid in (
        ("colour", colors, tuple(COLORS)),
        ("shape", shapes, SHAPES),
        ("motion", motions, MOTIONS),
    ):
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} different ({', '.join(found)})"
            raise ValueError(
                f"prompt={text!r}: names {what} {kind}; a shapes prompt names exactly one of "
                f"{', '.join(valid)}"
            )
    return ShapesPrompt(color=colors[0], shape=shapes[0], motion=motions[0])


@dataclass(frozen=True)
class HeldOutPrompt:
    """One prompt of the held-out evaluation set and why it is held out."""

    text: str
    prompt: ShapesPrompt
    held_out_pair: bool
    """The (colour, shape) pair never appears in training."""
    held_out_phrasing: bool
    """The motion phrase never captions a training clip."""


def held_out_prompts() -> tuple[HeldOutPrompt, ...]:
    """The fixed held-out prompt set (30 prompts), none of which captions a training clip.

    * 15: each held-out (colour, shape) pair with each motion, in a held-out phrasing;
    * 15: every trained pair once, in a held-out phrasing (each shape 5 times, each motion 3
      times), assigned by a fixed rotation so the set never changes.
    Evaluate each with several seeds.
    """
    out: list[HeldOutPrompt] = []
    for i, (color, shape) in enumerate(sorted(HELD_OUT_PAIRS)):
        for j, motion in enumerate(MOTIONS):
            options = HELD_OUT_PHRASINGS[motion]
            phrase = options[(i + j) % len(options)]
            out.append(_held_out(color, shape, motion, phrase, pair=True))
    trained = training_pairs()
    for k in range(15):
        color, shape = trained[(k * 7) % len(trained)]
        motion = MOTIONS[k % len(MOTIONS)]
        options = HELD_OUT_PHRASINGS[motion]
        phrase = options[(k // len(MOTIONS)) % len(options)]
        out.append(_held_out(color, shape, motion, phrase, pair=False))
    return tuple(out)


def _held_out(color: str, shape: str, motion: str, phrase: str, *, pair: bool) -> HeldOutPrompt:
    return HeldOutPrompt(
        text=caption(color, shape, motion, phrase),
        prompt=ShapesPrompt(color, shape, motion),
        held_out_pair=pair,
        held_out_phrasing=True,
    )
