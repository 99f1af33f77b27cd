"""The shapes vocabulary: captions round-trip through the parser, held-out sets are disjoint."""

from __future__ import annotations

import colorsys
import itertools

import pytest

from cogvx.evals.shapes import (
    COLOR_HUES,
    COLORS,
    HELD_OUT_PAIRS,
    HELD_OUT_PHRASINGS,
    MOTIONS,
    SHAPES,
    TRAIN_PHRASINGS,
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


def test_colours_are_saturated_and_sixty_degrees_apart():
    hues = []
    for name, rgb in COLORS.items():
        h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        assert s == 1.0 and v == 1.0, name
        assert h * 360 == pytest.approx(COLOR_HUES[name])
        hues.append(h * 360)
    assert sorted(hues) == [0, 60, 120, 180, 240, 300]


@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("held_out", [False, True])
def test_every_caption_parses_back(motion, held_out):
    for phrase in phrasings(motion, held_out=held_out):
        for color, shape in itertools.product(COLORS, SHAPES):
            text = caption(color, shape, motion, phrase)
            assert text == f"a {color} {shape} {phrase}"
            assert parse_prompt(text) == ShapesPrompt(color, shape, motion)
            assert parse_prompt(text.upper()) == ShapesPrompt(color, shape, motion)


def test_held_out_phrasings_are_new_combinations_of_training_words():
    train_words = {"a", *COLORS, *SHAPES}
    for phrases in TRAIN_PHRASINGS.values():
        for p in phrases:
            train_words.update(p.split())
    for motion, phrases in HELD_OUT_PHRASINGS.items():
        for p in phrases:
            assert p not in TRAIN_PHRASINGS[motion]
            assert set(p.split()) <= train_words, p
    assert set(vocabulary_words()) == train_words


def test_held_out_pairs_excluded_but_every_word_still_trained():
    pairs = training_pairs()
    assert len(pairs) == len(COLORS) * len(SHAPES) - len(HELD_OUT_PAIRS)
    assert not set(pairs) & HELD_OUT_PAIRS
    assert {c for c, _ in pairs} == set(COLORS) and {s for _, s in pairs} == set(SHAPES)
    assert all(is_held_out_pair(c, s) for c, s in HELD_OUT_PAIRS)


def test_held_out_prompt_set_never_captions_a_training_clip():
    prompts = held_out_prompts()
    assert len(prompts) == 30 and len({p.text for p in prompts}) == 30
    training_captions = {
        caption(c, s, m, i)
        for c, s in training_pairs()
        for m in MOTIONS
        for i in range(len(TRAIN_PHRASINGS[m]))
    }
    assert not {p.text for p in prompts} & training_captions
    for p in prompts:
        assert parse_prompt(p.text) == p.prompt
        assert p.held_out_pair == ((p.prompt.color, p.prompt.shape) in HELD_OUT_PAIRS)
    assert {p.prompt.motion for p in prompts} == set(MOTIONS)
    assert held_out_prompts() == prompts


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("a purple circle moves left", "colour"),
        ("a red hexagon moves left", "shape"),
        ("a red circle", "motion"),
        ("a red circle moves left and a blue square moves right", "colour"),
        ("a red circle moves left and right", "motion"),
        ("", "colour"),
    ],
)
def test_prompts_outside_the_vocabulary(text, missing):
    assert parse_prompt(text) is None
    with pytest.raises(ValueError, match=missing):
        require_prompt(text)


@pytest.mark.parametrize(
    ("args", "param"),
    [
        (("purple", "circle", "left"), "color"),
        (("red", "hexagon", "left"), "shape"),
        (("red", "circle", "sideways"), "motion"),
        (("red", "circle", "left", 99), "phrasing"),
        (("red", "circle", "left", -1), "phrasing"),
        (("red", "circle", "left", "rises"), "phrasing"),
        (("red", "circle", "left", True), "phrasing"),
    ],
)
def test_caption_refuses_words_outside_the_vocabulary(args, param):
    with pytest.raises(ValueError, match=rf"^{param}="):
        caption(*args)


def test_parse_prompt_refuses_non_strings():
    assert parse_prompt(None) is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt="):
        require_prompt(3)  # type: ignore[arg-type]
