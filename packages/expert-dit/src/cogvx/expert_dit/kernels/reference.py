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

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["expert_layernorm_modulate", "gated_residual", "rope_qk"]


def _layer_norm_fp32(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """LayerNorm over the last dim in fp32 (biased variance, as ``torch.nn.LayerNorm``)."""
    w = None if weight is None else weight.float()
    b = None if bias is None else bias.float()
    return F.layer_norm(x.float(), x.shape[-1:], w, b, eps)


def _per_modality(
    seq_len: int,
    text_len: int,
    text_rows: Callable[[slice], Tensor],
    video_rows: Callable[[slice], Tensor],
    params: tuple[tuple[Tensor, ...], tuple[Tensor, ...]],
) -> Tensor:
    """``cat(text_rows(:text_len), video_rows(text_len:))`` along the sequence dim (dim 1).

    One result per modality and one concatenation. On CPU these references run on small
    tensors, where the number of ops, not the bytes, sets the time: filling a preallocated output
    by slice assignment took 1.3-2x as long on the shapes model's 64-token sequences.
    ``params`` are the (text, video) modulation tensors: an empty modality is still computed
    (on zero rows) while autograd records a tensor that only it uses, so that tensor gets its
    zero gradient rather than none.
    """

    def only(used: tuple[Tensor, ...], unused: tuple[Tensor, ...]) -> bool:
        ids = {id(t) for t in used}
        recording = torch.is_grad_enabled()
        return not any(recording and t.requires_grad and id(t) not in ids for t in unused)

    if text_len == 0 and only(params[1], params[0]):
        return video_rows(slice(None))
    if text_len == seq_len and only(params[0], params[1]):
        return text_rows(slice(None))
    return torch.cat((text_rows(slice(None, text_len)), video_rows(slice(text_len, None))), dim=1)


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

    def modulate(shift: Tensor, scale: Tensor) -> Callable[[slice], Tensor]:
        # [B, D] -> [B, 1, D]: one modulation vector per sample, broadcast over its tokens.
        return lambda rows: torch.addcmul(
            shift.float()[:, None], normed[:, rows], 1 + scale.float()[:, None]
        )

    out = _per_modality(
        x.shape[1],
        text_len,
        modulate(text_shift, text_scale),
        modulate(video_shift, video_scale),
        ((text_shift, text_scale), (video_shift, video_scale)),
    )
    return out.to(x.dtype)


def _rotate_pairs(x: Tensor) -> Tensor:
    """``(x0, x1) -> (-x1, x0)`` on adjacent channel pairs (diffusers ``use_real_unbind_dim=-1``)."""
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)  # [..., d] -> 2 x [..., d/2]
    return torch.stack((-x1, x0), dim=-1).flatten(-2)  # [..., d/2, 2] -> [..., d]


def _rope(x: Tensor, cos: Tensor, sin: Tensor, offset: int) -> Tensor:
    """Rotate rows ``offset:`` of ``x [..., S, d]`` (fp32 arithmetic, result in ``x.dtype``)."""
    video = x[..., offset:, :].float()  # [..., N, d]
    rotated = (video * cos.float() + _rotate_pairs(video) * sin.float()).to(x.dtype)
    return torch.cat((x[..., :offset, :], rotated), dim=-2) if offset else rotated


def rope_qk(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    """Rotary position embedding on the video tokens of ``q`` and ``k`` (docs/transformer.md §RoPE).

    ``q, k [B, H, S, d]``; ``cos, sin [N, d]`` with ``N = S - offset``. Tokens
    ``offset .. S-1`` (the video tokens) become ``x * cos + rot(x) * sin`` where ``rot`` maps each
    adjacent channel pair ``(x0, x1)`` to ``(-x1, x0)``; the first ``offset`` tokens (text) are
    returned unchanged. Equals diffusers ``apply_rotary_emb(..., use_real_unbind_dim=-1)`` applied
    to ``q[:, :, offset:]`` and ``k[:, :, offset:]`` (and SAT ``rotate_half`` with ``(d r), r=2``).
    """
    if q.dtype != k.dtype:
        return _rope(q, cos, sin, offset), _rope(k, cos, sin, offset)
    # One rotation of the stacked pair: half the ops of two (small CPU tensors are op-bound).
    qk = _rope(torch.stack((q, k)), cos, sin, offset)  # [2, B, H, S, d]
    return qk[0], qk[1]


def gated_residual(
    x: Tensor, y: Tensor, text_len: int, text_gate: Tensor, video_gate: Tensor
) -> Tensor:
    """``x + gate * y`` with ``text_gate [B, D]`` on tokens ``:text_len`` and ``video_gate`` after.

    This is the block's residual update ``text += e_g * o_t; video += g * o_v`` (docs/transformer.md §Block),
    done on the concatenated ``[B, S, D]`` sequence. Returns ``x.dtype``.
    """

    def update(gate: Tensor) -> Callable[[slice], Tensor]:
        # [B, D] -> [B, 1, D]: one gate vector per sample, broadcast over that modality's tokens.
        return lambda rows: torch.addcmul(
            x[:, rows].float(), gate.float()[:, None], y[:, rows].float()
        )

    out = _per_modality(
        x.shape[1], text_len, update(text_gate), update(video_gate), ((text_gate,), (video_gate,))
    )
    return out.to(x.dtype)
