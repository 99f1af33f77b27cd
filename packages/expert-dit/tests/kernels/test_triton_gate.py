"""Triton gated residual against the PyTorch reference (CPU, Triton interpreter).

Tolerance: fp32 max|kernel - ref| / max|ref| <= 1e-5 for the output and the gradients of x, y and
both gates.
"""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit.kernels import gated_residual, reference

FP32_TOL = 1e-5


@pytest.mark.parametrize(
    ("batch", "seq", "dim", "text_len", "dtype", "tol"),
    [
        (1, 9, 48, 4, torch.float32, FP32_TOL),
        (3, 13, 80, 0, torch.float32, FP32_TOL),
        (2, 10, 100, 10, torch.float32, FP32_TOL),
        (3, 5, 100, 1, torch.float32, FP32_TOL),
        (2, 9, 48, 4, torch.float16, 2e-3),  # one fp16 ulp
    ],
)
def test_output_and_gradients(triton_cpu, rel_err, batch, seq, dim, text_len, dtype, tol):
    gen = torch.Generator().manual_seed(seq * dim)
    x = torch.randn(batch, seq, dim, generator=gen).to(dtype).requires_grad_()
    y = torch.randn(batch, seq, dim, generator=gen).to(dtype).requires_grad_()
    gates = torch.randn(batch, 2 * dim, generator=gen).to(dtype).chunk(2, dim=1)  # strided views
    gates = [g.requires_grad_() for g in gates]
    out = gated_residual(x, y, text_len, *gates)
    ref = reference.gated_residual(x, y, text_len, *gates)
    grad_out = torch.randn(out.shape, generator=gen).to(dtype)
    grads = torch.autograd.grad(out, [x, y, *gates], grad_out)
    ref_grads = torch.autograd.grad(ref, [x, y, *gates], grad_out)
    assert out.dtype == dtype
    assert rel_err(out, ref) <= tol
    for name, grad, ref_grad in zip(["x", "y", "text_gate", "video_gate"], grads, ref_grads):
        assert rel_err(grad, ref_grad) <= tol, name
