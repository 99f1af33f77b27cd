"""Attention backends for the expert transformer: SDPA (default), xformers (GPU extra), math.

The backend is a runtime choice, never part of a config: pass ``attention_backend=`` to the
model call, or wrap calls in :func:`use_attention_backend`. All backends compute full
(non-causal) softmax attention with scale ``1/sqrt(head_dim)`` on ``q, k, v [B, H, S, d]`` and
accept an optional ``attn_mask`` (boolean, True = may attend, or additive float) broadcastable to
``[B, H, S, S]``, used by packed sequences. The reference model passes no mask (docs/transformer.md §Attention:
every token attends to every text and video token).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextvars import ContextVar
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "AttentionBackend",
    "attention",
    "current_attention_backend",
    "math_attention",
    "use_attention_backend",
]


class AttentionBackend(StrEnum):
    """Which implementation computes ``softmax(q k^T / sqrt(d) + mask) v``."""

    SDPA = "sdpa"  # torch.nn.functional.scaled_dot_product_attention (flash / memory-efficient)
    XFORMERS = "xformers"  # xformers.ops.memory_efficient_attention; CUDA only, optional extra
    MATH = "math"  # plain matmul-softmax-matmul in float32: the readable reference


_current: ContextVar[AttentionBackend] = ContextVar(
    "cogvx_attention_backend", default=AttentionBackend.SDPA
)


def parse_attention_backend(backend: AttentionBackend | str) -> AttentionBackend:
    try:
        return AttentionBackend(backend)
    except ValueError:
        valid = ", ".join(repr(b.value) for b in AttentionBackend)
        raise ValueError(f"attention_backend must be one of {valid}, got {backend!r}") from None


def current_attention_backend() -> AttentionBackend:
    """The backend of the innermost :func:`use_attention_backend` context (default SDPA)."""
    return _current.get()


@contextlib.contextmanager
def use_attention_backend(backend: AttentionBackend | str) -> Iterator[AttentionBackend]:
    """Run model attention with ``backend`` inside the block (nests; thread/task local)."""
    token = _current.set(parse_attention_backend(backend))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _additive_mask(attn_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Boolean mask (True = attend) -> additive 0 / -inf; float masks pass through."""
    if attn_mask.dtype == torch.bool:
        zeros = torch.zeros((), dtype=dtype, device=attn_mask.device)
        return torch.where(
            attn_mask, zeros, torch.tensor(float("-inf"), dtype=dtype, device=attn_mask.device)
        )
    return attn_mask.to(dtype)


def math_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """Reference attention in float32: ``softmax(q k^T / sqrt(d) + mask) v`` -> ``q.dtype``."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale  # [B, H, S, S]
    if attn_mask is not None:
        scores = scores + _additive_mask(attn_mask, torch.float32)
    return torch.matmul(scores.softmax(dim=-1), v.float()).to(q.dtype)  # [B, H, S, d]


def _xformers_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None) -> Tensor:
    try:
        import xformers.ops as xops  # optional GPU extra, imported only when chosen
    except ImportError as err:
        raise ImportError(
            "attention_backend='xformers' needs the optional extra: "
            "pip install 'cogvx-expert-dit[xformers]' (CUDA only)"
        ) from err
    if not q.is_cuda:
        raise ValueError(
            f"attention_backend='xformers' has no kernels for device {q.device.type!r}; "
            "use 'sdpa' or 'math' there"
        )
    bias = None
    if attn_mask is not None:
        batch, heads, seq, _ = q.shape
        bias = _additive_mask(attn_mask, q.dtype).expand(batch, heads, seq, seq)
    # xformers wants [B, S, H, d].
    out = xops.memory_efficient_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias
    )
    return out.transpose(1, 2)  # [B, H, S, d]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    attn_mask: Tensor | None = None,
    backend: AttentionBackend | str | None = None,
) -> Tensor:
    """Full attention on ``q, k, v [B, H, S, d]`` -> ``[B, H, S, d]``.

    ``backend`` None uses :func:`current_attention_backend`.
    """
    backend = current_attention_backend() if backend is None else parse_attention_backend(backend)
    if backend is AttentionBackend.SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    if backend is AttentionBackend.MATH:
        return math_attention(q, k, v, attn_mask)
    return _xformers_attention(q, k, v, attn_mask)
