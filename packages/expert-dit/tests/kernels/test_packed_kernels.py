"""The packed forward runs the fused kernels (Triton interpreter on CPU), and the per-row kernel
forms equal their plain math.

Tolerance: fp32 max|a - b| / max|b| <= 1e-5 for outputs and gradients.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cogvx.expert_dit import DiTConfig, ExpertDiT, packed_forward
from cogvx.expert_dit.kernels import (
    KernelBackend,
    gated_residual_rows,
    layernorm_modulate_rows,
    use_kernels,
)

TOL = 1e-5


def _rows_inputs(rows: int, dim: int):
    g = torch.Generator().manual_seed(rows + dim)
    x = torch.randn(rows, dim, generator=g).requires_grad_()
    y = torch.randn(rows, dim, generator=g).requires_grad_()
    w = (1 + 0.1 * torch.randn(dim, generator=g)).requires_grad_()
    b = (0.1 * torch.randn(dim, generator=g)).requires_grad_()
    shift, scale, gate = (torch.randn(rows, dim, generator=g).requires_grad_() for _ in range(3))
    return x, y, w, b, shift, scale, gate


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_rows_forms_equal_plain_math(request, rel_err, backend):
    if backend == "triton":
        request.getfixturevalue("triton_cpu")
    x, y, w, b, shift, scale, gate = _rows_inputs(37, 48)
    grad_out = torch.randn(37, 48, generator=torch.Generator().manual_seed(5))
    with use_kernels(KernelBackend(backend)):
        ours = layernorm_modulate_rows(x, w, b, 1e-5, shift, scale)
        ours_g = gated_residual_rows(x, y, gate)
    plain = F.layer_norm(x, (48,), w, b, 1e-5) * (1 + scale) + shift
    plain_g = x + gate * y
    for got, ref, inputs in (
        (ours, plain, (x, w, b, shift, scale)),
        (ours_g, plain_g, (x, y, gate)),
    ):
        assert rel_err(got, ref) <= TOL
        grads = torch.autograd.grad(got, inputs, grad_out)
        ref_grads = torch.autograd.grad(ref, inputs, grad_out)
        for a, r in zip(grads, ref_grads):
            assert rel_err(a, r) <= TOL


def _graph_nodes(t: torch.Tensor) -> set[str]:
    seen, names, stack = set(), set(), [t.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    return names


def test_packed_forward_runs_the_triton_kernels(triton_cpu, rel_err):
    config = DiTConfig.tiny(use_rotary_positional_embeddings=True, num_layers=1)
    torch.manual_seed(0)
    model = ExpertDiT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    grids, text_lengths = [(1, 2, 3), (2, 2, 2)], [3, 2]
    g = torch.Generator().manual_seed(1)
    tokens = torch.randn(6 + 8, config.patch_dim, generator=g).requires_grad_()
    text = torch.randn(5, config.text_embed_dim, generator=g)
    kwargs = dict(text_lengths=text_lengths, grids=grids, timestep=torch.tensor([10, 500]))

    out = packed_forward(model, tokens, text, attention_mode="split", **kwargs)
    nodes = _graph_nodes(out)
    for fused in ("_ExpertAdaLNBackward", "_GatedResidualBackward", "_RopeQKBackward"):
        assert fused in nodes, (fused, sorted(nodes))
    (grad,) = torch.autograd.grad(out.square().sum(), tokens)
    with use_kernels("torch"):
        ref = packed_forward(model, tokens, text, attention_mode="split", **kwargs)
        (ref_grad,) = torch.autograd.grad(ref.square().sum(), tokens)
    assert not {"_ExpertAdaLNBackward", "_GatedResidualBackward"} & _graph_nodes(ref)
    assert rel_err(out, ref) <= TOL
    assert rel_err(grad, ref_grad) <= TOL
