"""Plain PyTorch references for the expert-transformer kernels.

These are the exact math the CogVideoX block needs (docs/transformer.md §RoPE, §Expert adaLN, §Block) written for
reading, not speed. They are the CPU path, the fallback when Triton cannot run, and the oracle the
Triton kernels are tested against. Arguments are assumed valid here; the public functions in
:mod:`cogvx.expert_dit.kernels.ops` check them before dispatching.

Numerics: every function computes in float32 and casts the result once to the dtype of the main
input (``x``, ``q``/``k``). diffusers runs the modulation and the gated residual in the model dtype
(rounding after each op); computing in fp32 and rounding once is at least as accurate and is what
the fused kernels do, so the reference and the kernels agree to fp32 rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["expert_layernorm_modulate", "gated_residual", "rope_qk"]


def _layer_norm_fp32(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """LayerNorm over the last dim in fp32 (biased variance, as ``torch.nn.LayerNorm``)."""
    x = x.float()
    mean = x.mean(dim=-1, keepdim=True)  # [B, S, 1]
    var = (x - mean).square().mean(dim=-1, keepdim=True)  # [B, S, 1]
    normed = (x - mean) * torch.rsqrt(var + eps)  # [B, S, D]
    if weight is not None:
        normed = normed * weight.float()
    if bias is not None:
        normed = normed + bias.float()
    return normed


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
    """Shared LayerNorm followed by the modality-specific ("expert") adaLN modulation.

    ``x [B, S, D]`` holds the text tokens ``x[:, :text_len]`` followed by the video tokens
    ``x[:, text_len:]``. One LayerNorm (``weight``/``bias`` of shape ``[D]`` or None, ``eps``) is
    applied to every token; then ``y = LN(x) * (1 + scale) + shift`` with ``(text_shift,
    text_scale)`` (each ``[B, D]``) on the text tokens and ``(video_shift, video_scale)`` on the
    video tokens. This is diffusers ``CogVideoXLayerNormZero`` (docs/transformer.md §Expert adaLN) without the
    modulation Linear, which stays in the model. Returns ``[B, S, D]`` in ``x.dtype``.
    """
    normed = _layer_norm_fp32(x, weight, bias, eps)  # [B, S, D] fp32
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    # [B, D] -> [B, 1, D]: one modulation vector per sample, broadcast over that modality's tokens.
    out[:, :text_len] = (
        normed[:, :text_len] * (1 + text_scale.float()[:, None]) + text_shift.float()[:, None]
    )
    out[:, text_len:] = (
        normed[:, text_len:] * (1 + video_scale.float()[:, None]) + video_shift.float()[:, None]
    )
    return out.to(x.dtype)


def _rotate_pairs(x: Tensor) -> Tensor:
    """``(x0, x1) -> (-x1, x0)`` on adjacent channel pairs (diffusers ``use_real_unbind_dim=-1``)."""
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)  # [..., d] -> 2 x [..., d/2]
    return torch.stack((-x1, x0), dim=-1).flatten(-2)  # [..., d/2, 2] -> [..., d]


def _rope_one(x: Tensor, cos: Tensor, sin: Tensor, offset: int) -> Tensor:
    video = x[:, :, offset:].float()  # [B, H, N, d]
    rotated = video * cos.float() + _rotate_pairs(video) * sin.float()  # cos/sin [N, d] broadcast
    return torch.cat((x[:, :, :offset], rotated.to(x.dtype)), dim=2)  # [B, H, S, d]


def rope_qk(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    """Rotary position embedding on the video tokens of ``q`` and ``k`` (docs/transformer.md §RoPE).

    ``q, k [B, H, S, d]``; ``cos, sin [N, d]`` with ``N = S - offset``. Tokens
    ``offset .. S-1`` (the video tokens) become ``x * cos + rot(x) * sin`` where ``rot`` maps each
    adjacent channel pair ``(x0, x1)`` to ``(-x1, x0)``; the first ``offset`` tokens (text) are
    returned unchanged. Equals diffusers ``apply_rotary_emb(..., use_real_unbind_dim=-1)`` applied
    to ``q[:, :, offset:]`` and ``k[:, :, offset:]`` (and SAT ``rotate_half`` with ``(d r), r=2``).
    """
    return _rope_one(q, cos, sin, offset), _rope_one(k, cos, sin, offset)


def gated_residual(
    x: Tensor, y: Tensor, text_len: int, text_gate: Tensor, video_gate: Tensor
) -> Tensor:
    """``x + gate * y`` with ``text_gate [B, D]`` on tokens ``:text_len`` and ``video_gate`` after.

    This is the block's residual update ``text += e_g * o_t; video += g * o_v`` (docs/transformer.md §Block),
    done on the concatenated ``[B, S, D]`` sequence. Returns ``x.dtype``.
    """
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    out[:, :text_len] = (
        x[:, :text_len].float() + text_gate.float()[:, None] * y[:, :text_len].float()
    )
    out[:, text_len:] = (
        x[:, text_len:].float() + video_gate.float()[:, None] * y[:, text_len:].float()
    )
    return out.to(x.dtype)
