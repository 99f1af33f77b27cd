"""Chat language models: a local ``transformers`` causal LM or an OpenAI-compatible endpoint.

Both the caption summariser (paper App. G: GPT-4, later a fine-tuned LLaMA2) and the prompt
upsampler (§7.3: GLM-4 / GPT-4o through an API) are "messages in, text out", so they share the
:class:`ChatBackend` protocol:

    backend.complete([[{"role": "system", ...}, {"role": "user", ...}], ...],
                     max_new_tokens=..., temperature=..., top_p=...) -> list[str]

A backend returns one string per conversation and raises on transport errors; callers decide
about retries and fallbacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import torch

__all__ = ["ChatBackend", "EndpointChatModel", "LocalChatModel", "Message", "render_plain"]

# {"role": ..., "content": str}; for endpoints the content may also be a list of OpenAI
# content parts ({"type": "text", ...}, {"type": "image_url", ...})
Message = Mapping[str, Any]


@runtime_checkable
class ChatBackend(Protocol):
    name: str

    def complete(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
    ) -> list[str]: ...


def render_plain(messages: Sequence[Message]) -> str:
    """A plain-text rendering for tokenizers without a chat template (base models)."""
    names = {"system": "Instructions", "user": "User", "assistant": "Assistant"}
    parts = [f"{names.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


class LocalChatModel:
    """A causal LM and its tokenizer from a local folder, batched with left padding.

    The tokenizer's chat template is used when it has one, :func:`render_plain` otherwise.
    ``temperature`` at or below ``greedy_below`` decodes greedily (the reference upsampler's
    temperature of 0.01 is argmax in all but name, and greedy is reproducible).
    Prompts longer than the model's context are refused per conversation (ValueError), never cut.
    """

    greedy_below = 0.05

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 8,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"language model folder {str(path)!r} does not exist or has no config.json"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = torch.device(device)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval().to(self.device)
        self.batch_size = batch_size
        self.name = f"local:{path.name}"
        self.accepts_images = False  # text-only: image prompts need a multimodal endpoint
        self.max_positions = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None
        )

    def render(self, messages: Sequence[Message]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
            )
        return render_plain(messages)

    @torch.no_grad()
    def complete(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> list[str]:
        out: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            texts = [self.render(c) for c in conversations[start : start + self.batch_size]]
            # a chat template writes its own special tokens; plain text gets the tokenizer's BOS
            templated = bool(getattr(self.tokenizer, "chat_template", None))
            batch = self.tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=not templated
            )
            width = batch["input_ids"].shape[1]
            if self.max_positions is not None and width + max_new_tokens > self.max_positions:
                raise ValueError(
                    f"prompt of {width} tokens + max_new_tokens={max_new_tokens} exceeds the model's "
                    f"context of {self.max_positions} positions"
                )
            sample = temperature > self.greedy_below
            kwargs = (
                {"do_sample": True, "temperature": temperature, "top_p": top_p}
                if sample
                else {"do_sample": False}
            )
            ids = self.model.generate(
                **batch.to(self.device),
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **kwargs,
            )
            # [B, width + new] -> keep only the generated part
            out.extend(self.tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True))
        return [t.strip() for t in out]


class EndpointChatModel:
    """An OpenAI-compatible ``/chat/completions`` endpoint, called with ``httpx``.

    ``url`` is the API base (``http://host:8000/v1``) or the full ``.../chat/completions`` URL.
    The API key is read from the environment variable named by ``api_key_env`` when not given.
    Each conversation is one request; ``retries`` extra attempts with exponential back-off are
    made on transport errors, 429 and 5xx responses.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str = "gpt-4o",
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 1.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint url must start with http:// or https://, got {url!r}")
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.retries = retries
        self.backoff = backoff
        self.client = client or httpx.Client(timeout=timeout)
        self.name = f"endpoint:{model}"
        # OpenAI-style content parts ({"type": "image_url", ...}) pass through unchanged
        self.accepts_images = True

    def _post(self, payload: dict) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.post(self.url, json=payload, headers=headers)
            except httpx.HTTPError as e:
                last = e
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = RuntimeError(f"endpoint {self.url} answered HTTP {response.status_code}")
                continue
            if response.status_code != 200:
                raise RuntimeError(
                    f"endpoint {self.url} answered HTTP {response.status_code}: {response.text[:200]}"
                )
            try:
                return str(response.json()["choices"][0]["message"]["content"] or "")
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise RuntimeError(
                    f"endpoint {self.url} returned an unexpected body: {response.text[:200]}"
                ) from e
        raise RuntimeError(f"endpoint {self.url} failed after {self.retries + 1} attempts: {last}")

    def complete(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> list[str]:
        return [
            self._post(
                {
                    "model": self.model,
                    "messages": [dict(m) for m in conv],
                    "max_tokens": max_new_tokens,
                    "temperature": temperature,
                    "top_p": top_p,
                }
            ).strip()
            for conv in conversations
        ]
