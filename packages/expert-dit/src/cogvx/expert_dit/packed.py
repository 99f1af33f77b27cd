"""Packed forward of :class:`~cogvx.expert_dit.ExpertDiT`: several samples in one sequence.

Multi-Resolution Frame Pack (paper sec. 3, after Patch'n'Pack): samples of different durations
and resolutions are concatenated, sample after sample, as ``[text_0 ; video_0 ; text_1 ;
video_1 ; ...]`` into one sequence of ``S`` rows. Each sample keeps everything it has in the
unpacked forward (docs/transformer.md §Forward, §Block, §Packed forward):

* its own timestep (and ofs): the expert adaLN modulation is gathered per token by sample and by
  modality (text tokens take the text expert's shift/scale/gate, video tokens the video one's);
* its own positions: RoPE tables / sin-cos tables computed from its own token grid, exactly as
  the unpacked forward computes them (interpolated ``linspace`` or extrapolated ``slice`` grid);
* attention restricted to its own tokens (a block-diagonal mask, or one batched attention call
  per run of same-length samples, or a variable-length kernel on CUDA).

So the packed forward equals the per-sample forwards up to floating-point rounding (the test
checks fp32 outputs and gradients at rel 1e-5). It runs the model's own layers through their
public entry points: the block body :meth:`ExpertBlock.forward_modulated` is the one the unpacked
forward uses, given :class:`~cogvx.expert_dit.transformer.TokenModulation` (one modulation row per
token) and a :class:`PackedAttend` core, so kernels, attention backends and the precision policy
apply to packed batches as they do to the unpacked forward.

Inputs are already patchified video tokens ``[N_video, C*pt*p*p]`` with features ordered
``(c, pt, ph, pw)`` and tokens ``(t, h, w)`` row-major per sample (``cogvx.framepack`` collation
produces them), so that frames padded for ``patch_size_t`` are the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .attention import AttentionBackend, attention
from .positions import RopeGrid
from .transformer import ExpertBlock, ExpertDiT, TokenModulation

__all__ = [
    "PackedAttend",
    "PackedAttention",
    "PackedExpertDiT",
    "PackedLayout",
    "packed_forward",
]


class PackedAttention(StrEnum):
    """How attention is kept inside each sample of a packed sequence."""

    AUTO = "auto"  # varlen on CUDA with fp16/bf16, else split
    MASK = "mask"  # one attention call with a boolean block-diagonal mask [S, S]: the plain
    #                reference; computes all S x S scores and needs an S x S mask
    SPLIT = "split"  # one attention call per run of same-length samples (batched): only
    #                  sum(S_i^2) scores, no mask (exact)
    VARLEN = "varlen"  # torch.nn.attention.varlen.varlen_attn (flash / cuDNN, CUDA only)


class PackedLayout:
    """Where every sample's rows are in the packed sequence (all index tensors on ``device``).

    ``text_lengths[i]`` text rows followed by ``t*h*w`` video rows for ``grids[i] = (t, h, w)``.
    """

    def __init__(
        self,
        text_lengths: Sequence[int],
        grids: Sequence[tuple[int, int, int]],
        device: torch.device | str | None = None,
    ) -> None:
        if len(text_lengths) != len(grids) or not grids:
            raise ValueError(
                f"text_lengths ({len(text_lengths)}) and grids ({len(grids)}) must be non-empty "
                "and of the same length (one per sample)"
            )
        for i, g in enumerate(grids):
            if len(g) != 3 or any(isinstance(n, bool) or int(n) != n or int(n) < 1 for n in g):
                raise ValueError(f"grids[{i}]={tuple(g)!r}: expected (t, h, w) token counts >= 1")
        for i, n in enumerate(text_lengths):
            if isinstance(n, bool) or int(n) != n or int(n) < 0:
                raise ValueError(f"text_lengths[{i}]={n!r}: expected an int >= 0")
        self.text_lengths = tuple(int(n) for n in text_lengths)
        self.grids: tuple[tuple[int, int, int], ...] = tuple(
            (int(g[0]), int(g[1]), int(g[2])) for g in grids
        )
        self.video_lengths = tuple(t * h * w for t, h, w in self.grids)
        lengths = [a + b for a, b in zip(self.text_lengths, self.video_lengths)]
        self.seq_lengths = tuple(lengths)
        self.seq_len = sum(lengths)
        self.num_samples = len(lengths)
        # (first row, length, number of samples) per run of consecutive samples of one length
        runs: list[tuple[int, int, int]] = []
        row = 0
        for n in lengths:
            if runs and runs[-1][1] == n:
                runs[-1] = (runs[-1][0], n, runs[-1][2] + 1)
            else:
                runs.append((row, n, 1))
            row += n
        self.length_runs = tuple(runs)
        ids, is_text = [], []
        for i, (n_text, n_video) in enumerate(zip(self.text_lengths, self.video_lengths)):
            ids.append(torch.full((n_text + n_video,), i, dtype=torch.long))
            is_text.append(torch.arange(n_text + n_video) < n_text)
        self.sample_ids = torch.cat(ids).to(device)  # [S]
        self.is_text = torch.cat(is_text).to(device)  # [S] bool
        self.video_index = torch.nonzero(~self.is_text).squeeze(1)  # [N_video] rows of video
        cu = torch.zeros(self.num_samples + 1, dtype=torch.int32)
        cu[1:] = torch.cumsum(torch.tensor(lengths), 0)
        self.cu_seqlens = cu.to(device)

    def interleave(self, text: Tensor, video: Tensor) -> Tensor:
        """``text [N_text, D]``, ``video [N_video, D]`` -> ``[S, D]`` sample after sample."""
        parts = []
        for t, v in zip(text.split(self.text_lengths), video.split(self.video_lengths)):
            parts += [t, v]
        return torch.cat(parts)

    def block_mask(self) -> Tensor:
        """Boolean ``[S, S]``, True where query and key belong to the same sample."""
        return self.sample_ids[:, None] == self.sample_ids[None, :]


class PackedAttend:
    """The attention core of a packed sequence: ``(q, k, v) [1, H, S, d] -> [1, H, S, d]`` with
    every query attending only to keys of its own sample (an
    :data:`~cogvx.expert_dit.transformer.Attend` for :meth:`ExpertBlock.forward_modulated`).

    ``mask`` and ``split`` run :func:`cogvx.expert_dit.attention.attention` (so the attention
    backend applies); ``varlen`` runs PyTorch's variable-length flash kernel on the ``cu_seqlens``.
    """

    def __init__(
        self,
        layout: PackedLayout,
        mode: PackedAttention,
        backend: AttentionBackend | str | None = None,
    ) -> None:
        self.layout, self.mode, self.backend = layout, mode, backend
        self.mask = layout.block_mask()[None, None] if mode is PackedAttention.MASK else None

    def __call__(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        layout = self.layout
        if self.mode is PackedAttention.MASK:
            return attention(q, k, v, attn_mask=self.mask, backend=self.backend)
        if self.mode is PackedAttention.SPLIT:
            # consecutive samples of one length share a batched call: [1, H, k*L, d] ->
            # [k, H, L, d] (frame packs of one resolution are a single call, not k)
            outs = []
            for start, length, count in layout.length_runs:
                stop = start + length * count
                qi, ki, vi = (
                    rearrange(x[0, :, start:stop], "h (k l) d -> k h l d", k=count)
                    for x in (q, k, v)
                )
                oi = attention(qi, ki, vi, backend=self.backend)  # [k, H, L, d]
                outs.append(rearrange(oi, "k h l d -> 1 h (k l) d"))
            return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        from torch.nn.attention.varlen import varlen_attn  # CUDA kernels only

        qv, kv, vv = (rearrange(x[0], "h s d -> s h d") for x in (q, k, v))  # [S, H, d]
        max_len = max(layout.seq_lengths)
        out = varlen_attn(
            qv,
            kv,
            vv,
            layout.cu_seqlens,
            layout.cu_seqlens,
            max_len,
            max_len,
            scale=1.0 / math.sqrt(q.shape[-1]),
        )
        assert isinstance(out, Tensor)  # no return_lse
        return rearrange(out, "s h d -> 1 h s d")


def _resolve_mode(attention_mode: PackedAttention | str, x: Tensor) -> PackedAttention:
    try:
        mode = PackedAttention(attention_mode)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in PackedAttention)
        raise ValueError(f"attention_mode={attention_mode!r}: expected one of {valid}") from None
    varlen_ok = x.is_cuda and x.dtype in (torch.float16, torch.bfloat16)
    if mode is PackedAttention.AUTO:
        return PackedAttention.VARLEN if varlen_ok else PackedAttention.SPLIT
    if mode is PackedAttention.VARLEN and not varlen_ok:
        raise ValueError(
            "attention_mode='varlen' needs CUDA tensors in float16 or bfloat16 (got "
            f"{x.device.type}, {x.dtype}); use 'mask' or 'split' elsewhere"
        )
    return mode


def _block(
    block: ExpertBlock,
    x: Tensor,
    temb: Tensor,
    layout: PackedLayout,
    rope: tuple[Tensor, Tensor] | None,
    attend: PackedAttend,
) -> Tensor:
    """One block on ``x [1, S, D]``: per-sample modulations ``[n, D]`` gathered onto the rows."""
    mod_attn, mod_ff = block.modulations(temb)
    rows_attn = TokenModulation.gather(mod_attn, layout.sample_ids, layout.is_text)  # [S, D] each
    rows_ff = TokenModulation.gather(mod_ff, layout.sample_ids, layout.is_text)
    return block.forward_modulated(x, rows_attn, rows_ff, 0, rope, attend)


def _check_tokens(name: str, t: object, shape: tuple[int, int], what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {what}, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} has dtype {t.dtype}; expected a floating-point tensor")
    if tuple(t.shape) != shape:
        raise ValueError(
            f"{name} must be {what}={list(shape)} for these grids, got {list(t.shape)}"
        )
    return t


def packed_forward(
    model: ExpertDiT,
    video_tokens: Tensor,
    text_embeds: Tensor,
    *,
    text_lengths: Sequence[int],
    grids: Sequence[tuple[int, int, int]],
    timestep: Tensor,
    ofs: Tensor | float | None = None,
    rope_grid: RopeGrid | str | None = None,
    attention_mode: PackedAttention | str = PackedAttention.AUTO,
    attention_backend: AttentionBackend | str | None = None,
) -> Tensor:
    """Run ``model`` on a packed sequence; returns the predicted video tokens ``[N_video, P_out]``.

    Every layer is the model's own: the patch embedding (:meth:`PatchEmbed.embed_tokens`), the
    time embedding (:meth:`ExpertDiT.embed_time`), the blocks through
    :meth:`ExpertBlock.forward_modulated` with per-token modulation (so the fused kernels, the
    half-precision matmul policy and the attention backends apply) and the output norm
    (:meth:`AdaptiveNormOut.modulate`); gradient checkpointing follows the model's switch.

    Args:
        model: the transformer whose weights are used (its unpacked forward is not called).
        video_tokens: ``[N_video, C_in*pt*p*p]`` patchified latents of all samples, in order.
        text_embeds: ``[N_text, text_embed_dim]`` text embeddings of all samples, in order.
        text_lengths: text rows per sample (may differ between samples).
        grids: token grid ``(t, h, w)`` per sample (latent frames / pt, height / p, width / p).
        timestep: ``[n]`` one timestep per sample (or a scalar / ``[1]`` for all).
        ofs: the 1.5-I2V offset condition, scalar or ``[n]``; as the unpacked forward.
        rope_grid: ``"linspace"`` / ``"slice"``; default from the config, as the unpacked forward.
        attention_mode: see :class:`PackedAttention`.
        attention_backend: the attention backend for ``mask`` / ``split`` (sdpa, math, xformers).

    Output features are ordered ``(c, pt, p, p)`` like the inputs: ``P_out = C_out*pt*p*p``.
    """
    config = model.config
    layout = PackedLayout(text_lengths, grids, device=model.device)
    n = layout.num_samples
    video_tokens = _check_tokens(
        "video_tokens",
        video_tokens,
        (sum(layout.video_lengths), config.patch_dim),
        "[N_video, C*pt*p*p]",
    )
    text_embeds = _check_tokens(
        "text_embeds",
        text_embeds,
        (sum(layout.text_lengths), config.text_embed_dim),
        "[N_text, text_embed_dim]",
    )
    for g, n_text in zip(layout.grids, layout.text_lengths):
        model.check_native_size(
            g[0] * config.patch_t, g[1] * config.patch_size, g[2] * config.patch_size, n_text
        )
    grid_type = model.rope_grid_type(rope_grid)
    dtype, device = model.dtype, model.device

    temb = model.embed_time(timestep, ofs, batch=n)  # [n, E]
    embed = model.patch_embed
    text = embed.text_proj(text_embeds.to(dtype))  # [N_text, D]
    video = embed.embed_tokens(video_tokens.to(dtype))  # [N_video, D]
    if config.use_learned_positional_embeddings:
        table = embed.pos_embedding[0].to(dtype)  # [L + N_native, D]
        text = text + torch.cat([table[:n_text] for n_text in layout.text_lengths])
        video = video + torch.cat([table[n_text:] for n_text in layout.text_lengths])
    elif config.uses_sincos_positions:
        video = video + torch.cat([model.sincos(g, device, dtype) for g in layout.grids])
    x = model.embedding_dropout(layout.interleave(text, video))[None]  # [1, S, D]

    rope = None
    if grid_type is not None:
        head_dim = config.attention_head_dim
        cos_parts, sin_parts = [], []
        for g, n_text in zip(layout.grids, layout.text_lengths):
            cos, sin = model.rope(g, grid_type, device)  # [N_i, d] float32, cached per shape
            cos_parts += [cos.new_ones(n_text, head_dim), cos]  # text rows: identity rotation
            sin_parts += [sin.new_zeros(n_text, head_dim), sin]
        rope = (torch.cat(cos_parts), torch.cat(sin_parts))  # [S, d] each

    attend = PackedAttend(layout, _resolve_mode(attention_mode, x), attention_backend)
    for block in model.blocks():
        if model.gradient_checkpointing and torch.is_grad_enabled():
            x = checkpoint(_block, block, x, temb, layout, rope, attend, use_reentrant=False)
        else:
            x = _block(block, x, temb, layout, rope, attend)

    out = model.norm_final(x[0, layout.video_index])  # [N_video, D]
    shift, scale = model.norm_out.modulation(temb)  # [n, D] each
    video_ids = layout.sample_ids[layout.video_index]  # [N_video]
    out = model.norm_out.modulate(
        out, shift.index_select(0, video_ids), scale.index_select(0, video_ids)
    )
    return model.proj_out(out)  # [N_video, C_out*pt*p*p]


class PackedExpertDiT(nn.Module):
    """``nn.Module`` face of :func:`packed_forward` (for DDP / Lightning): shares ``dit``'s weights."""

    def __init__(self, dit: ExpertDiT) -> None:
        super().__init__()
        self.dit = dit

    def forward(
        self,
        video_tokens: Tensor,
        text_embeds: Tensor,
        *,
        text_lengths: Sequence[int],
        grids: Sequence[tuple[int, int, int]],
        timestep: Tensor,
        **kwargs: object,
    ) -> Tensor:
        return packed_forward(
            self.dit,
            video_tokens,
            text_embeds,
            text_lengths=text_lengths,
            grids=grids,
            timestep=timestep,
            **kwargs,  # type: ignore[arg-type]
        )
