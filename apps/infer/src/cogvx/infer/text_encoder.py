"""Tokenizer + T5 encoder (:mod:`cogvx.infer.t5`), used exactly as the CogVideoX pipelines use them.

docs/pipelines.md §Text encoder: prompts are tokenised with ``padding="max_length"``, ``truncation=True`` and special tokens
(T5 appends ``</s>``) to ``max_sequence_length`` (226 for the released models) and the encoder runs
**without an attention mask**, so padding tokens are encoded too: the transformer was trained on
those padded embeddings. The output is ``last_hidden_state [B, L, D_text]``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cogvx.infer.t5 import T5Encoder

if TYPE_CHECKING:  # transformers is imported when a tokenizer is loaded (start-up time)
    from transformers import PreTrainedTokenizerBase

__all__ = ["T5TextEncoder", "load_tokenizer"]

logger = logging.getLogger(__name__)


def load_tokenizer(folder: str | os.PathLike[str]) -> PreTrainedTokenizerBase:
    """Load a tokenizer folder: ``tokenizer_config.json`` (any class), else a T5 tokenizer from
    ``tokenizer.json`` (tokenizers library) or ``spiece.model`` (sentencepiece)."""
    from transformers import AutoTokenizer, T5Tokenizer

    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer folder not found: {path}")
    if (path / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(path)
    if (path / "tokenizer.json").is_file() or (path / "spiece.model").is_file():
        return T5Tokenizer.from_pretrained(path)
    raise FileNotFoundError(
        f"no tokenizer in {path}: expected tokenizer_config.json, tokenizer.json or spiece.model"
    )


class T5TextEncoder:
    """Tokenizer + :class:`~cogvx.infer.t5.T5Encoder` (weight-compatible with transformers'
    ``T5EncoderModel``): ``encode(prompts) -> [B, max_sequence_length, D_text]``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, model: T5Encoder) -> None:
        self.tokenizer = tokenizer
        self.model = model.eval()

    @classmethod
    def from_pretrained(
        cls,
        tokenizer_folder: str | os.PathLike[str],
        encoder_folder: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
    ) -> T5TextEncoder:
        """Load the tokenizer and the encoder weights (``dtype`` None keeps the stored dtype)."""
        if not Path(encoder_folder).is_dir():
            raise FileNotFoundError(f"text encoder folder not found: {encoder_folder}")
        tokenizer = load_tokenizer(tokenizer_folder)
        return cls(tokenizer, T5Encoder.from_pretrained(encoder_folder, dtype=dtype, device=device))

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.d_model)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        if device is not None:
            self.model.to(device=device)
        if dtype is not None:
            self.model.to_dtype(dtype)
        return self

    def tokenize(self, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
        """Token ids ``[B, max_sequence_length]``; logs (like the reference) what truncation removed."""
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids
        full = self.tokenizer(prompts, padding="longest", return_tensors="pt").input_ids
        if full.shape[-1] > ids.shape[-1]:
            removed = self.tokenizer.batch_decode(full[:, max_sequence_length - 1 : -1])
            logger.warning(
                "prompt truncated to max_sequence_length=%d tokens; removed: %s",
                max_sequence_length,
                [r for r in removed if r],
            )
        return ids

    @torch.no_grad()
    def encode(
        self,
        prompts: str | list[str],
        *,
        max_sequence_length: int = 226,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """``last_hidden_state`` of the padded prompts, no attention mask (docs/pipelines.md §Text encoder)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise TypeError(f"prompts must be a str or a list of str, got {type(prompts).__name__}")
        if max_sequence_length < 1:
            raise ValueError(f"max_sequence_length={max_sequence_length} must be >= 1")
        ids = self.tokenize(prompts, max_sequence_length)
        hidden = self.model(ids.to(self.model.device))
        return hidden.to(device=device or hidden.device, dtype=dtype or self.model.dtype)
