"""The kernels' math against diffusers 0.42.1, the parity oracle (test-only dependency).

``CogVideoXLayerNormZero`` (shared LayerNorm + expert modulation, docs/transformer.md §Expert adaLN) and
``apply_rotary_emb(use_real_unbind_dim=-1)`` with tables from ``get_3d_rotary_pos_embed``
(docs/transformer.md §RoPE), in fp32, compared with the reference and (Triton interpreter) the kernels.
Tolerance: max|ours - diffusers| / max|diffusers| <= 1e-5.
"""

from __future__ import annotations

import pytest
import torch

from cogvx.expert_dit.kernels import (
    KernelBackend,
    expert_layernorm_modulate,
    gated_residual,
    rope_qk,
    use_kernels,
)

diffusers_embeddings = pytest.importorskip("diffusers.models.embeddings")
diffusers_normalization = pytest.importorskip("diffusers.models.normalization")

FP32_TOL = 1e-5
BACKENDS = [KernelBackend.TORCH, KernelBackend.TRITON]


def _backend(choice, request):
    if choice is KernelBackend.TRITON:
        request.getfixturevalue("triton_cpu")  # skips without triton / interpreter
    return use_kernels(choice)


@pytest.mark.parametrize("choice", BACKENDS)
def test_expert_adaln_and_gates_match_cogvideox_layernorm_zero(choice, request, rel_err):
    torch.manual_seed(0)
    batch, text_len, video_len, dim = 2, 5, 7, 48
    module = diffusers_normalization.CogVideoXLayerNormZero(16, dim, eps=1e-5)
    with torch.no_grad():  # non-trivial LayerNorm affine (default init is 1 / 0)
        module.norm.weight.normal_(1.0, 0.3)
        module.norm.bias.normal_(0.0, 0.3)
    video, text, temb = (
        torch.randn(batch, video_len, dim),
        torch.randn(batch, text_len, dim),
        torch.randn(batch, 16),
    )
    with torch.no_grad():
        video_n, text_n, gate, text_gate = module(video, text, temb)
        shift, scale, _, t_shift, t_scale, _ = module.linear(module.silu(temb)).chunk(6, dim=1)
        with _backend(choice, request):
            ours = expert_layernorm_modulate(
                torch.cat([text, video], dim=1),
                module.norm.weight,
                module.norm.bias,
                module.norm.eps,
                text_len,
                t_shift,
                t_scale,
                shift,
                scale,
            )
            assert rel_err(ours, torch.cat([text_n, video_n], dim=1)) <= FP32_TOL
            # The block's residual update with diffusers' gates ([B, 1, D] there, [B, D] here).
            update = torch.randn(batch, text_len + video_len, dim)
            expected = torch.cat(
                [text + text_gate * update[:, :text_len], video + gate * update[:, text_len:]],
                dim=1,
            )
            residual = gated_residual(
                torch.cat([text, video], dim=1), update, text_len, text_gate[:, 0], gate[:, 0]
            )
            assert rel_err(residual, expected) <= FP32_TOL


@pytest.mark.parametrize("choice", BACKENDS)
def test_rope_matches_apply_rotary_emb_with_3d_tables(choice, request, rel_err):
    torch.manual_seed(1)
    text_len, frames, grid_h, grid_w, heads, head_dim = 3, 2, 3, 5, 2, 64
    cos, sin = diffusers_embeddings.get_3d_rotary_pos_embed(
        embed_dim=head_dim,
        crops_coords=((0, 0), (grid_h, grid_w)),
        grid_size=(grid_h, grid_w),
        temporal_size=frames,
        use_real=True,
    )
    seq = text_len + frames * grid_h * grid_w
    assert cos.shape == (seq - text_len, head_dim)
    q, k = torch.randn(2, heads, seq, head_dim), torch.randn(2, heads, seq, head_dim)
    with _backend(choice, request):
        q_out, k_out = rope_qk(q, k, cos, sin, text_len)
    for x, out in ((q, q_out), (k, k_out)):
        video = diffusers_embeddings.apply_rotary_emb(
            x[:, :, text_len:], (cos, sin), use_real=True, use_real_unbind_dim=-1
        )
        assert rel_err(out, torch.cat([x[:, :, :text_len], video], dim=2)) <= FP32_TOL
