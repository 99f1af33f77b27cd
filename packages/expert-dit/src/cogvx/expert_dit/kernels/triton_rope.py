"""Triton kernel: 3D RoPE on the video tokens of q and k in one launch.

Math (reference: :func:`cogvx.expert_dit.kernels.reference.rope_qk`). With channel pairs
``(x_e, x_o) = (x[2j], x[2j+1])`` and ``c, s`` the cos/sin of the token's row ``n = token - offset``::

    forward:   y_e = x_e * c_e - x_o * s_e          y_o = x_o * c_o + x_e * s_o
    backward:  dx_e = g_e * c_e + g_o * s_o         dx_o = g_o * c_o - g_e * s_e

(the backward is the transpose of the same linear map: ``dx = g * c + rot^T(g * s)``). Text
tokens (``token < offset``) use ``c = 1, s = 0``, i.e. they are copied unchanged. Each program
handles one (sample, head) and a block of tokens for both q and k, so the cos/sin block is loaded
once for the two tensors. The same kernel runs forward and backward (``BACKWARD`` constant).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from cogvx.expert_dit.kernels.rowchunks import device_guard

__all__ = ["rope_qk"]


@triton.jit
def _rotate_block(
    in_ptr,
    out_ptr,
    batch,
    head,
    rows,
    pairs,
    mask,
    cos_e,
    cos_o,
    sin_e,
    sin_o,
    stride_in_b,
    stride_in_h,
    stride_in_s,
    stride_out_b,
    stride_out_h,
    stride_out_s,
    BACKWARD: tl.constexpr,
):
    src = in_ptr + batch * stride_in_b + head * stride_in_h + rows[:, None] * stride_in_s
    src = src + 2 * pairs[None, :]
    x_e = tl.load(src, mask=mask, other=0.0).to(tl.float32)
    x_o = tl.load(src + 1, mask=mask, other=0.0).to(tl.float32)
    if BACKWARD:
        y_e = x_e * cos_e + x_o * sin_o
        y_o = x_o * cos_o - x_e * sin_e
    else:
        y_e = x_e * cos_e - x_o * sin_e
        y_o = x_o * cos_o + x_e * sin_o
    dst = out_ptr + batch * stride_out_b + head * stride_out_h + rows[:, None] * stride_out_s
    dst = dst + 2 * pairs[None, :]
    tl.store(dst, y_e.to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(dst + 1, y_o.to(out_ptr.dtype.element_ty), mask=mask)


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
    half_dim,
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
    BLOCK_P: tl.constexpr,
):
    batch_head = tl.program_id(0)
    batch = (batch_head // heads).to(tl.int64)
    head = (batch_head % heads).to(tl.int64)
    rows = (tl.program_id(1) * BLOCK_S + tl.arange(0, BLOCK_S)).to(tl.int64)  # token index
    pairs = tl.arange(0, BLOCK_P)  # channel pair index j: channels 2j, 2j+1
    mask = (rows[:, None] < seq_len) & (pairs[None, :] < half_dim)
    video = mask & (rows[:, None] >= offset)
    table_row = (rows - offset)[:, None]  # row of cos/sin; negative (masked) for text tokens
    cos_at = cos_ptr + table_row * stride_cos + 2 * pairs[None, :]
    sin_at = sin_ptr + table_row * stride_sin + 2 * pairs[None, :]
    # Text tokens: cos = 1, sin = 0 leaves them unchanged.
    cos_e = tl.load(cos_at, mask=video, other=1.0).to(tl.float32)
    cos_o = tl.load(cos_at + 1, mask=video, other=1.0).to(tl.float32)
    sin_e = tl.load(sin_at, mask=video, other=0.0).to(tl.float32)
    sin_o = tl.load(sin_at + 1, mask=video, other=0.0).to(tl.float32)
    _rotate_block(
        q_ptr, q_out_ptr, batch, head, rows, pairs, mask, cos_e, cos_o, sin_e, sin_o,
        stride_qb, stride_qh, stride_qs, stride_qob, stride_qoh, stride_qos, BACKWARD,
    )  # fmt: skip
    _rotate_block(
        k_ptr, k_out_ptr, batch, head, rows, pairs, mask, cos_e, cos_o, sin_e, sin_o,
        stride_kb, stride_kh, stride_ks, stride_kob, stride_koh, stride_kos, BACKWARD,
    )  # fmt: skip


def _last_dim_contiguous(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _launch(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, offset: int, backward: bool):
    """Rotate (or back-rotate) q and k into new tensors with q's/k's memory layout."""
    q, k = _last_dim_contiguous(q), _last_dim_contiguous(k)
    batch, heads, seq_len, head_dim = q.shape
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)  # keeps a transposed layout
    block_p = triton.next_power_of_2(head_dim // 2)
    block_s = max(1, min(triton.next_power_of_2(seq_len), 4096 // block_p))
    grid = (batch * heads, triton.cdiv(seq_len, block_s))
    if cos.numel() == 0:  # offset == S: no video token, the tables are never read
        cos = sin = q  # any valid pointer (an empty tensor may have a null data pointer)
    with device_guard(q):
        _rope_kernel[grid](
            q, k, q_out, k_out, cos, sin,
            heads, seq_len, offset, head_dim // 2,
            *q.stride()[:3], *k.stride()[:3], *q_out.stride()[:3], *k_out.stride()[:3],
            cos.stride(0), sin.stride(0),
            BACKWARD=backward, BLOCK_S=block_s, BLOCK_P=block_p,
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
