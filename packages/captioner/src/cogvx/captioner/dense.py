"""Dense video captioning (paper Fig. 7, App. G).

The paper's pipeline: a short video caption, dense frame captions (one frame every 2 s), and a
language model that summarises them into the final caption (GPT-4, later a fine-tuned LLaMA2).
Here:

1. :class:`ImageCaptioner` — any ``transformers`` image-to-text model from a local folder
   (VisionEncoderDecoder, BLIP, ...: whatever ``AutoModelForImageTextToText`` loads and
   ``generate`` drives) captions each sampled frame, in batches across clips.
2. :class:`Summarizer` — a :class:`~cogvx.captioner.chat.ChatBackend` turns the frame captions,
   given as ``{second: caption}`` as in the paper's prompt, into one caption. The prompt is our
   own text written to the paper's rules: describe objects, scenery, animals, people and camera
   movement, in time order, no "The video ..." opener, at most 100 English words.
3. :func:`cogvx.captioner.rules.clean_caption` enforces the opener and length rules on the
   output whatever the model did.

Without a summariser the frame captions are joined in time order (then cleaned), which is the
cheap mode for tests and quick runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from cogvx.captioner.chat import ChatBackend, Message
from cogvx.captioner.rules import CleanText, clean_caption

__all__ = [
    "SUMMARY_SYSTEM_PROMPT",
    "CaptionResult",
    "ClipCaptioner",
    "DenseCaptioner",
    "ImageCaptioner",
    "Summarizer",
    "TransformersImageCaptioner",
    "summary_messages",
]


@runtime_checkable
class ImageCaptioner(Protocol):
    """RGB uint8 images ``[N,H,W,3]`` -> one caption per image."""

    name: str

    def __call__(self, images: np.ndarray) -> list[str]: ...


class TransformersImageCaptioner:
    """An image-to-text model and its preprocessing from a local folder.

    Loads ``AutoModelForImageTextToText`` (covers VisionEncoderDecoder and BLIP-style models).
    Preprocessing comes from ``AutoProcessor`` when the folder has a full processor, else from
    ``AutoImageProcessor`` + ``AutoTokenizer``. ``prompt`` is an optional text prefix for
    conditional captioners (BLIP: "a picture of").
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 16,
        max_new_tokens: int = 60,
        num_beams: int = 1,
        prompt: str | None = None,
    ) -> None:
        from transformers import (
            AutoImageProcessor,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"image captioner folder {str(path)!r} does not exist or has no config.json"
            )
        processor = AutoProcessor.from_pretrained(path)
        if hasattr(processor, "image_processor") and hasattr(processor, "tokenizer"):
            self.image_processor, self.tokenizer, self.processor = (
                processor.image_processor,
                processor.tokenizer,
                processor,
            )
        else:  # VisionEncoderDecoder folders have no processor class: load the two parts
            self.image_processor = AutoImageProcessor.from_pretrained(path)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.processor = None
        self.device = torch.device(device)
        self.model = (
            AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).eval().to(self.device)
        )
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.prompt = prompt
        self.name = f"image-captioner:{path.name}"

    def _inputs(self, images: list[np.ndarray]) -> dict[str, torch.Tensor]:
        if self.processor is not None:
            text = [self.prompt] * len(images) if self.prompt else None
            inputs = self.processor(images=images, text=text, return_tensors="pt")
        else:
            inputs = self.image_processor(images=images, return_tensors="pt")
            if self.prompt:
                ids = self.tokenizer(
                    [self.prompt] * len(images), return_tensors="pt", add_special_tokens=False
                )
                inputs["decoder_input_ids"] = ids["input_ids"]
        dtype = next(self.model.parameters()).dtype
        return {
            k: (v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device))
            for k, v in inputs.items()
        }

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> list[str]:
        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = list(images[start : start + self.batch_size])
            ids = self.model.generate(
                **self._inputs(batch),
                max_new_tokens=self.max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
            )
            texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
            if self.prompt:  # conditional captioners repeat the prefix
                texts = [t.strip().removeprefix(self.prompt.strip()) for t in texts]
            captions.extend(" ".join(t.split()) for t in texts)
        return captions


SUMMARY_SYSTEM_PROMPT = (
    "You write the caption of a short video for training a text-to-video model. You receive "
    "descriptions of single frames taken from the video, keyed by the second at which each frame "
    "appears, and sometimes a one-line summary of the whole clip. Merge them into one caption.\n"
    "Rules:\n"
    "1. Say what can be seen: the main subjects, objects, animals and people, what they look like "
    "and do, the place and scenery, light and colours, and how the camera moves.\n"
    "2. Tell events in the order they happen, from the first second to the last.\n"
    "3. Begin with the subject or the scene itself. Never begin with phrases such as 'The video', "
    "'This video', 'The clip' or 'In the video'.\n"
    "4. Write plain English prose in one paragraph of at most 100 words. No lists, no headings, "
    "no mention of frames, seconds, descriptions or captions.\n"
    "5. Only describe what the frame descriptions support; when they disagree, keep what most of "
    "them agree on."
)


def summary_messages(
    frame_captions: dict[float, str], short_caption: str | None = None
) -> list[Message]:
    """The conversation that asks for one caption from ``{second: frame caption}``."""
    notes = json.dumps({f"{t:g}": c for t, c in sorted(frame_captions.items())}, ensure_ascii=False)
    user = f"image_captions = {notes}\n"
    if short_caption:
        user += f"short_caption = {json.dumps(short_caption, ensure_ascii=False)}\n"
    user += "Write the caption now."
    return [{"role": "system", "content": SUMMARY_SYSTEM_PROMPT}, {"role": "user", "content": user}]


class Summarizer:
    """Frame captions -> final caption with a chat model (App. G summary step)."""

    def __init__(
        self,
        backend: ChatBackend,
        *,
        max_new_tokens: int = 200,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> None:
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.name = f"summarizer:{backend.name}"

    def __call__(
        self,
        frame_captions: Sequence[dict[float, str]],
        short_captions: Sequence[str | None] | None = None,
    ) -> list[str]:
        shorts = (
            list(short_captions) if short_captions is not None else [None] * len(frame_captions)
        )
        conversations = [summary_messages(fc, s) for fc, s in zip(frame_captions, shorts)]
        return self.backend.complete(
            conversations,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
        )


@dataclass(frozen=True)
class CaptionResult:
    """The final caption of a clip (or ``error``), with the frame captions it came from."""

    caption: str
    frame_captions: dict[float, str]
    removed_opener: bool = False
    truncated: bool = False
    raw_words: int = 0
    error: str | None = None


def join_frame_captions(frame_captions: dict[float, str]) -> str:
    """No-summariser mode: distinct frame captions in time order, as sentences."""
    seen, parts = set(), []
    for _, text in sorted(frame_captions.items()):
        text = text.strip().rstrip(".")
        if text and text.lower() not in seen:
            seen.add(text.lower())
            parts.append(text[:1].upper() + text[1:] + ".")
    return " ".join(parts)


@runtime_checkable
class ClipCaptioner(Protocol):
    """What :class:`~cogvx.captioner.pipeline.CaptionPipeline` calls: clips in, results out.

    Each clip is ``(frames [N,H,W,3] uint8, seconds [N])``: the frames sampled every
    ``CaptionConfig.every_seconds`` and their times. :class:`DenseCaptioner` (frame captions +
    summary) is one implementation; an end-to-end video-language captioner (e.g. a wrapper around
    CogVLM2-Caption, which takes up to 24 frames) is another: it returns one
    :class:`CaptionResult` per clip (``frame_captions`` may be empty, ``error`` set on failure).
    """

    name: str

    def __call__(
        self, clips: Sequence[tuple[np.ndarray, Sequence[float]]]
    ) -> list[CaptionResult]: ...


class DenseCaptioner:
    """Frames sampled at fixed times -> frame captions -> summary -> cleaned caption, batched.

    ``__call__`` takes a list of clips, each a pair ``(frames [N,H,W,3], seconds [N])``, runs the
    image captioner on all frames of all clips in its own batches, then the summariser on all
    clips at once. A clip whose model output is empty gets ``CaptionResult.error`` (nothing is
    invented); over-long text is shortened by the rules and flagged ``truncated``.
    """

    def __init__(
        self,
        image_captioner: ImageCaptioner,
        summarizer: Summarizer | None = None,
        *,
        max_words: int = 100,
    ) -> None:
        self.image_captioner = image_captioner
        self.summarizer = summarizer
        self.max_words = max_words
        parts = [getattr(image_captioner, "name", type(image_captioner).__name__)]
        if summarizer is not None:
            parts.append(summarizer.name)
        self.name = "dense[" + " + ".join(parts) + "]"

    def __call__(self, clips: Sequence[tuple[np.ndarray, Sequence[float]]]) -> list[CaptionResult]:
        if not clips:
            return []
        sizes = [len(frames) for frames, _ in clips]
        # frames of different clips may differ in size: caption clip by clip within the
        # captioner's own batching only when shapes differ, else stack all for full batches
        shapes = {frames.shape[1:] for frames, _ in clips}
        if len(shapes) == 1:
            flat = self.image_captioner(np.concatenate([frames for frames, _ in clips]))
        else:
            flat = [c for frames, _ in clips for c in self.image_captioner(frames)]
        if len(flat) != sum(sizes):
            raise RuntimeError(
                f"image captioner returned {len(flat)} captions for {sum(sizes)} images"
            )
        per_clip: list[dict[float, str]] = []
        offset = 0
        for (_, seconds), n in zip(clips, sizes):
            per_clip.append({round(float(t), 2): flat[offset + k] for k, t in enumerate(seconds)})
            offset += n
        if self.summarizer is not None:
            raw = self.summarizer(per_clip)
        else:
            raw = [join_frame_captions(fc) for fc in per_clip]
        return [self._finish(text, fc) for text, fc in zip(raw, per_clip)]

    def _finish(self, text: str, frame_captions: dict[float, str]) -> CaptionResult:
        if not any(c.strip() for c in frame_captions.values()):
            return CaptionResult(
                "", frame_captions, error="image captioner returned empty text for every frame"
            )
        clean: CleanText = clean_caption(text or "", max_words=self.max_words)
        if not clean.text.strip():
            return CaptionResult("", frame_captions, error="summarizer returned empty text")
        return CaptionResult(
            caption=clean.text,
            frame_captions=frame_captions,
            removed_opener=clean.removed_opener,
            truncated=clean.truncated,
            raw_words=clean.original_words,
        )
