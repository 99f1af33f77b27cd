"""CUDA checks of the compiled Triton kernels (``-m gpu``; skipped without a GPU).

Run them with the interpreter off (``tests/conftest.py`` turns it on by default, and the
interpreter would happily run on CUDA tensors, testing nothing compiled)::

    TRITON_INTERPRET=0 uv run --package cogvx-expert-dit pytest packages/expert-dit/tests/kernels -m gpu

bf16 tolerance: both sides compute in fp32 from the same bf16 inputs and round once to bf16, so
outputs differ by at most ~1 bf16 ulp (2**-8 relative): 1e-2. Gradients that reduce over many rows
(weight, bias, shift, scale, gate) sum in a different order (the kernel: fp32 per chunk, then fp32
over chunks): 1e-2 as well. fp32 on the GPU: 1e-5 as on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit.kernels import (
    expert_layernorm_modulate,
    gated_residual,
    reference,
    rope_qk,
    use_kernels,
)
from cogvx.expert_dit.kernels.backend import interpreter_enabled, should_use_triton

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(
        interpreter_enabled(),
        reason="TRITON_INTERPRET=1 would run the interpreter, not the compiled kernels; "
        "run with TRITON_INTERPRET=0",
    ),
]

# 2B-like but short: text 226 + 2 latent frames of 30x45 patches, D = 1920, 30 heads of 64.
BATCH, TEXT, VIDEO, DIM, HEADS, HEAD_DIM = 2, 226, 2 * 30 * 45, 1920, 30, 64
TOLS = {torch.bfloat16: 1e-2, torch.float32: 1e-5}


def _assert_close_rel(ours, ref, tol, name):
    assert ours.dtype == ref.dtype, name
    err = ((ours.double() - ref.double()).abs().max() / ref.double().abs().max()).item()
    assert err <= tol, f"{name}: rel err {err:.3g} > {tol}"


def _compare(fn, ref_fn, inputs, grad_inputs, tol):
    with use_kernels("triton"):
        out = fn(*inputs)
    ref = ref_fn(*inputs)
    outs, refs = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
    gen = torch.Generator(device="cuda").manual_seed(0)
    grads_out = [torch.randn(o.shape, device="cuda", generator=gen).to(o.dtype) for o in outs]
    grads = torch.autograd.grad(outs, grad_inputs, grads_out)
    ref_grads = torch.autograd.grad(refs, grad_inputs, grads_out)
    for i, (o, r) in enumerate(zip(outs, refs)):
        _assert_close_rel(o, r, tol, f"output {i}")
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        _assert_close_rel(g, r, tol, f"grad {i}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_expert_adaln_cuda(dtype):
    gen = torch.Generator(device="cuda").manual_seed(1)

    def rand(*shape, s=1.0):
        return (s * torch.randn(*shape, device="cuda", generator=gen)).to(dtype).requires_grad_()

    x = rand(BATCH, TEXT + VIDEO, DIM)
    w, b = rand(DIM, s=0.3), rand(DIM, s=0.3)
    mods = [rand(BATCH, DIM, s=0.5) for _ in range(4)]
    args = (x, w, b, 1e-5, TEXT, *mods)
    _compare(
        expert_layernorm_modulate,
        reference.expert_layernorm_modulate,
        args,
        [x, w, b, *mods],
        TOLS[dtype],
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_rope_cuda(dtype):
    gen = torch.Generator(device="cuda").manual_seed(2)
    seq = TEXT + VIDEO
    # The layout attention produces: [B, S, H, d] viewed as [B, H, S, d].
    q = torch.randn(BATCH, seq, HEADS, HEAD_DIM, device="cuda", generator=gen).to(dtype)
    k = torch.randn(BATCH, seq, HEADS, HEAD_DIM, device="cuda", generator=gen).to(dtype)
    q, k = q.transpose(1, 2).requires_grad_(), k.transpose(1, 2).requires_grad_()
    angles = torch.rand(VIDEO, HEAD_DIM // 2, device="cuda", generator=gen) * 40
    cos = angles.cos().repeat_interleave(2, -1)
    sin = angles.sin().repeat_interleave(2, -1)
    _compare(rope_qk, reference.rope_qk, (q, k, cos, sin, TEXT), [q, k], TOLS[dtype])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gated_residual_cuda(dtype):
    gen = torch.Generator(device="cuda").manual_seed(3)
    x, y = (
        torch.randn(BATCH, TEXT + VIDEO, DIM, device="cuda", generator=gen)
        .to(dtype)
        .requires_grad_()
        for _ in range(2)
    )
    gates = [
        torch.randn(BATCH, DIM, device="cuda", generator=gen).to(dtype).requires_grad_()
        for _ in range(2)
    ]
    _compare(
        gated_residual, reference.gated_residual, (x, y, TEXT, *gates), [x, y, *gates], TOLS[dtype]
    )


def test_auto_picks_triton_on_capable_cuda():
    x = torch.zeros(1, 2, 8, device="cuda", dtype=torch.bfloat16)
    capable = torch.cuda.get_device_capability() >= (8, 0)
    with use_kernels("auto"):
        assert should_use_triton(x) is capable
    with use_kernels("torch"):
        assert should_use_triton(x) is False
