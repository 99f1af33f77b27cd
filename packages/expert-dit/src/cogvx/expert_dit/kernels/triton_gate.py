"""Triton kernel: gated residual ``x + gate * y`` with per-modality gates.

Math (reference: :func:`cogvx.expert_dit.kernels.reference.gated_residual`), per row with the
modality's ``gate [D]`` of that sample::

    out = x + gate * y
    dx = dout,   dy = dout * gate,   dgate = sum_rows dout * y   (per sample and modality)

``dx`` is ``dout`` itself (no kernel). The backward kernel writes ``dy`` and one partial
``sum dout * y`` per chunk of rows (see :mod:`.rowchunks`); the host sums text and video chunks.
"""

# Triton's `kernel[grid](...)` launch takes the kernel's parameters plus launch options
# (num_warps, ...), which static type checkers cannot see.
# pyright: reportCallIssue=false

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import once_differentiable

from cogvx.expert_dit.kernels.rowchunks import (
    BACKWARD_PROGRAMS_PER_SM,
    FORWARD_PROGRAMS_PER_SM,
    device_guard,
    plan_chunks,
)

__all__ = ["gated_residual"]


@triton.jit
def _gate_kernel(
    a_ptr,
    b_ptr,
    out_ptr,
    t_gate_ptr,
    v_gate_ptr,
    partial_ptr,
    seq_len,
    dim,
    text_len,
    n_text_chunks,
    n_chunks,
    stride_ab,
    stride_as,
    stride_bb,
    stride_bs,
    stride_ob,
    stride_os,
    stride_t_gate,
    stride_v_gate,
    BACKWARD: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Forward: ``a = x, b = y``, out = x + gate * y.  Backward: ``a = dout, b = y``,
    out = dout * gate (= dy) and the partial sums of dout * y (= dgate)."""
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < dim
    is_text = chunk < n_text_chunks
    start = tl.where(is_text, chunk * ROWS, text_len + (chunk - n_text_chunks) * ROWS)
    end = tl.where(is_text, text_len, seq_len)
    if is_text:
        gate = tl.load(t_gate_ptr + batch * stride_t_gate + cols, mask=col_ok, other=0.0)
        gate = gate.to(tl.float32)
    else:
        gate = tl.load(v_gate_ptr + batch * stride_v_gate + cols, mask=col_ok, other=0.0)
        gate = gate.to(tl.float32)
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)

    for i in range(ROWS):
        row = (start + i).to(tl.int64)
        # One vector comparison (see triton_adaln: scalar & vector int1 breaks the interpreter).
        mask = cols < tl.where(row < end, dim, 0)
        a = tl.load(a_ptr + batch * stride_ab + row * stride_as + cols, mask=mask, other=0.0)
        b = tl.load(b_ptr + batch * stride_bb + row * stride_bs + cols, mask=mask, other=0.0)
        a = a.to(tl.float32)
        b = b.to(tl.float32)
        if BACKWARD:
            out = a * gate
            acc += a * b
        else:
            out = a + gate * b
        tl.store(
            out_ptr + batch * stride_ob + row * stride_os + cols,
            out.to(out_ptr.dtype.element_ty),
            mask=mask,
        )

    if BACKWARD:
        tl.store(partial_ptr + (batch * n_chunks + chunk) * dim + cols, acc, mask=col_ok)


def _last_dim_contiguous(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _launch(
    a: Tensor, b: Tensor, out: Tensor, text_len: int, t_gate: Tensor, v_gate: Tensor, backward: bool
) -> tuple[Tensor | None, int]:
    """Run the kernel; backward returns the partial sums ``[B, n_chunks, D]`` and ``n_text``."""
    batch, seq_len, dim = a.shape
    # Forward: many short programs; backward: fewer, longer ones (smaller partial-sum buffer).
    chunks = plan_chunks(
        batch,
        seq_len,
        text_len,
        a.device,
        programs_per_sm=BACKWARD_PROGRAMS_PER_SM if backward else FORWARD_PROGRAMS_PER_SM,
    )
    partial = None
    if backward:
        partial = torch.empty((batch, chunks.total, dim), dtype=torch.float32, device=a.device)
    block_d = triton.next_power_of_2(dim)
    with device_guard(a):
        _gate_kernel[(batch, chunks.total)](
            a, b, out, t_gate, v_gate, partial if partial is not None else out,
            seq_len, dim, text_len, chunks.n_text, chunks.total,
            a.stride(0), a.stride(1), b.stride(0), b.stride(1), out.stride(0), out.stride(1),
            t_gate.stride(0), v_gate.stride(0),
            BACKWARD=backward, ROWS=chunks.rows, BLOCK_D=block_d,
            num_warps=min(16, max(1, block_d // 256)),
        )  # fmt: skip
    return partial, chunks.n_text


class _GatedResidual(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, text_len, t_gate, v_gate):  # type: ignore[override]
        x, y, t_gate, v_gate = map(_last_dim_contiguous, (x, y, t_gate, v_gate))
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        _launch(x, y, out, text_len, t_gate, v_gate, backward=False)
        ctx.save_for_backward(y, t_gate, v_gate)
        ctx.text_len = text_len
        ctx.x_dtype = x.dtype
        return out

    @staticmethod
    @once_differentiable  # the backward is a Triton kernel: no double backward
    def backward(ctx, dout):  # type: ignore[override]
        y, t_gate, v_gate = ctx.saved_tensors
        dout = dout.contiguous()
        dy = torch.empty(y.shape, dtype=y.dtype, device=y.device)
        partial, n_text = _launch(dout, y, dy, ctx.text_len, t_gate, v_gate, backward=True)
        assert partial is not None
        # [B, n_chunks, D] -> [B, D] per modality; an empty modality sums to 0.
        d_t_gate = partial[:, :n_text].sum(1).to(t_gate.dtype)
        d_v_gate = partial[:, n_text:].sum(1).to(v_gate.dtype)
        return dout.to(ctx.x_dtype), dy, None, d_t_gate, d_v_gate


def gated_residual(
    x: Tensor, y: Tensor, text_len: int, text_gate: Tensor, video_gate: Tensor
) -> Tensor:
    """Triton version of :func:`cogvx.expert_dit.kernels.reference.gated_residual`.

    Arguments are assumed checked (:func:`cogvx.expert_dit.kernels.gated_residual`).
    """
    return _GatedResidual.apply(x, y, text_len, text_gate, video_gate)
