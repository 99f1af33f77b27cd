"""Triton kernel: shared LayerNorm fused with the expert (text / video) adaLN modulation.

Math (reference: :func:`cogvx.expert_dit.kernels.reference.expert_layernorm_modulate`), per row
of ``x [B, S, D]`` with the modality's ``shift, scale [D]`` of that sample::

    n = (x - mean) * rstd            mean, rstd over D in fp32 (biased variance, + eps)
    a = n * w + b                    the shared affine LayerNorm
    y = a * (1 + scale) + shift

Backward, with ``dy`` the output gradient and the per-(sample, modality) row sums
``P = sum_rows dy * n`` and ``Q = sum_rows dy``::

    g  = dy * (1 + scale) * w                         (gradient w.r.t. n)
    dx = rstd * (g - mean_D(g) - n * mean_D(g * n))
    dshift = Q,   dscale = w * P + b * Q              (since a = n * w + b)
    dw = sum_{b, mod} (1 + scale) * P,   db = sum_{b, mod} (1 + scale) * Q

so the kernel only accumulates ``P`` and ``Q`` per chunk of rows (see :mod:`.rowchunks`); the
host sums the chunks and forms the [B, D] / [D] gradients. One launch forward, one backward.
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

__all__ = ["expert_layernorm_modulate"]


@triton.jit
def _adaln_fwd_kernel(
    x_ptr,
    y_ptr,
    w_ptr,
    b_ptr,
    t_shift_ptr,
    t_scale_ptr,
    v_shift_ptr,
    v_scale_ptr,
    mean_ptr,
    rstd_ptr,
    seq_len,
    dim,
    text_len,
    n_text_chunks,
    eps,
    stride_xb,
    stride_xs,
    stride_yb,
    stride_ys,
    stride_t_shift,
    stride_t_scale,
    stride_v_shift,
    stride_v_scale,
    HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < dim
    # The chunk index decides the modality: text chunks first, then video chunks.
    is_text = chunk < n_text_chunks
    start = tl.where(is_text, chunk * ROWS, text_len + (chunk - n_text_chunks) * ROWS)
    end = tl.where(is_text, text_len, seq_len)
    if is_text:
        shift = tl.load(t_shift_ptr + batch * stride_t_shift + cols, mask=col_ok, other=0.0)
        shift = shift.to(tl.float32)
        scale = tl.load(t_scale_ptr + batch * stride_t_scale + cols, mask=col_ok, other=0.0)
        scale = scale.to(tl.float32)
    else:
        shift = tl.load(v_shift_ptr + batch * stride_v_shift + cols, mask=col_ok, other=0.0)
        shift = shift.to(tl.float32)
        scale = tl.load(v_scale_ptr + batch * stride_v_scale + cols, mask=col_ok, other=0.0)
        scale = scale.to(tl.float32)
    scale_1 = 1.0 + scale
    if HAS_WEIGHT:
        w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    if HAS_BIAS:
        b = tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)

    for i in range(ROWS):
        row = (start + i).to(tl.int64)
        row_ok = row < end
        # Row-and-column mask as ONE vector comparison (`col_ok & row_ok` mixes a scalar and a
        # vector of int1, which the Triton 3.x interpreter turns into an integer mask).
        mask = cols < tl.where(row_ok, dim, 0)
        x = tl.load(x_ptr + batch * stride_xb + row * stride_xs + cols, mask=mask, other=0.0)
        x = x.to(tl.float32)
        mean = tl.sum(x, axis=0) / dim
        centered = tl.where(col_ok, x - mean, 0.0)
        var = tl.sum(centered * centered, axis=0) / dim
        rstd = tl.math.rsqrt(var + eps)
        a = centered * rstd
        if HAS_WEIGHT:
            a = a * w
        if HAS_BIAS:
            a = a + b
        y = a * scale_1 + shift
        tl.store(
            y_ptr + batch * stride_yb + row * stride_ys + cols,
            y.to(y_ptr.dtype.element_ty),
            mask=mask,
        )
        tl.store(mean_ptr + batch * seq_len + row, mean, mask=row_ok)
        tl.store(rstd_ptr + batch * seq_len + row, rstd, mask=row_ok)


@triton.jit
def _adaln_bwd_kernel(
    dy_ptr,
    x_ptr,
    dx_ptr,
    w_ptr,
    t_scale_ptr,
    v_scale_ptr,
    mean_ptr,
    rstd_ptr,
    p_ptr,
    q_ptr,
    seq_len,
    dim,
    text_len,
    n_text_chunks,
    n_chunks,
    stride_dyb,
    stride_dys,
    stride_xb,
    stride_xs,
    stride_dxb,
    stride_dxs,
    stride_t_scale,
    stride_v_scale,
    HAS_WEIGHT: tl.constexpr,
    COMPUTE_DX: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    batch = tl.program_id(0).to(tl.int64)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK_D)
    col_ok = cols < dim
    is_text = chunk < n_text_chunks
    start = tl.where(is_text, chunk * ROWS, text_len + (chunk - n_text_chunks) * ROWS)
    end = tl.where(is_text, text_len, seq_len)
    if is_text:
        scale = tl.load(t_scale_ptr + batch * stride_t_scale + cols, mask=col_ok, other=0.0)
        scale = scale.to(tl.float32)
    else:
        scale = tl.load(v_scale_ptr + batch * stride_v_scale + cols, mask=col_ok, other=0.0)
        scale = scale.to(tl.float32)
    # d(loss)/d(n) = dy * (1 + scale) * w; fold the per-column factors into one vector.
    col_factor = 1.0 + scale
    if HAS_WEIGHT:
        col_factor = col_factor * tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    acc_p = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc_q = tl.zeros([BLOCK_D], dtype=tl.float32)

    for i in range(ROWS):
        row = (start + i).to(tl.int64)
        row_ok = row < end
        # Row-and-column mask as ONE vector comparison (`col_ok & row_ok` mixes a scalar and a
        # vector of int1, which the Triton 3.x interpreter turns into an integer mask).
        mask = cols < tl.where(row_ok, dim, 0)
        dy = tl.load(dy_ptr + batch * stride_dyb + row * stride_dys + cols, mask=mask, other=0.0)
        dy = dy.to(tl.float32)
        x = tl.load(x_ptr + batch * stride_xb + row * stride_xs + cols, mask=mask, other=0.0)
        mean = tl.load(mean_ptr + batch * seq_len + row, mask=row_ok, other=0.0)
        rstd = tl.load(rstd_ptr + batch * seq_len + row, mask=row_ok, other=0.0)
        n = tl.where(mask, (x.to(tl.float32) - mean) * rstd, 0.0)
        acc_p += dy * n
        acc_q += dy
        if COMPUTE_DX:
            g = dy * col_factor
            mean_g = tl.sum(g, axis=0) / dim
            mean_gn = tl.sum(g * n, axis=0) / dim
            dx = (g - mean_g - n * mean_gn) * rstd
            tl.store(
                dx_ptr + batch * stride_dxb + row * stride_dxs + cols,
                dx.to(dx_ptr.dtype.element_ty),
                mask=mask,
            )

    partial = (batch * n_chunks + chunk) * dim + cols  # partial sums laid out [B, n_chunks, D]
    tl.store(p_ptr + partial, acc_p, mask=col_ok)
    tl.store(q_ptr + partial, acc_q, mask=col_ok)


def _num_warps(block_d: int) -> int:
    return min(16, max(1, block_d // 256))


def _last_dim_contiguous(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


class _ExpertAdaLN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, text_len, t_shift, t_scale, v_shift, v_scale):  # type: ignore[override]
        x = _last_dim_contiguous(x)
        t_shift, t_scale, v_shift, v_scale = map(
            _last_dim_contiguous, (t_shift, t_scale, v_shift, v_scale)
        )
        weight_c = weight.contiguous() if weight is not None else None
        bias_c = bias.contiguous() if bias is not None else None
        batch, seq_len, dim = x.shape
        y = torch.empty((batch, seq_len, dim), dtype=x.dtype, device=x.device)
        mean = torch.empty((batch, seq_len), dtype=torch.float32, device=x.device)
        rstd = torch.empty((batch, seq_len), dtype=torch.float32, device=x.device)
        chunks = plan_chunks(
            batch, seq_len, text_len, x.device, programs_per_sm=FORWARD_PROGRAMS_PER_SM
        )
        block_d = triton.next_power_of_2(dim)
        with device_guard(x):
            _adaln_fwd_kernel[(batch, chunks.total)](
                x,
                y,
                weight_c if weight_c is not None else x,  # dummy pointer, never read
                bias_c if bias_c is not None else x,
                t_shift,
                t_scale,
                v_shift,
                v_scale,
                mean,
                rstd,
                seq_len,
                dim,
                text_len,
                chunks.n_text,
                eps,
                x.stride(0),
                x.stride(1),
                y.stride(0),
                y.stride(1),
                t_shift.stride(0),
                t_scale.stride(0),
                v_shift.stride(0),
                v_scale.stride(0),
                HAS_WEIGHT=weight_c is not None,
                HAS_BIAS=bias_c is not None,
                ROWS=chunks.rows,
                BLOCK_D=block_d,
                num_warps=_num_warps(block_d),
            )
        ctx.save_for_backward(x, weight_c, bias_c, t_scale, v_scale, mean, rstd)
        ctx.text_len = text_len
        ctx.param_dtypes = tuple(
            t.dtype if t is not None else None
            for t in (weight, bias, t_shift, t_scale, v_shift, v_scale)
        )
        return y

    @staticmethod
    @once_differentiable  # the backward is a Triton kernel: no double backward
    def backward(ctx, dy):  # type: ignore[override]
        x, weight, bias, t_scale, v_scale, mean, rstd = ctx.saved_tensors
        w_dt, b_dt, tsh_dt, tsc_dt, vsh_dt, vsc_dt = ctx.param_dtypes
        text_len = ctx.text_len
        dy = dy.contiguous()
        batch, seq_len, dim = x.shape
        compute_dx = ctx.needs_input_grad[0]
        dx = torch.empty_like(x) if compute_dx else x  # dummy pointer when not needed
        chunks = plan_chunks(
            batch, seq_len, text_len, x.device, programs_per_sm=BACKWARD_PROGRAMS_PER_SM
        )
        partial_p = torch.empty((batch, chunks.total, dim), dtype=torch.float32, device=x.device)
        partial_q = torch.empty_like(partial_p)
        block_d = triton.next_power_of_2(dim)
        with device_guard(x):
            _adaln_bwd_kernel[(batch, chunks.total)](
                dy,
                x,
                dx,
                weight if weight is not None else x,
                t_scale,
                v_scale,
                mean,
                rstd,
                partial_p,
                partial_q,
                seq_len,
                dim,
                text_len,
                chunks.n_text,
                chunks.total,
                dy.stride(0),
                dy.stride(1),
                x.stride(0),
                x.stride(1),
                dx.stride(0),
                dx.stride(1),
                t_scale.stride(0),
                v_scale.stride(0),
                HAS_WEIGHT=weight is not None,
                COMPUTE_DX=compute_dx,
                ROWS=chunks.rows,
                BLOCK_D=block_d,
                num_warps=_num_warps(block_d),
            )
        # [B, n_chunks, D] -> per (sample, modality) sums [B, D]; an empty modality sums to 0.
        p_text, p_video = partial_p[:, : chunks.n_text].sum(1), partial_p[:, chunks.n_text :].sum(1)
        q_text, q_video = partial_q[:, : chunks.n_text].sum(1), partial_q[:, chunks.n_text :].sum(1)
        w = weight.float() if weight is not None else None
        b = bias.float() if bias is not None else None

        def dscale(p: Tensor, q: Tensor) -> Tensor:
            out = p * w if w is not None else p
            return out + q * b if b is not None else out

        scale_1_text, scale_1_video = 1.0 + t_scale.float(), 1.0 + v_scale.float()
        grads_w = grads_b = None
        if weight is not None and ctx.needs_input_grad[1]:
            grads_w = (scale_1_text * p_text + scale_1_video * p_video).sum(0).to(w_dt)
        if bias is not None and ctx.needs_input_grad[2]:
            grads_b = (scale_1_text * q_text + scale_1_video * q_video).sum(0).to(b_dt)
        return (
            dx if compute_dx else None,
            grads_w,
            grads_b,
            None,
            None,
            q_text.to(tsh_dt) if ctx.needs_input_grad[5] else None,
            dscale(p_text, q_text).to(tsc_dt) if ctx.needs_input_grad[6] else None,
            q_video.to(vsh_dt) if ctx.needs_input_grad[7] else None,
            dscale(p_video, q_video).to(vsc_dt) if ctx.needs_input_grad[8] else None,
        )


def expert_layernorm_modulate(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    text_len: int,
    text_shift: Tensor,
    text_scale: Tensor,
    video_shift: Tensor,
    video_scale: Tensor,
) -> Tensor:
    """Triton version of :func:`cogvx.expert_dit.kernels.reference.expert_layernorm_modulate`.

    Arguments are assumed checked (:func:`cogvx.expert_dit.kernels.expert_layernorm_modulate`).
    """
    return _ExpertAdaLN.apply(
        x, weight, bias, eps, text_len, text_shift, text_scale, video_shift, video_scale
    )
