"""Half-precision matmuls on CPUs without native bf16/fp16 dot products.

On x86 CPUs without AVX512-BF16 / AMX, PyTorch's bf16 GEMM runs a slow emulation (measured on
the development machine, AVX2 only: bf16 ``F.linear`` about 4x slower than fp32). There a bf16
model is faster when each Linear upcasts its input and weight to fp32, multiplies, and rounds the
result back to bf16 once; the result is also closer to exact (fp32 accumulation, one rounding).

Policy (a runtime switch, never stored in a config, set like every cogvx runtime switch by a
context manager): the innermost :func:`use_half_matmul` context (``"fp32"`` or ``"native"``),
else ``"auto"``: upcast for half-precision tensors on a CPU that lacks ``avx512_bf16`` /
``amx_bf16`` (read from ``/proc/cpuinfo``; native where that cannot be read). CUDA tensors and
fp32 tensors are never affected.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Linear", "half_matmul_mode", "linear", "use_half_matmul"]

_MODES = ("auto", "fp32", "native")
_HALF = (torch.bfloat16, torch.float16)
_override: ContextVar[str | None] = ContextVar("cogvx_half_matmul", default=None)


def _parse(mode: str, source: str) -> str:
    value = str(mode).strip().lower()
    if value not in _MODES:
        raise ValueError(f"{source} must be one of {_MODES}, got {mode!r}")
    return value


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU advertises bf16 dot-product instructions (Linux ``/proc/cpuinfo``)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # unknown platform: leave PyTorch's native path alone
    return "avx512_bf16" in flags or "amx_bf16" in flags


def half_matmul_mode() -> str:
    """The mode in force: ``"auto"``, ``"fp32"`` or ``"native"``."""
    override = _override.get()
    return "auto" if override is None else override


@contextlib.contextmanager
def use_half_matmul(mode: str) -> Iterator[str]:
    """``"fp32"``: upcast half-precision CPU matmuls; ``"native"``: never; ``"auto"``: by CPU."""
    token = _override.set(_parse(mode, "mode"))
    try:
        yield _override.get()  # type: ignore[misc]
    finally:
        _override.reset(token)


def _upcast(x: Tensor) -> bool:
    if x.dtype not in _HALF or x.device.type != "cpu":
        return False
    mode = half_matmul_mode()
    return mode == "fp32" or (mode == "auto" and not cpu_has_native_bf16())


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear`` under the policy above; the result has ``x.dtype``."""
    if _upcast(x):
        out = F.linear(x.float(), weight.float(), None if bias is None else bias.float())
        return out.to(x.dtype)
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose forward uses :func:`linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)
