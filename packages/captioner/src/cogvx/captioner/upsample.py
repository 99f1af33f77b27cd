"""Prompt upsampling for inference (docs/data.md §Prompt upsampling; paper App. F).

CogVideoX is trained on long, dense captions, so short user prompts are rewritten into the same
style before generation. The reference asks a chat model (GLM-4 / GPT-4o, temperature 0.01,
top-p 0.7, 250 tokens, 3 tries, raw prompt on failure) with a system prompt and three few-shot
pairs. The system prompt and examples below are our own, written to the same rules:

- one detailed video description per request, about as long as the examples (~70-100 words);
- a request to change an earlier description rewrites the whole description instead of
  appending to it; an unrelated request starts afresh;
- English output, no preamble.

Length control: the output is cleaned by :func:`cogvx.captioner.rules.clean_caption` (no
"The video ..." opener, at most ``max_words``); a reply shorter than ``min_words`` or empty
counts as a failed try. After ``retries`` failed tries the raw prompt is returned.

Image-to-video requests (the reference sends the first frame to GPT-4o as a base64 data URL)
use :data:`I2V_SYSTEM_PROMPT`: describe the motion from the given first frame, one continuous
shot, no "The image shows" opener.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cogvx.captioner.chat import ChatBackend, EndpointChatModel, LocalChatModel, Message
from cogvx.captioner.rules import clean_caption, count_words
from cogvx.modelio.fields import check_float, check_int

__all__ = [
    "FEW_SHOT",
    "I2V_SYSTEM_PROMPT",
    "UPSAMPLE_SYSTEM_PROMPT",
    "PromptUpsampler",
    "UpsampleConfig",
    "UpsampleResult",
    "image_data_url",
    "upsample_messages",
    "upsample_messages_i2v",
    "upsample_prompt",
]

log = logging.getLogger(__name__)

ImageLike = np.ndarray | str | os.PathLike[str]

UPSAMPLE_SYSTEM_PROMPT = (
    "You work with a video generation model that can only render what is written out in full. "
    "People give you short ideas for a video; you turn each idea into one rich, concrete "
    "description that the generator will film.\n"
    "How to write it:\n"
    "- Describe the main subject (appearance, clothing, colours, expression), what it does from "
    "start to finish, the setting, the weather and light, the mood, and how the camera is placed "
    "and moves.\n"
    "- Write one paragraph of plain English prose, about as long as the examples you are shown "
    "(roughly 70 to 100 words). Do not start with 'The video' or similar, and add no preamble, "
    "title or notes: answer with the description only.\n"
    "- Keep every element the person asked for and do not contradict it.\n"
    "- If the person asks to change an earlier description, rewrite the whole description with the "
    "change worked in; do not append to it or make it longer.\n"
    "- If the new request has nothing to do with the earlier ones, ignore them and start afresh."
)

# Three worked examples (our own), each a short idea and a description of about 80-90 words.
FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "an old fisherman mending a net",
        "An old fisherman with a grey beard and a faded blue knit cap sits on an upturned crate at "
        "the end of a wooden pier, a tangled orange net across his knees. His weathered fingers "
        "pull a wooden needle through the mesh, tie a knot and tug it tight, then reach for the "
        "next tear. Gulls circle overhead and small waves slap the pilings below. Low morning sun "
        "lights the side of his face. The camera starts on his hands in close-up and slowly pulls "
        "back to show the harbour behind him.",
    ),
    (
        "a red fox running through snow",
        "A red fox with a thick rust-coloured coat and a white-tipped tail bounds across a snowy "
        "meadow at the edge of a pine forest. Each leap throws up a spray of powder that glitters "
        "in the cold afternoon light. The fox pauses, ears turned forward, listening, then dives "
        "head first into the snow and comes up shaking its muzzle. Bare birch trunks and dark "
        "pines fill the background. A low tracking shot follows the fox from the side at its own "
        "speed, the snowy ground sliding past in the foreground.",
    ),
    (
        "a neon-lit street at night, rain, cinematic",
        "A narrow city street at night glows under pink and teal neon signs, their reflections "
        "stretching across wet asphalt. Rain falls in fine diagonal streaks through the light. A "
        "woman in a long black coat walks away from the camera beneath a clear umbrella, her "
        "footsteps breaking the reflections into ripples, while steam drifts from a food stall "
        "where a cook flips skewers over a grill. A passing scooter leaves a streak of red "
        "taillight. The camera glides forward at shoulder height, shallow focus blurring the signs "
        "into soft coloured discs.",
    ),
)


# Image-to-video (paper App. F I2V rules, our own words): the image is the first frame.
I2V_SYSTEM_PROMPT = (
    "You write the caption for an image-to-video model. You are shown the first frame of the "
    "video and a short request from the user. Write one paragraph of plain English, roughly 70 to "
    "100 words, describing what is in the frame and how it moves and changes from that first moment "
    "on: what the subjects do, how other things in the scene move, and how the camera moves. "
    "Everything stays in one continuous shot: no cuts, no scene changes, no jumps to another "
    "viewpoint. Do not begin with 'The image shows', 'The video' or similar, and answer with the "
    "caption only."
)


def image_data_url(image: np.ndarray | str | os.PathLike[str]) -> str:
    """A PNG ``data:`` URL of an RGB uint8 image ``[H,W,3]`` or an image file (for OpenAI-style APIs)."""
    import cv2

    from cogvx.videoio import read_image

    arr = read_image(image) if isinstance(image, str | os.PathLike) else np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"image must be uint8 [H,W,3], got {arr.dtype} {arr.shape}")
    ok, png = cv2.imencode(".png", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def upsample_messages_i2v(prompt: str, image_url: str) -> list[Message]:
    """The I2V request: system rules, then the user text with the first frame attached."""
    return [
        {"role": "system", "content": I2V_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f'User request: "{prompt.strip()}"'},
                {"type": "image_url", "image_url": {"url": image_url}},
            ],
        },
    ]


def _user_turn(text: str) -> str:
    return f'Write the video description for this idea, or rework the earlier description as it asks: "{text.strip()}"'


def upsample_messages(prompt: str) -> list[Message]:
    """System prompt, the few-shot pairs, then the request for ``prompt``."""
    messages: list[Message] = [{"role": "system", "content": UPSAMPLE_SYSTEM_PROMPT}]
    for idea, description in FEW_SHOT:
        messages.append({"role": "user", "content": _user_turn(idea)})
        messages.append({"role": "assistant", "content": description})
    messages.append({"role": "user", "content": _user_turn(prompt)})
    return messages


@dataclass(frozen=True)
class UpsampleConfig:
    """Sampling and length settings (defaults: the reference's temperature, top-p, tokens, tries)."""

    temperature: float = 0.01
    top_p: float = 0.7
    max_new_tokens: int = 250
    retries: int = 3
    min_words: int = 20
    max_words: int = 120

    def __post_init__(self) -> None:
        owner = "UpsampleConfig"
        check_float(owner, "temperature", self.temperature, minimum=0)
        check_float(owner, "top_p", self.top_p, minimum=0, maximum=1, exclusive_minimum=True)
        check_int(owner, "retries", self.retries, minimum=1)
        check_int(owner, "min_words", self.min_words, minimum=1)
        check_int(owner, "max_words", self.max_words, minimum=1)
        if self.max_words < self.min_words:
            raise ValueError(
                f"{owner}.max_words={self.max_words}: expected >= min_words={self.min_words}"
            )
        check_int(owner, "max_new_tokens", self.max_new_tokens, minimum=1)


@dataclass(frozen=True)
class UpsampleResult:
    """The prompt to use; ``fallback`` is True when it is the raw prompt after failed tries."""

    prompt: str
    original: str
    fallback: bool
    attempts: int
    error: str | None = None
    truncated: bool = False


class PromptUpsampler:
    """Rewrites short prompts with a chat backend; never raises for model failures."""

    def __init__(self, backend: ChatBackend, config: UpsampleConfig | None = None) -> None:
        self.backend = backend
        self.config = config or UpsampleConfig()

    @classmethod
    def from_pretrained(
        cls, model_dir: str | os.PathLike[str], config: UpsampleConfig | None = None, **kwargs
    ) -> PromptUpsampler:
        return cls(LocalChatModel(model_dir, **kwargs), config)

    @classmethod
    def from_endpoint(
        cls, url: str, *, model: str = "gpt-4o", config: UpsampleConfig | None = None, **kwargs
    ) -> PromptUpsampler:
        # the upsampler does its own retries, so the transport retries only once per try
        kwargs.setdefault("retries", 0)
        return cls(EndpointChatModel(url, model=model, **kwargs), config)

    def _one(self, text: str, image_url: str | None = None) -> UpsampleResult:
        cfg = self.config
        last_error = None
        messages = (
            upsample_messages(text) if image_url is None else upsample_messages_i2v(text, image_url)
        )
        for attempt in range(1, cfg.retries + 1):
            try:
                [reply] = self.backend.complete(
                    [messages],
                    max_new_tokens=cfg.max_new_tokens,
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                )
            except Exception as e:  # a broken backend must not stop generation: fall back below
                last_error = f"{type(e).__name__}: {e}"
                log.warning(
                    "prompt upsampling try %d/%d failed: %s", attempt, cfg.retries, last_error
                )
                continue
            clean = clean_caption(reply or "", max_words=cfg.max_words)
            if count_words(clean.text) < cfg.min_words:
                last_error = f"reply has {count_words(clean.text)} words, fewer than min_words={cfg.min_words}"
                log.warning(
                    "prompt upsampling try %d/%d rejected: %s", attempt, cfg.retries, last_error
                )
                continue
            return UpsampleResult(
                clean.text, text, fallback=False, attempts=attempt, truncated=clean.truncated
            )
        return UpsampleResult(text, text, fallback=True, attempts=cfg.retries, error=last_error)

    def __call__(
        self, prompts: Sequence[str], images: Sequence[ImageLike | None] | None = None
    ) -> list[UpsampleResult]:
        """Rewrite ``prompts``; ``images[i]`` (optional) is the first frame of an I2V request."""
        if isinstance(prompts, str):
            raise TypeError(
                "prompts must be a sequence of strings; use upsample_prompt() for a single prompt"
            )
        for i, p in enumerate(prompts):
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"prompts[{i}] must be a non-empty string, got {p!r}")
        images = list(images) if images is not None else [None] * len(prompts)
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images for {len(prompts)} prompts")
        if any(im is not None for im in images) and not getattr(
            self.backend, "accepts_images", False
        ):
            raise ValueError(
                f"image prompts need a backend that accepts images (an OpenAI-compatible multimodal "
                f"endpoint); {self.backend.name} is text-only"
            )
        return [
            self._one(p, None if im is None else image_data_url(im))
            for p, im in zip(prompts, images)
        ]


def upsample_prompt(
    prompt: str,
    *,
    model: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    endpoint_model: str = "gpt-4o",
    api_key: str | None = None,
    backend: ChatBackend | None = None,
    config: UpsampleConfig | None = None,
    device: str = "cpu",
    image: ImageLike | None = None,
) -> str:
    """Rewrite one prompt; returns the raw prompt if every try fails.

    Give exactly one of ``model`` (a local causal-LM folder), ``endpoint`` (an OpenAI-compatible
    URL) or ``backend`` (any :class:`ChatBackend`). A missing model folder raises
    FileNotFoundError: that is a configuration error, not a model failure. ``image`` (an RGB uint8
    array or an image file: the first frame) switches to the image-to-video rules; it needs an
    endpoint (or backend) that accepts images.
    """
    if sum(x is not None for x in (model, endpoint, backend)) != 1:
        raise ValueError("give exactly one of model=, endpoint= or backend=")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
    if model is not None:
        upsampler = PromptUpsampler.from_pretrained(model, config, device=device)
    elif endpoint is not None:
        upsampler = PromptUpsampler.from_endpoint(
            endpoint, model=endpoint_model, config=config, api_key=api_key
        )
    else:
        assert backend is not None
        upsampler = PromptUpsampler(backend, config)
    return upsampler([prompt], None if image is None else [image])[0].prompt
