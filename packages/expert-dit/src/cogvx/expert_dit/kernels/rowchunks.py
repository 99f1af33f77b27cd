"""How the row-wise Triton kernels split ``[B, S, D]`` into programs.

The expert kernels treat the text rows ``[0, text_len)`` and the video rows ``[text_len, S)``
with different parameters and reduce the parameter gradients separately per (sample, modality).
Each program therefore owns a run of up to ``rows`` consecutive rows of ONE sample and ONE
modality: the grid is ``(B, n_text + n_video)``, the first ``n_text`` chunks tile the text rows and
the rest tile the video rows. A program loads its modality's vectors once, loops over its rows,
and in the backward writes one partial sum per chunk; the host then sums the text chunks and the
video chunks separately, so no program ever mixes modalities.

Nothing here imports triton.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["ModalityChunks", "device_guard", "plan_chunks"]

# On the CPU (Triton interpreter, tests) a small fixed chunk keeps several chunks per modality in
# small test shapes, so chunk boundaries and partial chunks are exercised.
_CPU_ROWS = 4


@dataclass(frozen=True)
class ModalityChunks:
    """``rows`` rows per program; ``n_text`` chunks cover ``[0, text_len)``, ``n_video`` the rest."""

    rows: int
    n_text: int
    n_video: int

    @property
    def total(self) -> int:
        return self.n_text + self.n_video


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def plan_chunks(
    batch: int, seq_len: int, text_len: int, device: torch.device, programs_per_sm: int
) -> ModalityChunks:
    """Choose a power-of-two row count so that about ``programs_per_sm`` programs run per SM.

    Fewer, longer programs amortise the per-program loads of the modulation vectors and shrink the
    backward's partial-sum buffers; enough programs keep every SM busy. Powers of two bound the
    number of compiled kernel variants (``rows`` is a compile-time constant).
    """
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        wanted = max(1, _cdiv(batch * seq_len, sms * programs_per_sm))
        rows = min(256, 1 << (wanted - 1).bit_length())
    else:
        rows = _CPU_ROWS
    return ModalityChunks(
        rows=rows, n_text=_cdiv(text_len, rows), n_video=_cdiv(seq_len - text_len, rows)
    )


def device_guard(tensor: torch.Tensor) -> contextlib.AbstractContextManager[object]:
    """Make ``tensor``'s CUDA device current for a launch (Triton launches on the current device)."""
    if tensor.is_cuda:
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()
