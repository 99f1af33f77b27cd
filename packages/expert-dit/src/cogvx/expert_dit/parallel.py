"""Sequence-parallel forward of :class:`~cogvx.expert_dit.ExpertDiT` on ``torch.distributed``.

The joint sequence ``[text ; video]`` (docs/transformer.md §Forward) is split over the ``P`` ranks
of a process group: every rank holds all ``L`` text tokens and one contiguous ``N / P`` slice of
the ``N`` video tokens (``(t, h, w)`` row-major, so a slice is a run of whole frames when ``P``
divides the token frames). Everything but attention is per token (expert adaLN, the gated
residuals, the FFN, the output head), so a rank runs the model's own block body
:meth:`ExpertBlock.forward_modulated` on its ``L + N/P`` rows, with the RoPE rows of its own video
tokens (the positions of the full grid, sliced: RoPE is applied per shard after the QK norm as in
the unsharded forward). Only the attention core differs, an
:data:`~cogvx.expert_dit.transformer.Attend` that sees every token:

* :class:`UlyssesAttend` (DeepSpeed-Ulysses, Jacobs et al. 2023 §3): one all-to-all turns
  ``q, k, v [B, H, N/P, d]`` (all heads, a slice of the tokens) into ``[B, H/P, N, d]`` (a slice of
  the heads, all tokens); the replicated text rows take the same heads locally; full attention
  over ``L + N`` keys per head; an all-to-all back for the video rows and an all-gather of the head
  slices for the text rows. Needs ``P | heads``.
* :class:`RingAttend` (Ring Attention, Liu et al. 2023 §3): the local queries attend to the
  text keys and to every rank's video keys/values as they travel once around the ring
  (``P - 1`` point-to-point exchanges per layer), partial results merged exactly by their
  log-sum-exp. Any ``P`` dividing the video tokens.

Text tokens are handled as in the unsharded forward: one full softmax over text and video keys for
every query. The text rows are computed redundantly on every rank (they are ``L = 226`` of
``17 776`` tokens at 5B 720x480x49). At the end the ranks all-gather their predicted video tokens,
so every rank returns the whole ``[B, F, C, H, W]`` prediction and the samplers stay in step
without further exchange. Inference only (the collectives are not differentiated).

``torch.distributed`` only; the ranks' communication can be counted by a :class:`CommRecorder`
(benchmarks/parallel_bench.py, BENCHMARKS.md §Parallel inference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import torch
import torch.distributed as dist
from einops import rearrange
from torch import Tensor

from .attention import AttentionBackend, attention, current_attention_backend
from .attention import parse_attention_backend as _parse_attention_backend
from .geometry import unpatchify
from .positions import RopeGrid, token_grid
from .transformer import ExpertDiT

__all__ = [
    "CommRecorder",
    "RingAttend",
    "SequenceParallel",
    "SequenceParallelMode",
    "UlyssesAttend",
    "ring_attention_reference",
    "sequence_parallel_forward",
]


class SequenceParallelMode(StrEnum):
    """How attention sees the tokens of the other ranks."""

    ULYSSES = "ulysses"  # all-to-all head/sequence exchange; P must divide the heads
    RING = "ring"  # key/value blocks passed around the ring, log-sum-exp merge


class CommRecorder(Protocol):
    """Receives ``(operation, bytes this rank sends)`` for every collective a parallel mode runs."""

    def record(self, op: str, nbytes: int) -> None: ...


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass(frozen=True)
class SequenceParallel:
    """A sequence-parallel group: ``group`` (None: the default group), the mode, an optional
    recorder of the bytes sent. Runtime state: never part of a config."""

    group: dist.ProcessGroup | None = None
    mode: SequenceParallelMode = SequenceParallelMode.ULYSSES
    recorder: CommRecorder | None = None

    def __post_init__(self) -> None:
        try:
            mode = SequenceParallelMode(self.mode)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in SequenceParallelMode)
            raise ValueError(f"parallel.sp_mode={self.mode!r}: expected one of {valid}") from None
        object.__setattr__(self, "mode", mode)

    @property
    def size(self) -> int:
        return dist.get_world_size(self.group)

    @property
    def rank(self) -> int:
        return dist.get_rank(self.group)

    def record(self, op: str, nbytes: int) -> None:
        if self.recorder is not None:
            self.recorder.record(op, nbytes)

    # ---- the collectives (sent bytes recorded as a direct algorithm sends them) -------------
    def all_to_all(self, x: Tensor) -> Tensor:
        """``x [P, ...]``: row ``j`` goes to rank ``j``; returns row ``j`` from rank ``j``."""
        x = x.contiguous()  # (empty_like keeps a view's strides; the collective wants dense rows)
        out = torch.empty_like(x)
        dist.all_to_all_single(out, x, group=self.group)
        self.record("all_to_all", _nbytes(x) * (self.size - 1) // self.size)
        return out

    def all_gather(self, x: Tensor, dim: int) -> Tensor:
        """Every rank's ``x``, concatenated along ``dim`` in rank order."""
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(self.size)]
        dist.all_gather(parts, x, group=self.group)
        self.record("all_gather", _nbytes(x) * (self.size - 1))
        return torch.cat(parts, dim=dim)

    def shift(self, x: Tensor) -> Tensor:
        """Send ``x`` to the next rank of the ring, return the previous rank's."""
        size, rank = self.size, self.rank
        x = x.contiguous()
        out = torch.empty_like(x)
        nxt, prv = (rank + 1) % size, (rank - 1) % size
        if self.group is not None:  # P2P peers are global ranks
            nxt, prv = dist.get_global_rank(self.group, nxt), dist.get_global_rank(self.group, prv)
        ops = [
            dist.P2POp(dist.isend, x, nxt, self.group),
            dist.P2POp(dist.irecv, out, prv, self.group),
        ]
        for request in dist.batch_isend_irecv(ops):
            request.wait()
        self.record("send_recv", _nbytes(x))
        return out


# ===================================================================================== Ulysses
class UlyssesAttend:
    """Attention core of a sequence shard, all-to-all form: ``q, k, v [B, H, L + n, d]`` (the
    replicated ``L`` text rows, then this rank's ``n = N/P`` video rows) -> ``[B, H, L + n, d]``,
    equal to the matching rows of full attention over ``L + N`` tokens."""

    def __init__(
        self, sp: SequenceParallel, text_len: int, backend: AttentionBackend | None = None
    ) -> None:
        self.sp, self.text_len, self.backend = sp, text_len, backend

    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        sp, L = self.sp, self.text_len
        p, r = sp.size, sp.rank
        heads = q.shape[1]
        h = heads // p
        qkv = torch.stack([q, k, v])  # [3, B, H, L + n, d]
        video = rearrange(qkv[:, :, :, L:], "t b (p h) n d -> p t b h n d", p=p)
        video = rearrange(sp.all_to_all(video), "p t b h n d -> t b h (p n) d")  # [3, B, h, N, d]
        text = qkv[:, :, r * h : (r + 1) * h, :L]  # [3, B, h, L, d]: my heads, locally
        full = torch.cat([text, video], dim=3)  # [3, B, h, L + N, d]
        out = attention(full[0], full[1], full[2], backend=self.backend)  # [B, h, L + N, d]
        out_text = sp.all_gather(out[:, :, :L], dim=1)  # [B, H, L, d]
        out_video = rearrange(out[:, :, L:], "b h (p n) d -> p b h n d", p=p)
        out_video = rearrange(sp.all_to_all(out_video), "p b h n d -> b (p h) n d")  # [B, H, n, d]
        return torch.cat([out_text, out_video], dim=2)


# ===================================================================================== ring
def _block_attention(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax attention of ``q [B, H, S, d]`` on one key block ``k, v [B, H, m, d]`` in float32:
    the block's normalised output ``[B, H, S, d]`` and its log-sum-exp ``[B, H, S, 1]``."""
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)  # [B, H, S, 1]
    return torch.matmul(torch.exp(scores - lse), v.float()), lse


def _merge(out: Tensor, lse: Tensor, block_out: Tensor, block_lse: Tensor) -> tuple[Tensor, Tensor]:
    """Exact merge of two softmax partial results over disjoint key sets (by their log-sum-exp)."""
    new_lse = torch.logaddexp(lse, block_lse)
    return out * torch.exp(lse - new_lse) + block_out * torch.exp(block_lse - new_lse), new_lse


def ring_attention_reference(q: Tensor, key_blocks: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Full attention of ``q`` over the concatenation of ``key_blocks`` computed block by block with
    the log-sum-exp merge (the arithmetic of :class:`RingAttend`, on one process)."""
    out, lse = _block_attention(q, *key_blocks[0])
    for k, v in key_blocks[1:]:
        out, lse = _merge(out, lse, *_block_attention(q, k, v))
    return out.to(q.dtype)


class RingAttend:
    """Attention core of a sequence shard, ring form (same contract as :class:`UlyssesAttend`).

    The local queries attend to the text keys, then to the video key/value blocks of rank ``r``,
    ``r - 1``, ... as they arrive from the previous rank; each block's float32 softmax result is
    merged by log-sum-exp, so the result equals one softmax over all keys. Scores are computed in
    float32 block by block (the readable form; a fused kernel returning the log-sum-exp is the
    GPU fast path not written here).
    """

    def __init__(self, sp: SequenceParallel, text_len: int) -> None:
        self.sp, self.text_len = sp, text_len

    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        sp, L = self.sp, self.text_len
        out, lse = _block_attention(q, k[:, :, :L], v[:, :, :L])
        kv = torch.stack([k[:, :, L:], v[:, :, L:]])  # [2, B, H, n, d]: this rank's block
        for step in range(sp.size):
            incoming = sp.shift(kv) if step < sp.size - 1 else None
            out, lse = _merge(out, lse, *_block_attention(q, kv[0], kv[1]))
            if incoming is not None:
                kv = incoming
        return out.to(q.dtype)


# ===================================================================================== forward
def _check_divides(sp: SequenceParallel, model: ExpertDiT, video_tokens: int, grid: tuple) -> None:
    p = sp.size
    heads = model.config.num_attention_heads
    if sp.mode is SequenceParallelMode.ULYSSES and heads % p:
        valid = [d for d in range(1, heads + 1) if heads % d == 0]
        raise ValueError(
            f"parallel.sp={p} must divide the transformer's num_attention_heads={heads} with "
            f"sp_mode='ulysses' (valid sp: {valid}); sp_mode='ring' has no such limit"
        )
    if video_tokens % p:
        valid = [d for d in range(1, min(video_tokens, 64) + 1) if video_tokens % d == 0]
        raise ValueError(
            f"parallel.sp={p} must divide the video tokens N={video_tokens} (token grid "
            f"(frames, h, w)={tuple(grid)}); valid sp up to 64: {valid}"
        )


def sequence_parallel_forward(
    model: ExpertDiT,
    latents: Tensor,
    text_embeds: Tensor,
    timestep: Tensor | int | float,
    *,
    sp: SequenceParallel,
    ofs: Tensor | float | None = None,
    rope_grid: RopeGrid | str | None = None,
    pad_frames: bool = False,
    attention_backend: AttentionBackend | str | None = None,
) -> Tensor:
    """``model(latents, text_embeds, timestep, ...)`` with the sequence split over ``sp.group``.

    Every rank passes the same full inputs and gets the same full ``[B, F, C_out, H, W]``
    prediction (module docstring). The embeddings, the time/ofs conditioning, the absolute
    positions and the RoPE tables are the model's own, computed for the whole grid; each rank then
    keeps its video rows. Arguments as :meth:`ExpertDiT.forward` (no ``attn_mask``: full
    attention only). Raises ``ValueError`` naming ``parallel.sp`` when the degree does not divide
    the heads (Ulysses) or the video tokens.
    """
    if not isinstance(model, ExpertDiT):
        raise TypeError(f"model must be an ExpertDiT, got {type(model).__name__}")
    config = model.config
    latents, pad = model._check_latents(latents, pad_frames)
    batch, frames, _, height, width = latents.shape
    text_embeds = model._check_text(text_embeds, batch)
    temb = model.embed_time(timestep, ofs, batch=batch)  # [B, time_embed_dim]
    grid = token_grid(config, frames, height, width)
    model.check_native_size(frames, height, width, text_embeds.shape[1])
    n_video = grid[0] * grid[1] * grid[2]
    _check_divides(sp, model, n_video, grid)
    backend = (
        current_attention_backend()
        if attention_backend is None
        else _parse_attention_backend(attention_backend)
    )
    grid_type = model.rope_grid_type(rope_grid)

    x = model.patch_embed(text_embeds, latents)  # [B, L + N, D]
    text_len = text_embeds.shape[1]
    x = model._add_absolute_positions(x, text_len, grid)
    x = model.embedding_dropout(x)
    n = n_video // sp.size
    lo = sp.rank * n
    x = torch.cat([x[:, :text_len], x[:, text_len + lo : text_len + lo + n]], dim=1)  # [B, L+n, D]
    rope = None
    if grid_type is not None:
        cos, sin = model.rope(grid, grid_type, latents.device)  # [N, d] each
        rope = (cos[lo : lo + n], sin[lo : lo + n])  # this shard's positions

    attend = (
        UlyssesAttend(sp, text_len, backend)
        if sp.mode is SequenceParallelMode.ULYSSES
        else RingAttend(sp, text_len)
    )
    for block in model.blocks():
        mod_attn, mod_ff = block.modulations(temb)
        x = block.forward_modulated(x, mod_attn, mod_ff, text_len, rope, attend)

    video = model.norm_final(x[:, text_len:])  # [B, n, D]
    video = model.proj_out(model.norm_out(video, temb))  # [B, n, C_out * pt * p * p]
    video = sp.all_gather(video, dim=1)  # [B, N, C_out * pt * p * p]
    out = unpatchify(video, grid, config.patch_size, config.patch_t)  # [B, F, C_out, H, W]
    return out[:, pad:] if pad else out
