"""Triton expert adaLN (LayerNorm + text/video modulation) against the PyTorch reference.

Runs on CPU through the Triton interpreter (fp32 and fp16). Tolerance: fp32 max|kernel - ref| /
max|ref| <= 1e-5 for the output and every gradient (x, weight, bias, the four shift/scale).
"""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit.kernels import expert_layernorm_modulate, reference

FP32_TOL = 1e-5
# Both sides compute in fp32 and round once to fp16; they may differ by one fp16 ulp (2**-10 rel).
FP16_TOL = 2e-3

# (batch, seq, dim, text_len): odd non-power-of-two dims, S not a multiple of the row chunk (4 on
# CPU), text_len 0 / S / 1 / mid-chunk.
SHAPES = [
    (1, 9, 48, 4),
    (3, 13, 80, 0),
    (2, 10, 100, 10),
    (3, 7, 80, 1),
    (2, 6, 100, 5),
]


def _inputs(batch, seq, dim, *, affine, dtype=torch.float32, seed=0, chunked=False):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(batch, seq, dim, generator=gen) * 2 + 0.5).to(dtype)
    weight = (1 + 0.3 * torch.randn(dim, generator=gen)).to(dtype) if affine else None
    bias = (0.2 * torch.randn(dim, generator=gen)).to(dtype) if affine else None
    if chunked:
        # As the model produces them: views of one Linear output [B, 4D] (row stride 4D).
        mods = list((0.5 * torch.randn(batch, 4 * dim, generator=gen)).to(dtype).chunk(4, dim=1))
    else:
        mods = [(0.5 * torch.randn(batch, dim, generator=gen)).to(dtype) for _ in range(4)]
    return x, weight, bias, mods


def _run_both(x, weight, bias, text_len, mods, *, eps=1e-5, seed=1):
    leaves = [t.requires_grad_() for t in (x, weight, bias, *mods) if t is not None]
    out = expert_layernorm_modulate(x, weight, bias, eps, text_len, *mods)
    ref = reference.expert_layernorm_modulate(x, weight, bias, eps, text_len, *mods)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.dtype)
    grads = torch.autograd.grad(out, leaves, grad_out)
    ref_grads = torch.autograd.grad(ref, leaves, grad_out)
    return out, ref, grads, ref_grads


@pytest.mark.parametrize(("batch", "seq", "dim", "text_len"), SHAPES)
def test_fp32_output_and_all_gradients(triton_cpu, rel_err, batch, seq, dim, text_len):
    x, weight, bias, mods = _inputs(batch, seq, dim, affine=True, seed=seq * dim)
    out, ref, grads, ref_grads = _run_both(x, weight, bias, text_len, mods)
    assert out.dtype == torch.float32
    assert rel_err(out, ref) <= FP32_TOL
    names = ["x", "weight", "bias", "text_shift", "text_scale", "video_shift", "video_scale"]
    for name, grad, ref_grad in zip(names, grads, ref_grads, strict=True):
        assert rel_err(grad, ref_grad) <= FP32_TOL, name


@pytest.mark.parametrize("affine", [False, True])
def test_without_affine_and_with_chunked_modulation_views(triton_cpu, rel_err, affine):
    x, weight, bias, mods = _inputs(2, 11, 80, affine=affine, chunked=True, seed=7)
    assert not mods[0].is_contiguous()
    out, ref, grads, ref_grads = _run_both(x, weight, bias, 3, mods, eps=1e-6)
    assert rel_err(out, ref) <= FP32_TOL
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert rel_err(grad, ref_grad) <= FP32_TOL


def test_only_parameter_gradients_requested(triton_cpu, rel_err):
    """x without grad (COMPUTE_DX off): the parameter gradients are still right."""
    x, weight, bias, mods = _inputs(1, 9, 48, affine=True, seed=3)
    leaves = [t.requires_grad_() for t in (weight, bias, *mods)]
    out = expert_layernorm_modulate(x, weight, bias, 1e-5, 4, *mods)
    ref = reference.expert_layernorm_modulate(x, weight, bias, 1e-5, 4, *mods)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    for grad, ref_grad in zip(
        torch.autograd.grad(out, leaves, grad_out), torch.autograd.grad(ref, leaves, grad_out)
    ):
        assert rel_err(grad, ref_grad) <= FP32_TOL


def test_fp16(triton_cpu, rel_err):
    x, weight, bias, mods = _inputs(2, 9, 48, affine=True, dtype=torch.float16, seed=5)
    out, ref, grads, ref_grads = _run_both(x, weight, bias, 4, mods)
    assert out.dtype == torch.float16
    assert rel_err(out, ref) <= FP16_TOL
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert grad.dtype == torch.float16
        assert rel_err(grad, ref_grad) <= FP16_TOL


def test_text_and_video_parameters_land_on_their_own_rows(triton_cpu):
    """Zero text modulation and a large video shift: only rows >= text_len move by the shift."""
    x, weight, bias, _ = _inputs(1, 8, 48, affine=True, seed=11)
    zeros = torch.zeros(1, 48)
    shifted = expert_layernorm_modulate(x, weight, bias, 1e-5, 3, zeros, zeros, zeros + 100, zeros)
    plain = expert_layernorm_modulate(x, weight, bias, 1e-5, 3, zeros, zeros, zeros, zeros)
    torch.testing.assert_close(shifted[:, :3], plain[:, :3], rtol=0, atol=0)
    torch.testing.assert_close(shifted[:, 3:] - plain[:, 3:], torch.full((1, 5, 48), 100.0))
