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

__all__ = [
    "BACKWARD_PROGRAMS_PER_SM",
    "FORWARD_PROGRAMS_PER_SM",
    "ModalityChunks",
    "device_guard",
    "plan_chunks",
]

# Untuned starting points (no GPU was available when these were written; see the benchmark).
# Forward: ~64 short programs per SM (4 rows each at CogVideoX-5B shapes on an H100) keep the
# final partial wave small. Backward: ~8 per SM (32 rows each) keeps the per-program partial sums
# (2 x [D] fp32 per program for the LayerNorm) to a few percent of the traffic of dy, x and dx.
FORWARD_PROGRAMS_PER_SM = 64
BACKWARD_PROGRAMS_PER_SM = 8

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
    """Choose a power-of-two row count giving at least ``programs_per_sm`` programs per SM.

    Many programs make the last wave of programs a small part of the run (the tail that leaves
    SMs idle); rows per program amortise the loads of the modulation vectors and, in the
    backward, shrink the partial-sum buffers (one ``[D]`` fp32 row per program and sum). The
    count is rounded DOWN to a power of two (more programs, never fewer), which also bounds the
    number of compiled kernel variants (``rows`` is a compile-time constant).
    """
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        wanted = max(1, (batch * seq_len) // (sms * programs_per_sm))
        rows = min(256, 1 << (wanted.bit_length() - 1))
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
