import pytest

from cogvx.captioner.rules import clean_caption, count_words, limit_words, remove_opener


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The video shows a man running on a beach.", "A man running on a beach."),
        ("This clip depicts two dogs playing.", "Two dogs playing."),
        ("In the video, a woman walks home.", "A woman walks home."),
        ("The footage begins with a wide shot of a city.", "A wide shot of a city."),
        ("the video captures that the sun sets.", "The sun sets."),
        ("In this video: waves hit the rocks.", "Waves hit the rocks."),
        ("The image shows a lighthouse at dusk.", "A lighthouse at dusk."),
    ],
)
def test_opener_removed(text, expected):
    out, removed = remove_opener(text)
    assert removed
    assert out == expected


@pytest.mark.parametrize(
    "text",
    [
        "A man runs on the beach.",
        "Videographers film the sunset.",
        "The videos on the wall flicker.",
        "The scenery is calm.",
    ],
)
def test_compliant_text_untouched(text):
    assert remove_opener(text) == (text, False)
    clean = clean_caption(text)
    assert clean.text == text and not clean.truncated and not clean.removed_opener


def test_limit_words_prefers_sentence_end():
    text = " ".join(["word"] * 60) + ". " + " ".join(["more"] * 60) + "."
    out, cut = limit_words(text, 100)
    assert cut
    assert out.endswith("word.")
    assert count_words(out) == 60


def test_limit_words_hard_cut_when_no_useful_sentence_end():
    text = "Short. " + " ".join(["w"] * 200)
    out, cut = limit_words(text, 100)
    assert cut and count_words(out) == 100 and out.endswith(".")


def test_limit_words_noop_and_validation():
    assert limit_words("one two three", 3) == ("one two three", False)
    with pytest.raises(ValueError, match="max_words"):
        limit_words("x", 0)


def test_clean_caption_all_rules():
    raw = (
        '  Caption: "The video shows a red car\n driving   along a coast road. '
        + "It keeps going. " * 60
        + '"'
    )
    clean = clean_caption(raw, max_words=100)
    assert clean.removed_opener and clean.truncated
    assert clean.text.startswith("A red car driving along a coast road.")
    assert count_words(clean.text) <= 100
    assert clean.original_words > 100
    assert "\n" not in clean.text and "  " not in clean.text


def test_clean_caption_empty_and_type():
    assert clean_caption("   ").text == ""
    with pytest.raises(TypeError, match="text"):
        clean_caption(None)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORD = st.sampled_from(
    [
        "The",
        "video",
        "shows",
        "a",
        "dog",
        "runs.",
        "It",
        "stops!",
        "Caption:",
        '"',
        "in",
        "this",
        "clip,",
    ]
)


@given(st.lists(_WORD, max_size=80), st.integers(1, 40))
def test_clean_caption_properties(words, max_words):
    text = " ".join(words)
    clean = clean_caption(text, max_words=max_words)
    n = count_words(clean.text)
    assert n <= max_words
    assert clean.truncated == (count_words(clean_caption(text, max_words=10_000).text) > max_words)
    assert "  " not in clean.text and clean.text == clean.text.strip()
