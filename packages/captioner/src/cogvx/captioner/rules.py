"""Post-rules every final caption and upsampled prompt goes through.

The paper's summary prompt (App. G) asks for a chronological description of at most 100 English
words that does not open with "The video ...". Language models break such rules now and then,
so the rules are also enforced on the output: chat debris is removed ("Caption:", surrounding
quotes), a "The video shows ..." style opener is cut, and text past the word limit is shortened,
at a sentence end when there is one in the second half of the allowance. Every change is
reported in :class:`CleanText`, so a shortened caption is never a silent truncation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CleanText", "clean_caption", "count_words", "limit_words", "remove_opener"]

# "The video shows", "This clip depicts that", "In the video,", "The image shows" ...
_OPENER = re.compile(
    r"""^\s*
    (?:in\s+)?(?:the|this|that)\s+
    (?:video|clip|footage|video\s+clip|animation|scene|sequence|film|image|picture|photo|frame)\b
    (?:\s+(?:shows|showcases|depicts|features|captures|presents|displays|illustrates|highlights
          |portrays|is\s+about|begins\s+with|opens\s+with|starts\s+with|begins\s+by\s+showing
          |opens\s+on|is\s+of)\b)?
    (?:\s+that\b)?
    \s*[,:]?\s*""",
    re.IGNORECASE | re.VERBOSE,
)
# Labels chat models like to prepend.
_LABEL = re.compile(r"^\s*(?:final\s+)?(?:caption|description|summary|answer|output)\s*:\s*", re.I)
_QUOTES = "\"'“”‘’`"


@dataclass(frozen=True)
class CleanText:
    """A cleaned text and what was done to it."""

    text: str
    removed_opener: bool = False
    truncated: bool = False
    original_words: int = 0


def count_words(text: str) -> int:
    return len(text.split())


def remove_opener(text: str) -> tuple[str, bool]:
    """Drop a "The video shows ..." style opener and capitalise what remains."""
    match = _OPENER.match(text)
    if match is None or match.end() >= len(text):
        return text, False
    rest = text[match.end() :].lstrip()
    return rest[:1].upper() + rest[1:], True


def limit_words(text: str, max_words: int) -> tuple[str, bool]:
    """Keep at most ``max_words`` words; prefer ending at the last complete sentence.

    A sentence end is used when it keeps at least half of the allowance; otherwise the text is
    cut at the word limit and closed with a full stop.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    words = text.split()
    if len(words) <= max_words:
        return text, False
    kept = " ".join(words[:max_words])
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", kept)]
    if ends and count_words(kept[: ends[-1]]) >= max_words // 2:
        return kept[: ends[-1]], True
    return kept.rstrip(",;:-– ") + ".", True


def clean_caption(text: str, *, max_words: int = 100, strip_opener: bool = True) -> CleanText:
    """Apply the caption rules: whitespace, chat labels, quotes, opener, word limit."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    out = " ".join(text.split())  # newlines and runs of spaces -> single spaces
    out = _LABEL.sub("", out)
    if len(out) >= 2 and out[0] in _QUOTES and out[-1] in _QUOTES:
        out = out[1:-1].strip()
    original = count_words(out)
    removed = False
    if strip_opener:
        out, removed = remove_opener(out)
    out, truncated = limit_words(out, max_words) if out else (out, False)
    return CleanText(text=out, removed_opener=removed, truncated=truncated, original_words=original)
