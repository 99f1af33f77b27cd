"""Public kernel functions: check the arguments, then run Triton or the PyTorch reference.

The math of each function is defined by :mod:`cogvx.expert_dit.kernels.reference`; the Triton
modules (imported lazily, so this package imports without triton) implement the same math with a
fused forward and backward. :func:`~cogvx.expert_dit.kernels.backend.should_use_triton` decides per
call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cogvx.expert_dit.kernels import reference
from cogvx.expert_dit.kernels.backend import should_use_triton

__all__ = [
    "expert_layernorm_modulate",
    "gated_residual",
    "gated_residual_rows",
    "layernorm_modulate_rows",
    "rope_qk",
]

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check_tensor(
    name: str, t: object, shape: tuple[int, ...] | None = None, ndim: int | None = None
) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {tuple(t.shape)}")
    if shape is not None and tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    return t


def _check_split(name: str, value: object, seq_len: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= seq_len:
        raise ValueError(f"{name} must be in [0, {seq_len}] (the sequence length), got {value}")
    return value


def _check_same_device(**tensors: Tensor | None) -> None:
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name}={dev}" for name, dev in devices.items())
        raise ValueError(f"all tensors must be on one device, got {listing}")


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
    """``LN(x) * (1 + scale) + shift`` with text params on ``x[:, :text_len]``, video params after.

    Shapes: ``x [B, S, D]``, ``weight``/``bias`` ``[D]`` or None, each shift/scale ``[B, D]``.
    Statistics and arithmetic in fp32; returns ``x.dtype``. Reference:
    :func:`cogvx.expert_dit.kernels.reference.expert_layernorm_modulate` (diffusers
    ``CogVideoXLayerNormZero`` after its Linear, docs/transformer.md §Expert adaLN). Differentiable in ``x``,
    ``weight``, ``bias`` and all shift/scale tensors on both backends.
    """
    _check_tensor("x", x, ndim=3)
    batch, seq_len, dim = x.shape
    if weight is not None:
        _check_tensor("weight", weight, shape=(dim,))
    if bias is not None:
        _check_tensor("bias", bias, shape=(dim,))
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a float >= 0, got {eps!r}")
    _check_split("text_len", text_len, seq_len)
    mods = {
        "text_shift": text_shift,
        "text_scale": text_scale,
        "video_shift": video_shift,
        "video_scale": video_scale,
    }
    for name, t in mods.items():
        _check_tensor(name, t, shape=(batch, dim))
    _check_same_device(x=x, weight=weight, bias=bias, **mods)
    args = (x, weight, bias, float(eps), text_len, text_shift, text_scale, video_shift, video_scale)
    if x.numel() > 0 and should_use_triton(x, weight, bias, *mods.values()):
        from cogvx.expert_dit.kernels import triton_adaln

        return triton_adaln.expert_layernorm_modulate(*args)
    return reference.expert_layernorm_modulate(*args)


def rope_qk(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    """Rotate the video tokens ``offset:`` of ``q`` and ``k`` (``[B, H, S, d]``) by ``cos``/``sin`` ``[S-offset, d]``.

    ``x * cos + rot(x) * sin`` with ``rot: (x0, x1) -> (-x1, x0)`` on adjacent channel pairs;
    tokens before ``offset`` are unchanged. fp32 arithmetic, outputs in ``q.dtype``/``k.dtype``.
    Reference: :func:`cogvx.expert_dit.kernels.reference.rope_qk` (diffusers ``apply_rotary_emb``
    with ``use_real_unbind_dim=-1``, docs/transformer.md §RoPE). Differentiable in ``q`` and ``k``; on the
    Triton path ``cos``/``sin`` are constants (they get no gradient).
    """
    _check_tensor("q", q, ndim=4)
    _check_tensor("k", k, shape=tuple(q.shape))
    seq_len, head_dim = q.shape[2], q.shape[3]
    if head_dim % 2 != 0:
        raise ValueError(
            f"the head dim (last dim of q) must be even for pairwise rotation, got {head_dim}"
        )
    _check_split("offset", offset, seq_len)
    _check_tensor("cos", cos, shape=(seq_len - offset, head_dim))
    _check_tensor("sin", sin, shape=(seq_len - offset, head_dim))
    _check_same_device(q=q, k=k, cos=cos, sin=sin)
    if q.numel() > 0 and should_use_triton(q, k, cos, sin):
        from cogvx.expert_dit.kernels import triton_rope

        return triton_rope.rope_qk(q, k, cos, sin, offset)
    return reference.rope_qk(q, k, cos, sin, offset)


def gated_residual(
    x: Tensor, y: Tensor, text_len: int, text_gate: Tensor, video_gate: Tensor
) -> Tensor:
    """``x + gate * y`` with ``text_gate [B, D]`` on tokens ``:text_len`` and ``video_gate`` after.

    ``x, y [B, S, D]``; fp32 arithmetic, returns ``x.dtype``. Reference:
    :func:`cogvx.expert_dit.kernels.reference.gated_residual` (the block's ``video += g * o_v;
    text += e_g * o_t``, docs/transformer.md §Block). Differentiable in ``x``, ``y`` and both gates.
    """
    _check_tensor("x", x, ndim=3)
    _check_tensor("y", y, shape=tuple(x.shape))
    batch, seq_len, dim = x.shape
    _check_split("text_len", text_len, seq_len)
    _check_tensor("text_gate", text_gate, shape=(batch, dim))
    _check_tensor("video_gate", video_gate, shape=(batch, dim))
    _check_same_device(x=x, y=y, text_gate=text_gate, video_gate=video_gate)
    if x.numel() > 0 and should_use_triton(x, y, text_gate, video_gate):
        from cogvx.expert_dit.kernels import triton_gate

        return triton_gate.gated_residual(x, y, text_len, text_gate, video_gate)
    return reference.gated_residual(x, y, text_len, text_gate, video_gate)


# ----------------------------------------------------------------------------- per-row forms
# A packed sequence gives every row its own modulation (its sample's timestep, its modality's
# expert). Viewing the rows ``x [R, D]`` as a batch of R one-row sequences with no text rows
# (``[R, 1, D]``, ``text_len=0``) makes that the per-sample form above, so the same references and
# Triton kernels (forward and backward) run on packed batches.
def layernorm_modulate_rows(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    shift: Tensor,
    scale: Tensor,
) -> Tensor:
    """``LN(x) * (1 + scale) + shift`` with one ``shift``/``scale`` row per row of ``x [R, D]``.

    Same math, precision and backends as :func:`expert_layernorm_modulate` (of which it is the
    ``[R, 1, D]``, ``text_len=0`` case). Returns ``[R, D]`` in ``x.dtype``.
    """
    _check_tensor("x", x, ndim=2)
    _check_tensor("shift", shift, shape=tuple(x.shape))
    _check_tensor("scale", scale, shape=tuple(x.shape))
    out = expert_layernorm_modulate(x[:, None], weight, bias, eps, 0, shift, scale, shift, scale)
    return out[:, 0]  # [R, 1, D] -> [R, D]


def gated_residual_rows(x: Tensor, y: Tensor, gate: Tensor) -> Tensor:
    """``x + gate * y`` with one ``gate`` row per row of ``x, y [R, D]`` (fp32, ``x.dtype``).

    The ``[R, 1, D]``, ``text_len=0`` case of :func:`gated_residual` (same backends).
    """
    _check_tensor("x", x, ndim=2)
    _check_tensor("y", y, shape=tuple(x.shape))
    _check_tensor("gate", gate, shape=tuple(x.shape))
    return gated_residual(x[:, None], y[:, None], 0, gate, gate)[:, 0]
