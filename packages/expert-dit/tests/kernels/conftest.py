"""Fixtures for the kernel tests: Triton-on-CPU through the interpreter, and the error measure.

``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` before triton is imported, so the Triton paths
run on CPU tensors here. Kernel-vs-reference tests request ``triton_cpu``, which skips (visibly)
when triton is missing or the interpreter is off, and selects the Triton backend for the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from cogvx.expert_dit.kernels import KernelBackend, use_kernels
from cogvx.expert_dit.kernels.backend import interpreter_enabled, triton_importable


@pytest.fixture
def triton_cpu() -> Iterator[None]:
    """Run the test with the Triton backend on CPU tensors (Triton interpreter)."""
    if not triton_importable():
        pytest.skip("triton is not importable")
    if not interpreter_enabled():
        pytest.skip("TRITON_INTERPRET=1 is not set")
    with use_kernels(KernelBackend.TRITON):
        yield


def _rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max|ours - ref| / max|ref| (docs/architecture.md §Exactness); max|ours| when ref is all zero."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    if ref.numel() == 0:
        return 0.0
    diff = (ours.double() - ref.double()).abs().max()
    scale = ref.double().abs().max()
    return (diff / scale).item() if scale > 0 else diff.item()


@pytest.fixture
def rel_err() -> Callable[[torch.Tensor, torch.Tensor], float]:
    return _rel_err
