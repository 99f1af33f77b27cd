"""Checks of what enters a pipeline: call arguments, input images and videos, model folders, memory.

Everything here runs before any work (no text encoding, no weight loading), so a bad request costs
nothing and leaves nothing behind (docs/reliability.md §Python APIs, §Model folders, §Memory). Each
check raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) with one message in the
project's form ``<parameter>=<value>: <what is valid>``. ``None`` means "the default" wherever a
parameter has one; ``0`` is never read as "the default", and ``bool`` is never accepted as a number.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogvx.modelio.fields import require_float as check_float
from cogvx.modelio.fields import require_int as check_int

if TYPE_CHECKING:  # torch is imported where a check needs it: the CLI reads folders without it
    import torch

__all__ = [
    "OUTPUT_TYPES",
    "MemoryEstimate",
    "MemoryEstimateError",
    "check_bool",
    "check_callback",
    "check_choice",
    "check_device",
    "check_embeds",
    "check_float",
    "check_generator",
    "check_int",
    "check_latents",
    "check_memory",
    "check_output_type",
    "check_prompts",
    "check_safetensors_file",
    "describe",
    "device_memory_limit",
    "estimate_memory",
    "invalid",
]

OUTPUT_TYPES = ("pt", "np", "pil", "latent")


class MemoryEstimateError(ValueError):
    """A request whose estimated memory exceeds what the device has (refused before allocation)."""


def invalid(name: str, value: Any, valid: str, kind: type[Exception] = ValueError) -> Exception:
    """``kind("<name>=<value!r>: <valid>")``: the one message shape of this module. A value given
    as ``"<...>"`` is a description (``"<tensor (1, 2)>"``) and is shown as is."""
    shown = (
        value if isinstance(value, str) and value[:1] == "<" and value[-1:] == ">" else repr(value)
    )
    return kind(f"{name}={shown}: {valid}")


def describe(value: Any) -> Any:
    """``value`` itself for plain scalars and strings, else ``"<TypeName>"`` (for messages)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__name__}>"


# ---- scalars -----------------------------------------------------------------------------------


# The int and float checks are the project's one implementation (cogvx.modelio.fields), imported
# at the top as check_int / check_float: ``check_int(name, value, minimum=..., ...)``.


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, value, "expected True or False", TypeError)
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise invalid(name, value, f"expected one of {', '.join(map(repr, choices))}")
    return value


def check_output_type(value: Any) -> str:
    return check_choice("output_type", value, OUTPUT_TYPES)


# ---- prompts -----------------------------------------------------------------------------------


def check_prompts(
    prompt: Any, negative_prompt: Any, *, has_embeds: bool, name: str = "prompt"
) -> list[str] | None:
    """The prompts as a list (None when ``prompt_embeds`` stand in); checks the negative prompt
    against them (a str, or a list of the same length as a list prompt)."""
    if prompt is not None and has_embeds:
        raise invalid(name, prompt, "pass either prompt or prompt_embeds, not both")
    if prompt is None:
        if not has_embeds:
            raise invalid(
                name, None, "a str or a non-empty list of str is required (or prompt_embeds)"
            )
        prompts = None
    elif isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise invalid(name, prompt, "expected a str or a non-empty list of str", TypeError)
    if negative_prompt is not None:
        if isinstance(negative_prompt, str):
            pass
        elif isinstance(negative_prompt, list) and all(isinstance(p, str) for p in negative_prompt):
            if not isinstance(prompt, list):
                raise invalid(
                    "negative_prompt", negative_prompt, "a list only with a list prompt", TypeError
                )
            if len(negative_prompt) != len(prompts):
                raise invalid(
                    "negative_prompt",
                    negative_prompt,
                    f"expected {len(prompts)} entries, one per prompt (or one str for all)",
                )
        else:
            raise invalid(
                "negative_prompt", negative_prompt, "expected a str or a list of str", TypeError
            )
    return prompts


# ---- files -------------------------------------------------------------------------------------


def check_safetensors_file(path: str | os.PathLike[str]) -> None:
    """Read a safetensors file's header only and check that the file holds every tensor it lists.

    A truncated download or a file that is not safetensors is named with its path here, before a
    library reports it as a bare deserialisation error deep inside a load.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file ({size} bytes; truncated?)")
        (length,) = struct.unpack("<Q", head)
        if length > size - 8 or length > 100 * 2**20:
            raise ValueError(
                f"{path}: corrupt or truncated safetensors file (header of {length} bytes in a "
                f"{size}-byte file)"
            )
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: corrupt safetensors header (not a JSON object)")
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            raise ValueError(f"{path}: corrupt safetensors header (entry {key!r})")
        end = max(end, int(offsets[1]))
    if 8 + length + end > size:
        raise ValueError(
            f"{path}: truncated safetensors file: {size} bytes, the header needs {8 + length + end}"
        )


# ---- memory ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of the largest working set of each stage of one call (lower-bound estimates)."""

    text_encoder: int
    transformer: int
    vae: int

    @property
    def peak(self) -> int:
        return max(self.text_encoder, self.transformer, self.vae)


def estimate_memory(
    *,
    batch: int,
    max_sequence_length: int,
    t5_heads: int,
    t5_d_model: int,
    transformer_tokens: int,
    transformer_width: int,
    do_cfg: bool,
    pixel_frames_per_chunk: int,
    height: int,
    width: int,
    vae_channels: int,
    element_size: int,
    tiled: bool,
) -> MemoryEstimate:
    """The memory of the largest tensors each stage holds at once.

    - text encoder: T5 attention is eager, so its scores and probabilities ``[B, heads, L, L]`` (fp32
      softmax) plus the position bias are materialised: ``3 * B * heads * L^2 * 4`` bytes, plus the
      hidden states;
    - transformer: about 8 activations of ``[B_cfg, N, D]`` live in one block (q, k, v, attention
      output, the 4x feed-forward), N the text + video tokens; attention itself is assumed to be a
      memory-efficient kernel (no ``N^2`` term, so this never refuses what could run);
    - VAE decode: the widest full-resolution activation of one decode chunk, ``C x F_chunk x H x W``,
      about 4 at once (skipped when tiling bounds the tile size).
    """
    text = (
        3 * batch * t5_heads * max_sequence_length**2 * 4
        + 4 * batch * max_sequence_length * t5_d_model * 4
    )
    cfg = 2 if do_cfg else 1
    dit = 8 * batch * cfg * transformer_tokens * transformer_width * element_size
    vae = 0 if tiled else 4 * vae_channels * pixel_frames_per_chunk * height * width * element_size
    return MemoryEstimate(int(text), int(dit), int(vae))


def device_memory_limit(device: Any) -> int | None:
    """Total memory of ``device`` in bytes: the GPU's, or the machine's RAM for the CPU (None where
    it cannot be read)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    if device.type == "cpu":
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            return None
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(
    estimate: MemoryEstimate,
    limit: int | None,
    *,
    device: Any,
    text_parameter: str,
    text_value: Any,
    size_parameter: str,
    size_value: Any,
) -> None:
    """Refuse a request whose estimate exceeds ``limit``, naming the parameter that drives the
    largest stage, the estimate and the limit."""
    if limit is None:
        return
    stages: Sequence[tuple[str, int, str, Any]] = (
        ("the text encoder's attention", estimate.text_encoder, text_parameter, text_value),
        ("the transformer", estimate.transformer, size_parameter, size_value),
        ("the VAE decode", estimate.vae, size_parameter, size_value),
    )
    what, need, name, value = max(stages, key=lambda s: s[1])
    if need > limit:
        hint = (
            "use a shorter max_sequence_length (226 for the released models)"
            if name == text_parameter
            else "use a smaller size or fewer frames (or VAE tiling)"
        )
        raise MemoryEstimateError(
            f"{name}={value!r}: {what} needs about {_gib(need)} (estimate) but {device} has "
            f"{_gib(limit)}; {hint}"
        )


# ---- callbacks ---------------------------------------------------------------------------------


def check_callback(
    callback: Any, tensor_inputs: Any, allowed: Sequence[str]
) -> tuple[Callable[..., Any] | None, tuple[str, ...]]:
    """``callback_on_step_end`` (callable or None) and its ``callback_on_step_end_tensor_inputs``
    (a list of names among ``allowed``)."""
    if callback is not None and not callable(callback):
        raise invalid(
            "callback_on_step_end",
            callback,
            "expected a callable (pipe, step, timestep, callback_kwargs) -> dict, or None",
            TypeError,
        )
    if tensor_inputs is None:
        tensor_inputs = ["latents"]
    if isinstance(tensor_inputs, str) or not isinstance(tensor_inputs, Sequence):
        raise invalid(
            "callback_on_step_end_tensor_inputs",
            tensor_inputs,
            f"expected a list of names among {list(allowed)}",
            TypeError,
        )
    unknown = [k for k in tensor_inputs if k not in allowed]
    if unknown:
        raise invalid(
            "callback_on_step_end_tensor_inputs",
            list(tensor_inputs),
            f"unknown name(s) {unknown}; valid: {list(allowed)}",
        )
    return callback, tuple(tensor_inputs)


# ---- tensors and devices ----------------------------------------------------------------------


def check_latents(latents: Any, expected: tuple[int, ...], what: str) -> None:
    """Given latents: a finite tensor of exactly the request's shape."""
    import torch

    if latents is None:
        return
    if not isinstance(latents, torch.Tensor):
        raise invalid("latents", describe(latents), f"expected a tensor {what}", TypeError)
    if tuple(latents.shape) != expected:
        raise invalid(
            "latents",
            f"<tensor {tuple(latents.shape)}>",
            f"expected shape [B, F', C, h, w] = {expected} for this request ({what})",
        )
    if not torch.isfinite(latents).all():
        raise invalid("latents", "<tensor with NaN/inf>", "latents must be finite")


def check_embeds(
    name: str, embeds: Any, *, width: int, like: Any = None, length: int | None = None
) -> None:
    """Text embeddings ``[B, L, width]`` (the shape of ``like`` when given), finite."""
    import torch

    if embeds is None:
        return
    if not isinstance(embeds, torch.Tensor):
        raise invalid(name, describe(embeds), f"expected a tensor [B, L, {width}]", TypeError)
    shape = tuple(embeds.shape)
    if embeds.ndim != 3 or shape[-1] != width or shape[0] < 1:
        raise invalid(name, f"<tensor {shape}>", f"expected a tensor [B, L, {width}]")
    if like is not None and shape != tuple(like.shape):
        raise invalid(
            name,
            f"<tensor {shape}>",
            f"expected the shape of prompt_embeds {tuple(like.shape)}",
        )
    if length is not None and shape[1] != length:
        raise invalid(name, f"<tensor {shape}>", f"expected L = max_sequence_length = {length}")
    if not torch.isfinite(embeds).all():
        raise invalid(name, "<tensor with NaN/inf>", "embeddings must be finite")


def check_generator(generator: Any, batch: int) -> None:
    """None, a ``torch.Generator``, or one per video."""
    import torch

    if generator is None or isinstance(generator, torch.Generator):
        return
    if isinstance(generator, (list, tuple)) and all(
        isinstance(g, torch.Generator) for g in generator
    ):
        if len(generator) != batch:
            raise invalid(
                "generator",
                f"<{len(generator)} generators>",
                f"expected one per video: {batch} (prompts x num_videos_per_prompt)",
            )
        return
    raise invalid(
        "generator",
        describe(generator),
        "expected a torch.Generator, a list of them or None",
        TypeError,
    )


def check_device(device: Any) -> torch.device:
    """A torch device that exists here (None: the CPU)."""
    import torch

    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise invalid(
            "device", device, "expected a torch device such as 'cpu' or 'cuda:0'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise invalid("device", device, "no CUDA device is available here; use 'cpu'")
    return dev
