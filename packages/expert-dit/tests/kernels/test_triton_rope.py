"""Triton RoPE on q and k against the PyTorch reference (CPU, Triton interpreter).

Tolerance: fp32 max|kernel - ref| / max|ref| <= 1e-5 for q', k' and their gradients.
"""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit.kernels import reference, rope_qk

FP32_TOL = 1e-5
FP16_TOL = 2e-3  # one fp16 ulp: both sides compute in fp32 and round once


def _tables(n, head_dim, gen, dtype=torch.float32):
    """cos/sin as get_3d_rotary_pos_embed builds them: one angle per pair, repeat_interleave(2)."""
    angles = torch.rand(n, head_dim // 2, generator=gen) * 30
    return (
        angles.cos().repeat_interleave(2, -1).to(dtype),
        angles.sin().repeat_interleave(2, -1).to(dtype),
    )


def _check(rel_err, q, k, cos, sin, offset, tol):
    q.requires_grad_()
    k.requires_grad_()
    out = rope_qk(q, k, cos, sin, offset)
    ref = reference.rope_qk(q, k, cos, sin, offset)
    gen = torch.Generator().manual_seed(99)
    grad_out = [torch.randn(t.shape, generator=gen).to(t.dtype) for t in out]
    grads = torch.autograd.grad(out, [q, k], grad_out)
    ref_grads = torch.autograd.grad(ref, [q, k], grad_out)
    for ours, theirs in zip([*out, *grads], [*ref, *ref_grads], strict=True):
        assert ours.dtype == q.dtype
        assert rel_err(ours, theirs) <= tol
    # Text tokens pass through untouched, forward and backward.
    assert torch.equal(out[0][:, :, :offset], q[:, :, :offset])
    assert torch.equal(grads[1][:, :, :offset], grad_out[1][:, :, :offset])
    if offset < q.shape[2]:  # and the video tokens really were rotated
        assert not torch.allclose(out[0][:, :, offset:], q[:, :, offset:])


@pytest.mark.parametrize(
    ("batch", "heads", "seq", "head_dim", "offset"),
    [(1, 2, 9, 16, 4), (3, 1, 7, 64, 0), (2, 3, 5, 16, 5), (1, 2, 70, 64, 3), (2, 1, 6, 24, 1)],
)
def test_fp32_q_k_and_gradients(triton_cpu, rel_err, batch, heads, seq, head_dim, offset):
    gen = torch.Generator().manual_seed(seq * head_dim + offset)
    q = torch.randn(batch, heads, seq, head_dim, generator=gen)
    k = torch.randn(batch, heads, seq, head_dim, generator=gen)
    cos, sin = _tables(seq - offset, head_dim, gen)
    _check(rel_err, q, k, cos, sin, offset, FP32_TOL)


def test_transposed_layout_and_general_tables(triton_cpu, rel_err):
    """q/k as attention makes them ([B,S,H,d] viewed as [B,H,S,d]); cos/sin with unequal pair
    entries (the kernel must not assume repeat_interleave)."""
    gen = torch.Generator().manual_seed(4)
    q = torch.randn(2, 11, 3, 16, generator=gen).transpose(1, 2)
    k = torch.randn(2, 11, 3, 16, generator=gen).transpose(1, 2)
    assert not q.is_contiguous()
    cos, sin = torch.randn(8, 16, generator=gen), torch.randn(8, 16, generator=gen)
    _check(rel_err, q, k, cos, sin, 3, FP32_TOL)


def test_fp16(triton_cpu, rel_err):
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(2, 2, 9, 64, generator=gen).half()
    k = torch.randn(2, 2, 9, 64, generator=gen).half()
    cos, sin = _tables(6, 64, gen)  # fp32 tables with fp16 q/k, as in the model
    _check(rel_err, q, k, cos, sin, 3, FP16_TOL)
