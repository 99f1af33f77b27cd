"""Choosing the compute dtype, and refusing to write NaN/black videos.

bf16 is the released models' precision (CogVideo README, docs/training.md §Precision) and is used wherever the device supports it; on
the CPU the default is fp32 (exact, and what the parity tests check). fp16 (what older GPUs offer)
overflows in CogVideoX attention and adaLN for some prompts and sizes, which the reference turns
into black or NaN videos without a word; here every sampler step's latents are checked and a
non-finite value stops the run with a message that names the step and what to do instead.
"""

from __future__ import annotations

import logging

import torch

from cogvx.modelio import parse_dtype

__all__ = ["NonFiniteError", "check_finite", "resolve_dtype"]

logger = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """Latents or frames became NaN/inf (typically fp16 overflow)."""


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type in ("cpu", "xpu", "mps")


def resolve_dtype(
    dtype: str | torch.dtype | None, device: torch.device | str, *, name: str = "dtype"
) -> torch.dtype:
    """``None``/"auto": bf16 on accelerators that support it, fp32 on the CPU and elsewhere.

    Named dtypes: ``fp32``/``float32``, ``bf16``/``bfloat16``, ``fp16``/``float16`` (or a
    ``torch.dtype``). Asking for bf16 on a device without it is an error, not a silent fallback.
    """
    device = torch.device(device)
    if dtype is None or dtype == "auto":
        if device.type == "cpu":
            return torch.float32
        if bf16_supported(device):
            return torch.bfloat16
        logger.warning(
            "%s has no bf16 support; running in fp32 (fp16 is allowed explicitly with dtype='fp16', "
            "but CogVideoX may overflow in fp16)",
            device,
        )
        return torch.float32
    dtype = parse_dtype(dtype, parameter=name)
    if dtype == torch.bfloat16 and not bf16_supported(device):
        raise ValueError(f"{name}=bf16: not supported on {device}; use fp32 (or fp16 at your risk)")
    return dtype


def check_finite(tensor: torch.Tensor, *, where: str, dtype: torch.dtype) -> None:
    """Raise :class:`NonFiniteError` if ``tensor`` holds a NaN or an infinity."""
    if torch.isfinite(tensor).all():
        return
    advice = (
        "fp16 overflows in this model: use dtype='bf16' where the device supports it, else 'fp32'"
        if dtype == torch.float16
        else "check the weights and inputs; try dtype='fp32'"
    )
    raise NonFiniteError(f"non-finite values (NaN/inf) in {where} with dtype={dtype}: {advice}")
