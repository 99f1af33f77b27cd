"""Tokenizers trained here, on a few sentences, so no test ever downloads one.

Two kinds, matching the two files a released T5 tokenizer folder may carry: a sentencepiece unigram
``spiece.model`` (what ``T5Tokenizer`` reads) and a ``tokenizers``-library ``tokenizer.json`` with
T5's post-processing (``</s>`` appended). Both have the T5 special ids: pad 0, eos 1, unk 2.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

__all__ = [
    "CORPUS",
    "TokenizerKind",
    "build_json_tokenizer",
    "build_spiece_tokenizer",
    "build_tokenizer",
]

#: The training sentences (repeated so the trainers see enough pieces).
CORPUS: list[str] = [
    "a panda plays a small guitar in a bamboo forest",
    "the quick brown fox jumps over the lazy dog",
    "sunlight filters through the tall trees onto a quiet river",
    "a red car drives along a coastal road at sunset",
    "a cat sits on a mat and watches the rain",
] * 8

TokenizerKind = Literal["spiece", "json"]


def build_spiece_tokenizer(folder: str | Path) -> Path:
    """Train a sentencepiece unigram model on :data:`CORPUS`; write ``<folder>/spiece.model`` only."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=buf,
        vocab_size=48,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(buf.getvalue())
    return folder


def build_json_tokenizer(folder: str | Path) -> Path:
    """Train a T5-style unigram tokenizer with the ``tokenizers`` library; write
    ``<folder>/tokenizer.json`` only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=50, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def build_tokenizer(folder: str | Path, kind: TokenizerKind = "spiece") -> Path:
    """One of the two kinds by name."""
    if kind == "spiece":
        return build_spiece_tokenizer(folder)
    if kind == "json":
        return build_json_tokenizer(folder)
    raise ValueError(f"kind={kind!r} is not one of 'spiece', 'json'")
