"""GPT4o-MTScore (ChronoMagic-Bench, Yuan et al. 2024, arXiv 2406.18522): a vision-language judge
rates the "metamorphic amplitude" of a video from 8 frames on a 1–5 scale.

Reproduced from ChronoMagic-Bench ``GPT4o_MTScore/step0..3``:

- frames: ``{0, N−1} ∪ {i·⌊(N−1)/7⌋ : i = 1..6}``; frames whose short side exceeds 256 are
  resized so it is 256 (``cv2.INTER_AREA``); a video that does not give 8 distinct frames is
  dropped;
- request: one user message = the rubric text, then for each frame (by index) a text item with
  its file name ``<video>_frame<idx>.png`` and the PNG as a data URI;
- parsing: the reply's last line, with ``"Score":``, ``{`` and ``}`` removed, must be an
  integer; unparsable replies are dropped;
- aggregate: mean over videos of a generation run, then mean over runs ("parts").

The rubric text (:data:`RUBRIC`) is our own wording of the same rules (5-point scale from
"Minimal" to "Dramatic", three worked examples, fixed output format); ChronoMagic's original
text is not copied, so judge outputs are comparable in form, not guaranteed identical in value.
The judge is pluggable: :class:`OpenAICompatibleJudge` (any ``/chat/completions`` endpoint the
user gives; the reference used ``gpt-4o-2024-05-13``, ``max_tokens=2048``) or
:class:`TransformersChatJudge` (a local vision-language chat model).
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
from PIL import Image

from cogvx.evals.evaluator import Evaluator
from cogvx.evals.results import VideoScore
from cogvx.evals.samples import VideoSample

__all__ = [
    "RUBRIC",
    "ChatJudge",
    "MTScore",
    "OpenAICompatibleJudge",
    "TransformersChatJudge",
    "build_messages",
    "mean_over_parts",
    "mtscore_frame_indices",
    "parse_score",
    "prepare_frame",
]

RUBRIC = """You will see 8 frames sampled in temporal order from one generated video. Rate how much \
the content metamorphoses over time: how strongly objects, materials, scenes or states transform \
from the first frame to the last (for example growth, melting, building, blooming, decay, day \
turning into night). Camera motion alone and ordinary movement of an unchanged object are not \
metamorphosis.

Scale:
1 - Minimal: essentially no transformation; the content stays the same.
2 - Slight: a small, local change in part of the scene.
3 - Moderate: a clear change that is still partial or incomplete.
4 - Significant: a large transformation of the main subject that is mostly complete.
5 - Dramatic: a complete, striking transformation from one state to a clearly different one.

Examples:
- Frames show a closed flower bud that, by the last frame, has opened fully into a large bloom.
  Brief Reasoning Statement: the subject goes from bud to full bloom, a complete change of state.
  "Score":5
- Frames show a candle whose wax is a little lower at the end, flame unchanged.
  Brief Reasoning Statement: only a small part of the object changes, and only slightly.
  "Score":2
- Frames show a car driving along a road; the car and road look the same throughout.
  Brief Reasoning Statement: movement without any transformation of the content.
  "Score":1

Answer in exactly this format, with the score as an integer from 1 to 5 on the last line:
Brief Reasoning Statement: <one or two sentences>
"Score":<k>"""


def mtscore_frame_indices(num_frames: int) -> list[int]:
    """The 8 frame indices ChronoMagic's step0 extracts (49 frames -> 0,6,12,18,24,30,36,48)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    step = (num_frames - 1) // 7
    idx = sorted({0, num_frames - 1, *(i * step for i in range(1, 7))})
    if len(idx) != 8:
        raise ValueError(
            f"a {num_frames}-frame video does not give 8 distinct frames (got {idx}); ChronoMagic drops it"
        )
    return idx


def prepare_frame(frame: np.ndarray, short_side: int = 256) -> np.ndarray:
    """Resize so the short side is ``short_side`` if it is longer (``cv2.INTER_AREA``)."""
    h, w = frame.shape[:2]
    if min(h, w) <= short_side:
        return frame
    scale = short_side / min(h, w)
    return cv2.resize(frame, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)


def _png_data_uri(frame: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_messages(
    frames: np.ndarray, indices: Sequence[int], video_id: str, *, rubric: str = RUBRIC
) -> list[dict[str, Any]]:
    """The chat request for one video (OpenAI message format).

    ``frames`` are the 8 selected frames ``[8,H,W,3]`` uint8 in order and ``indices`` their
    positions in the video (:func:`mtscore_frame_indices`); each frame becomes a text item with its
    file name ``<video_id>_frame<idx>.png`` followed by the PNG as a data URI.
    """
    if len(frames) != 8 or len(indices) != 8:
        raise ValueError(
            f"GPT4o-MTScore needs exactly 8 frames and indices, got {len(frames)} and {len(indices)}"
        )
    content: list[dict[str, Any]] = [{"type": "text", "text": rubric}]
    for idx, f in zip(indices, frames):
        content.append({"type": "text", "text": f"{video_id}_frame{idx}.png"})
        content.append({"type": "image_url", "image_url": {"url": _png_data_uri(prepare_frame(f))}})
    return [{"role": "user", "content": content}]


def parse_score(reply: str) -> int | None:
    """ChronoMagic's parser: last line of the reply, minus ``"Score":``, ``{`` and ``}``, as int."""
    last = reply.rsplit("\n", 1)[-1]
    text = last.replace('"Score":', "").replace("{", "").replace("}", "").strip()
    try:
        return int(text)
    except ValueError:
        return None


def mean_over_parts(parts: Sequence[Sequence[float]]) -> float:
    """Mean over generation runs of each run's mean video score (ChronoMagic's step3)."""
    means = [float(np.mean(p)) for p in parts if len(p)]
    if not means:
        raise ValueError("no scored videos in any part")
    return float(np.mean(means))


@runtime_checkable
class ChatJudge(Protocol):
    """``judge(messages) -> reply text`` for OpenAI-format messages with image data URIs."""

    name: str

    def __call__(self, messages: list[dict[str, Any]]) -> str: ...


class OpenAICompatibleJudge:
    """POST ``{base_url}/chat/completions`` (stdlib ``urllib``; any OpenAI-compatible server).

    The API key comes from the ``api_key`` argument or the environment variable named by
    ``api_key_env`` (default ``OPENAI_API_KEY``); it is sent only to ``base_url``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 2048,
        temperature: float | None = None,
        timeout: float = 120.0,
        retries: int = 3,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout = timeout
        self.retries = retries
        self.name = f"openai-compatible:{model}"

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode(), headers=headers
        )
        last: Exception | None = None
        for _ in range(max(1, self.retries)):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode())
                return str(data["choices"][0]["message"]["content"])
            except (urllib.error.URLError, TimeoutError, KeyError, json.JSONDecodeError) as e:
                last = e
        raise RuntimeError(f"judge at {self.base_url} failed after {self.retries} tries: {last}")


class TransformersChatJudge:
    """A local vision-language chat model (``AutoModelForImageTextToText`` + ``AutoProcessor``
    with a chat template) as the judge. Images are passed as PIL images in the template."""

    def __init__(
        self,
        model,
        processor,
        *,
        name: str = "local-judge",
        max_new_tokens: int = 256,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.processor = processor
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.device = device

    @classmethod
    def from_local(
        cls, path: str | os.PathLike, *, device: str = "cpu", **kw
    ) -> TransformersChatJudge:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        p = Path(path)
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"judge model folder {str(p)!r} has no config.json")
        return cls(
            AutoModelForImageTextToText.from_pretrained(str(p)),
            AutoProcessor.from_pretrained(str(p)),
            name=f"local:{p.name}",
            device=device,
            **kw,
        )

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        import torch

        converted = []
        for m in messages:
            content = []
            for item in m["content"]:
                if item["type"] == "image_url":
                    raw = base64.b64decode(item["image_url"]["url"].split(",", 1)[1])
                    content.append(
                        {"type": "image", "image": Image.open(io.BytesIO(raw)).convert("RGB")}
                    )
                else:
                    content.append(item)
            converted.append({"role": m["role"], "content": content})
        inputs = self.processor.apply_chat_template(
            converted,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        ).to(self.device)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.batch_decode(
            out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )[0]


class MTScore(Evaluator):
    """GPT4o-MTScore as an evaluator: per-video judge score (1–5), mean over videos."""

    dimension = "gpt4o_mtscore"
    reference = "ChronoMagic-Bench GPT4o_MTScore (8 frames, judge-rated metamorphic amplitude 1-5)"
    frames = "8: {0, N-1} and i*floor((N-1)/7), i=1..6; short side <= 256"

    def __init__(self, judge: ChatJudge, *, rubric: str = RUBRIC) -> None:
        self.judge = judge
        self.rubric = rubric

    @property
    def backend_name(self) -> str:
        return self.judge.name

    @property
    def approximate(self) -> bool:
        return True  # our rubric wording and judge differ from the published runs

    def messages(self, video: VideoSample) -> list[dict[str, Any]]:
        frames = video.require_frames()
        idx = mtscore_frame_indices(len(frames))
        return build_messages(frames[idx], idx, Path(video.name).stem, rubric=self.rubric)

    def score(self, video: VideoSample) -> VideoScore:
        reply = self.judge(self.messages(video))
        value = parse_score(reply)
        if value is None:
            return VideoScore.skipped(
                video.name,
                "judge reply has no parsable score (dropped, as ChronoMagic)",
                reply=reply[-200:],
            )
        return VideoScore(video.name, float(value), details={"reply": reply[-500:]})
