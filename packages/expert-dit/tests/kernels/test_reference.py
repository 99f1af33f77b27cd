"""The PyTorch references against independent, straightforward formulas.

The references (``cogvx.expert_dit.kernels.reference``) are the oracle for the Triton kernels, so
they are themselves checked here against formulas written differently: ``F.layer_norm`` plus
slicing for the expert adaLN, complex-number multiplication for RoPE, per-token loops for the gate.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cogvx.expert_dit.kernels import reference

FP32_TOL = 1e-5  # max|ours - ref| / max|ref|


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    assert ours.shape == ref.shape
    if ref.numel() == 0:
        return 0.0
    return (
        (ours.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-30)
    ).item()


@pytest.mark.parametrize(
    ("batch", "seq", "dim", "text_len"), [(1, 9, 48, 4), (3, 13, 80, 0), (2, 11, 100, 11)]
)
@pytest.mark.parametrize("affine", [True, False])
def test_expert_layernorm_modulate_matches_layer_norm_and_slicing(
    batch, seq, dim, text_len, affine
):
    gen = torch.Generator().manual_seed(batch * 1000 + seq + dim)
    x = (torch.randn(batch, seq, dim, generator=gen) * 3 + 1).requires_grad_()
    weight = torch.randn(dim, generator=gen).requires_grad_() if affine else None
    bias = torch.randn(dim, generator=gen).requires_grad_() if affine else None
    mods = [torch.randn(batch, dim, generator=gen).requires_grad_() for _ in range(4)]
    t_sh, t_sc, v_sh, v_sc = mods
    ours = reference.expert_layernorm_modulate(
        x, weight, bias, 1e-5, text_len, t_sh, t_sc, v_sh, v_sc
    )
    normed = F.layer_norm(x, (dim,), weight, bias, 1e-5)
    text = normed[:, :text_len] * (1 + t_sc.unsqueeze(1)) + t_sh.unsqueeze(1)
    video = normed[:, text_len:] * (1 + v_sc.unsqueeze(1)) + v_sh.unsqueeze(1)
    expected = torch.cat([text, video], dim=1)
    assert rel_err(ours, expected) <= FP32_TOL
    # Gradients through both formulas (autograd of F.layer_norm is an independent backward).
    leaves = [t for t in (x, weight, bias, *mods) if t is not None]
    grad_out = torch.randn(ours.shape, generator=gen)
    for got, want in zip(
        torch.autograd.grad(ours, leaves, grad_out), torch.autograd.grad(expected, leaves, grad_out)
    ):
        assert rel_err(got, want) <= FP32_TOL


@pytest.mark.parametrize(
    ("batch", "heads", "seq", "head_dim", "offset"),
    [(1, 2, 7, 16, 3), (3, 1, 5, 64, 0), (2, 3, 6, 16, 6)],
)
def test_rope_matches_complex_multiplication(batch, heads, seq, head_dim, offset):
    gen = torch.Generator().manual_seed(seq * 7 + head_dim)
    q = torch.randn(batch, heads, seq, head_dim, generator=gen)
    k = torch.randn(batch, heads, seq, head_dim, generator=gen)
    # Angles per channel pair, duplicated onto both channels as get_3d_rotary_pos_embed does.
    angles = torch.rand(seq - offset, head_dim // 2, generator=gen, dtype=torch.float64) * 20
    cos = angles.cos().repeat_interleave(2, dim=-1).float()
    sin = angles.sin().repeat_interleave(2, dim=-1).float()
    q_out, k_out = reference.rope_qk(q, k, cos, sin, offset)
    phase = torch.polar(torch.ones_like(angles), angles)  # [N, d/2] complex
    for x, out in ((q, q_out), (k, k_out)):
        as_complex = torch.view_as_complex(
            x[:, :, offset:].double().reshape(*x.shape[:2], -1, head_dim // 2, 2).contiguous()
        )
        expected = torch.view_as_real(as_complex * phase).flatten(-2)
        assert torch.equal(out[:, :, :offset], x[:, :, :offset])
        assert rel_err(out[:, :, offset:], expected) <= FP32_TOL


@pytest.mark.parametrize(
    ("batch", "seq", "dim", "text_len"), [(1, 5, 48, 2), (3, 4, 80, 0), (2, 3, 100, 3)]
)
def test_gated_residual_matches_per_token_formula(batch, seq, dim, text_len):
    gen = torch.Generator().manual_seed(seq + dim)
    x, y = torch.randn(batch, seq, dim, generator=gen), torch.randn(batch, seq, dim, generator=gen)
    t_gate, v_gate = torch.randn(batch, dim, generator=gen), torch.randn(batch, dim, generator=gen)
    ours = reference.gated_residual(x, y, text_len, t_gate, v_gate)
    for b in range(batch):
        for s in range(seq):
            gate = t_gate[b] if s < text_len else v_gate[b]
            torch.testing.assert_close(ours[b, s], x[b, s] + gate * y[b, s], rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reference_low_precision_keeps_dtype_and_uses_fp32_math(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 48, generator=gen)
    mods = [torch.randn(2, 48, generator=gen) * 0.1 for _ in range(4)]
    out = reference.expert_layernorm_modulate(
        x.to(dtype), None, None, 1e-6, 2, *(m.to(dtype) for m in mods)
    )
    exact = reference.expert_layernorm_modulate(
        x.to(dtype).float(), None, None, 1e-6, 2, *(m.to(dtype).float() for m in mods)
    )
    assert out.dtype == dtype
    # One rounding of the fp32 result: within half an ulp of the output dtype.
    assert torch.equal(out, exact.to(dtype))
