"""Triton kernel: 3D RoPE on the video tokens of q and k in one launch.

Math (reference: :func:`cogvx.expert_dit.kernels.reference.rope_qk`), per token row ``x [d]``
with ``c, s`` the cos/sin row ``token - offset`` and ``rot(x) = (-x1, x0, -x3, x2, ...)``::

    forward:   y  = x * c + rot(x) * s
    backward:  dx = g * c + rot^T(g * s),   rot^T(v) = (v1, -v0, v3, -v2, ...)

(the backward is the transpose of the same linear map). Text tokens (``token < offset``) use
``c = 1, s = 0``, i.e. they are copied unchanged. Rows are loaded contiguously and split into
even/odd channels in registers (``reshape`` + ``split``, back with ``interleave``), so memory
access stays fully coalesced. Each program handles one (sample, head) and a block of tokens for
both q and k, loading the cos/sin block once for the two. The same kernel runs forward and
backward (``BACKWARD`` constant).
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

from cogvx.expert_dit.kernels.rowchunks import device_guard

__all__ = ["rope_qk"]


@triton.jit
def _rotate_block(
    in_ptr,
    out_ptr,
    batch,
    head,
    rows,
    cols,
    mask,
    cos,
    sin,
    stride_in_b,
    stride_in_h,
    stride_in_s,
    stride_out_b,
    stride_out_h,
    stride_out_s,
    BACKWARD: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    src = in_ptr + batch * stride_in_b + head * stride_in_h + rows[:, None] * stride_in_s
    x = tl.load(src + cols[None, :], mask=mask, other=0.0).to(tl.float32)  # [BLOCK_S, BLOCK_D]
    if BACKWARD:
        # rot^T(v): (v0, v1) -> (v1, -v0) on each pair, v = g * s.
        v_even, v_odd = tl.split(tl.reshape(x * sin, (BLOCK_S, BLOCK_D // 2, 2)))
        y = x * cos + tl.interleave(v_odd, -v_even)
    else:
        # rot(x): (x0, x1) -> (-x1, x0) on each pair.
        x_even, x_odd = tl.split(tl.reshape(x, (BLOCK_S, BLOCK_D // 2, 2)))
        y = x * cos + tl.interleave(-x_odd, x_even) * sin
    dst = out_ptr + batch * stride_out_b + head * stride_out_h + rows[:, None] * stride_out_s
    tl.store(dst + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(
    q_ptr,
    k_ptr,
    q_out_ptr,
    k_out_ptr,
    cos_ptr,
    sin_ptr,
    heads,
    seq_len,
    offset,
    head_dim,
    stride_qb,
    stride_qh,
    stride_qs,
    stride_kb,
    stride_kh,
    stride_ks,
    stride_qob,
    stride_qoh,
    stride_qos,
    stride_kob,
    stride_koh,
    stride_kos,
    stride_cos,
    stride_sin,
    BACKWARD: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    batch_head = tl.program_id(0)
    batch = (batch_head // heads).to(tl.int64)
    head = (batch_head % heads).to(tl.int64)
    rows = (tl.program_id(1) * BLOCK_S + tl.arange(0, BLOCK_S)).to(tl.int64)  # token index
    cols = tl.arange(0, BLOCK_D)  # channel
    mask = (rows[:, None] < seq_len) & (cols[None, :] < head_dim)
    video = mask & (rows[:, None] >= offset)
    table_row = (rows - offset)[:, None]  # row of cos/sin; negative (masked) for text tokens
    # Text tokens: cos = 1, sin = 0 leaves them unchanged.
    cos = tl.load(cos_ptr + table_row * stride_cos + cols[None, :], mask=video, other=1.0)
    sin = tl.load(sin_ptr + table_row * stride_sin + cols[None, :], mask=video, other=0.0)
    cos = cos.to(tl.float32)
    sin = sin.to(tl.float32)
    _rotate_block(
        q_ptr, q_out_ptr, batch, head, rows, cols, mask, cos, sin,
        stride_qb, stride_qh, stride_qs, stride_qob, stride_qoh, stride_qos,
        BACKWARD, BLOCK_S, BLOCK_D,
    )  # fmt: skip
    _rotate_block(
        k_ptr, k_out_ptr, batch, head, rows, cols, mask, cos, sin,
        stride_kb, stride_kh, stride_ks, stride_kob, stride_koh, stride_kos,
        BACKWARD, BLOCK_S, BLOCK_D,
    )  # fmt: skip


def _last_dim_contiguous(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _launch(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, offset: int, backward: bool):
    """Rotate (or back-rotate) q and k into new tensors with q's/k's memory layout."""
    q, k = _last_dim_contiguous(q), _last_dim_contiguous(k)
    batch, heads, seq_len, head_dim = q.shape
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)  # keeps a transposed layout
    block_d = max(2, triton.next_power_of_2(head_dim))
    # 2048 elements per tensor and program: with 4 warps that is 16 per thread, which the sm_90
    # compile holds in ~56 registers with 128-bit loads; 4096 needed ~96-255 registers.
    block_s = max(1, min(triton.next_power_of_2(seq_len), 2048 // block_d))
    grid = (batch * heads, triton.cdiv(seq_len, block_s))
    if cos.numel() == 0:  # offset == S: no video token, the tables are never read
        cos = sin = q  # any valid pointer (an empty tensor may have a null data pointer)
    with device_guard(q):
        _rope_kernel[grid](
            q, k, q_out, k_out, cos, sin,
            heads, seq_len, offset, head_dim,
            *q.stride()[:3], *k.stride()[:3], *q_out.stride()[:3], *k_out.stride()[:3],
            cos.stride(0), sin.stride(0),
            BACKWARD=backward, BLOCK_S=block_s, BLOCK_D=block_d,
            num_warps=4,
        )  # fmt: skip
    return q_out, k_out


class _RopeQK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin, offset):  # type: ignore[override]
        cos, sin = _last_dim_contiguous(cos), _last_dim_contiguous(sin)
        ctx.save_for_backward(cos, sin)
        ctx.offset = offset
        return _launch(q, k, cos, sin, offset, backward=False)

    @staticmethod
    @once_differentiable  # the backward is a Triton kernel: no double backward
    def backward(ctx, dq_out, dk_out):  # type: ignore[override]
        cos, sin = ctx.saved_tensors
        dq, dk = _launch(dq_out, dk_out, cos, sin, ctx.offset, backward=True)
        # cos/sin are position tables (constants): no gradient.
        return dq, dk, None, None, None


def rope_qk(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    """Triton version of :func:`cogvx.expert_dit.kernels.reference.rope_qk`.

    Arguments are assumed checked (:func:`cogvx.expert_dit.kernels.rope_qk`); ``cos``/``sin``
    get no gradient.
    """
    return _RopeQK.apply(q, k, cos, sin, offset)
