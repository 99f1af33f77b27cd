"""Kernel backend selection: one enum, one context manager, one decision function.

The backend is a runtime switch (never stored in a model config) set the one way every cogvx
runtime switch is set: a context manager, :func:`use_kernels` (``torch``, ``triton`` or
``auto``); the innermost context wins, and outside any context it is ``auto``. No environment
variable changes it (docs/architecture.md).

- ``torch``: always the PyTorch reference.
- ``auto``: Triton when every tensor is on a CUDA device whose compute capability supports the
  dtype (>= 7.0, and >= 8.0 for bfloat16) and ``import triton`` works; the reference otherwise.
- ``triton``: Triton whenever it can run: on CUDA as above, and on CPU only through Triton's
  interpreter (``TRITON_INTERPRET=1``, used by the tests). Where it cannot run, the reference is
  used and a warning is emitted once per reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from enum import Enum

import torch
from torch import Tensor

__all__ = ["KernelBackend", "current_backend", "should_use_triton", "use_kernels"]


class KernelBackend(str, Enum):  # noqa: UP042 (the design contract is `str, Enum`)
    """Which implementation the kernel functions run."""

    TORCH = "torch"
    TRITON = "triton"
    AUTO = "auto"


_override: ContextVar[KernelBackend | None] = ContextVar("cogvx_kernel_backend", default=None)
_warned: set[str] = set()


def _parse(value: KernelBackend | str, source: str) -> KernelBackend:
    if isinstance(value, KernelBackend):
        return value
    if isinstance(value, str):
        try:
            return KernelBackend(value.strip().lower())
        except ValueError:
            pass
    valid = ", ".join(repr(b.value) for b in KernelBackend)
    raise ValueError(f"{source} must be one of {valid}, got {value!r}")


def current_backend() -> KernelBackend:
    """The backend in force: the innermost ``use_kernels`` context, else AUTO."""
    override = _override.get()
    return KernelBackend.AUTO if override is None else override


@contextlib.contextmanager
def use_kernels(backend: KernelBackend | str) -> Iterator[KernelBackend]:
    """Run the kernel functions with ``backend`` inside the ``with`` block (nests; thread/task local)."""
    token = _override.set(_parse(backend, "backend"))
    try:
        yield _override.get()  # type: ignore[misc]
    finally:
        _override.reset(token)


@functools.cache
def triton_importable() -> bool:
    """Whether ``import triton`` works (cached; the import itself happens only here and in kernels)."""
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return True


def interpreter_enabled() -> bool:
    """Whether Triton's CPU interpreter is requested (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def _warn_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(
            f"cogvx kernels: Triton backend requested but {reason}; using the PyTorch reference",
            RuntimeWarning,
            stacklevel=4,
        )


def _cuda_unsupported_reason(tensors: tuple[Tensor, ...]) -> str | None:
    """None when Triton can run on these CUDA tensors, else why not."""
    if not triton_importable():
        return "triton cannot be imported"
    for index in {t.device.index for t in tensors}:
        major, minor = torch.cuda.get_device_capability(index)
        need = (8, 0) if any(t.dtype == torch.bfloat16 for t in tensors) else (7, 0)
        if (major, minor) < need:
            return (
                f"CUDA device {index} has compute capability {major}.{minor} "
                f"(needs >= {need[0]}.{need[1]} for these dtypes)"
            )
    return None


def should_use_triton(*tensors: Tensor | None) -> bool:
    """Decide, for one call on ``tensors``, whether the Triton path runs (see module docstring)."""
    backend = current_backend()
    if backend is KernelBackend.TORCH:
        return False
    present = tuple(t for t in tensors if t is not None)
    on_cuda = all(t.is_cuda for t in present)
    if backend is KernelBackend.AUTO:
        return on_cuda and _cuda_unsupported_reason(present) is None
    # KernelBackend.TRITON
    if on_cuda:
        reason = _cuda_unsupported_reason(present)
        if reason is None:
            return True
        _warn_once(reason)
        return False
    if any(t.is_cuda for t in present):
        _warn_once("the tensors are on different devices (CPU and CUDA)")
        return False
    if not interpreter_enabled():
        _warn_once("the tensors are on the CPU and TRITON_INTERPRET=1 is not set")
        return False
    if not triton_importable():
        _warn_once("triton cannot be imported")
        return False
    return True
