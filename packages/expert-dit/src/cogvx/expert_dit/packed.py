"""Packed forward of :class:`~cogvx.expert_dit.ExpertDiT`: several samples in one sequence.

Multi-Resolution Frame Pack (paper sec. 3, after Patch'n'Pack): samples of different durations
and resolutions are concatenated, sample after sample, as ``[text_0 ; video_0 ; text_1 ;
video_1 ; ...]`` into one sequence of ``S`` rows. Each sample keeps everything it has in the
unpacked forward (docs/transformer.md §Forward, §Block, §Packed forward):

* its own timestep (and ofs): the expert adaLN modulation is gathered per token by sample and by
  modality (text tokens take the text expert's shift/scale/gate, video tokens the video one's);
* its own positions: RoPE tables / sin-cos tables computed from its own token grid, exactly as
  the unpacked forward computes them (interpolated ``linspace`` or extrapolated ``slice`` grid);
* attention restricted to its own tokens (a block-diagonal mask, or per-sample attention calls,
  or a variable-length kernel on CUDA).

So the packed forward equals the per-sample forwards up to floating-point rounding (the test
checks fp32 outputs and gradients at rel 1e-5). The weights are the model's own modules; this file
only re-wires them for a packed sequence and does not change the unpacked forward.

Inputs are already patchified video tokens ``[N_video, C*pt*p*p]`` with features ordered
``(c, pt, ph, pw)`` and tokens ``(t, h, w)`` row-major per sample (``cogvx.framepack`` collation
produces them), so that frames padded for ``patch_size_t`` are the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .attention import AttentionBackend, attention
from .kernels import rope_qk
from .positions import RopeGrid, parse_rope_grid
from .transformer import ExpertBlock, ExpertDiT, Modulation

__all__ = ["PackedAttention", "PackedExpertDiT", "PackedLayout", "packed_forward"]


class PackedAttention(StrEnum):
    """How attention is kept inside each sample of a packed sequence."""

    AUTO = "auto"  # varlen on CUDA with fp16/bf16, else split
    MASK = "mask"  # one attention call with a boolean block-diagonal mask [S, S]: the plain
    #                reference; computes all S x S scores and needs an S x S mask
    SPLIT = "split"  # one attention call per sample: only sum(S_i^2) scores, no mask (exact)
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
            if len(g) != 3 or any(int(n) < 1 for n in g):
                raise ValueError(f"grids[{i}] must be (t, h, w) token counts >= 1, got {g}")
        for i, n in enumerate(text_lengths):
            if int(n) < 0:
                raise ValueError(f"text_lengths[{i}] must be >= 0, got {n}")
        self.text_lengths = tuple(int(n) for n in text_lengths)
        self.grids = tuple(tuple(int(n) for n in g) for g in grids)
        self.video_lengths = tuple(t * h * w for t, h, w in self.grids)
        lengths = [a + b for a, b in zip(self.text_lengths, self.video_lengths)]
        self.seq_lengths = tuple(lengths)
        self.seq_len = sum(lengths)
        self.num_samples = len(lengths)
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


def _per_token(mod: Tensor, text_mod: Tensor, layout: PackedLayout) -> Tensor:
    """Gather ``[n, D]`` per-sample modulations onto the ``[S, D]`` rows by sample and modality."""
    return torch.where(layout.is_text[:, None], text_mod[layout.sample_ids], mod[layout.sample_ids])


def _layer_norm_modulate(norm: nn.LayerNorm, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``LN(x) * (1 + scale) + shift`` in fp32, cast once to ``x.dtype`` (as the block kernels)."""
    w = norm.weight.float() if norm.weight is not None else None
    b = norm.bias.float() if norm.bias is not None else None
    normed = F.layer_norm(x.float(), norm.normalized_shape, w, b, norm.eps)
    return (normed * (1 + scale.float()) + shift.float()).to(x.dtype)


def _attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    layout: PackedLayout,
    mode: PackedAttention,
    backend: AttentionBackend | str | None,
    mask: Tensor | None,
) -> Tensor:
    """Block-diagonal attention on ``q, k, v [1, H, S, d]`` -> ``[1, H, S, d]``."""
    if mode is PackedAttention.MASK:
        return attention(q, k, v, attn_mask=mask, backend=backend)
    if mode is PackedAttention.SPLIT:
        outs = [
            attention(qi, ki, vi, backend=backend)
            for qi, ki, vi in zip(
                q.split(layout.seq_lengths, dim=2),
                k.split(layout.seq_lengths, dim=2),
                v.split(layout.seq_lengths, dim=2),
            )
        ]
        return torch.cat(outs, dim=2)
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
    return rearrange(out, "s h d -> 1 h s d")


def _block_forward(
    block: ExpertBlock,
    x: Tensor,
    temb: Tensor,
    layout: PackedLayout,
    rope: tuple[Tensor, Tensor] | None,
    mode: PackedAttention,
    backend: AttentionBackend | str | None,
    mask: Tensor | None,
) -> Tensor:
    """One expert block on the packed rows ``x [S, D]`` with per-sample ``temb [n, E]``."""
    mod_attn, mod_ff = block.modulations(temb)  # each field [n, D]

    def gathered(m: Modulation) -> tuple[Tensor, Tensor, Tensor]:
        return (
            _per_token(m.shift, m.text_shift, layout),
            _per_token(m.scale, m.text_scale, layout),
            _per_token(m.gate, m.text_gate, layout),
        )  # each [S, D]

    shift, scale, gate = gathered(mod_attn)
    h = _layer_norm_modulate(block.norm1.norm, x, shift, scale)  # [S, D]
    attn = block.attn1
    q, k, v = (
        rearrange(proj(h), "s (n d) -> 1 n s d", n=attn.heads)  # [1, H, S, d]
        for proj in (attn.to_q, attn.to_k, attn.to_v)
    )
    q, k = attn.norm_q(q), attn.norm_k(k)
    if rope is not None:
        q, k = rope_qk(q, k, rope[0], rope[1], offset=0)  # text rows: cos 1, sin 0 (identity)
    o = _attend(q, k, v, layout, mode, backend, mask)
    o = attn.to_out[1](attn.to_out[0](rearrange(o, "1 n s d -> s (n d)")))  # [S, D]
    x = (x.float() + gate.float() * o.float()).to(x.dtype)

    shift, scale, gate = gathered(mod_ff)
    h = _layer_norm_modulate(block.norm2.norm, x, shift, scale)
    return (x.float() + gate.float() * block.ff(h).float()).to(x.dtype)


def _resolve_mode(
    attention_mode: PackedAttention | str, x: Tensor, layout: PackedLayout
) -> PackedAttention:
    try:
        mode = PackedAttention(attention_mode)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in PackedAttention)
        raise ValueError(f"attention_mode must be one of {valid}, got {attention_mode!r}") from None
    varlen_ok = x.is_cuda and x.dtype in (torch.float16, torch.bfloat16)
    if mode is PackedAttention.AUTO:
        return PackedAttention.VARLEN if varlen_ok else PackedAttention.SPLIT
    if mode is PackedAttention.VARLEN and not varlen_ok:
        raise ValueError(
            "attention_mode='varlen' needs CUDA tensors in float16 or bfloat16 (got "
            f"{x.device.type}, {x.dtype}); use 'mask' or 'split' elsewhere"
        )
    return mode


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

    Args:
        model: the transformer whose weights are used (its unpacked forward is not called).
        video_tokens: ``[N_video, C_in*pt*p*p]`` patchified latents of all samples, in order.
        text_embeds: ``[N_text, text_embed_dim]`` text embeddings of all samples, in order.
        text_lengths: text rows per sample (may differ between samples).
        grids: token grid ``(t, h, w)`` per sample (latent frames / pt, height / p, width / p).
        timestep: ``[n]`` one timestep per sample.
        ofs: the 1.5-I2V offset condition, scalar or ``[n]``; as the unpacked forward.
        rope_grid: ``"linspace"`` / ``"slice"``; default from the config, as the unpacked forward.
        attention_mode: see :class:`PackedAttention`.
        attention_backend: the attention backend for ``mask`` / ``split`` (sdpa, math, xformers).

    Output features are ordered ``(c, pt, p, p)`` like the inputs: ``P_out = C_out*pt*p*p``.
    """
    config = model.config
    layout = PackedLayout(text_lengths, grids, device=model.device)
    n = layout.num_samples
    if video_tokens.ndim != 2 or video_tokens.shape != (
        sum(layout.video_lengths),
        config.patch_dim,
    ):
        raise ValueError(
            f"video_tokens must be [N_video={sum(layout.video_lengths)}, "
            f"C*pt*p*p={config.patch_dim}] for these grids, got {tuple(video_tokens.shape)}"
        )
    if text_embeds.ndim != 2 or text_embeds.shape != (
        sum(layout.text_lengths),
        config.text_embed_dim,
    ):
        raise ValueError(
            f"text_embeds must be [N_text={sum(layout.text_lengths)}, "
            f"text_embed_dim={config.text_embed_dim}], got {tuple(text_embeds.shape)}"
        )
    timestep = model._check_batch_vector("timestep", timestep, n)
    ofs = model._check_ofs(ofs, n)
    if config.use_learned_positional_embeddings:
        for g, n_text in zip(layout.grids, layout.text_lengths):
            model._check_learned_size(
                g[0] * config.patch_t, g[1] * config.patch_size, g[2] * config.patch_size, n_text
            )
    dtype, device = model.dtype, model.device

    temb = model.embed_time(timestep, ofs)  # [n, E]
    text = model.patch_embed.text_proj(text_embeds.to(dtype))  # [N_text, D]
    proj = model.patch_embed.proj
    video = F.linear(video_tokens.to(dtype), proj.weight.flatten(1), proj.bias)  # [N_video, D]
    if config.use_learned_positional_embeddings:
        table = model.patch_embed.pos_embedding[0].to(dtype)  # [L + N_native, D]
        text = text + torch.cat([table[:n_text] for n_text in layout.text_lengths])
        video = video + torch.cat([table[n_text:] for n_text in layout.text_lengths])
    elif config.uses_sincos_positions:
        video = video + torch.cat([model.sincos(g, device, dtype) for g in layout.grids])
    x = model.embedding_dropout(layout.interleave(text, video))  # [S, D]

    rope = None
    if config.use_rotary_positional_embeddings:
        grid_type = parse_rope_grid(config.default_rope_grid if rope_grid is None else rope_grid)
        head_dim = config.attention_head_dim
        cos_parts, sin_parts = [], []
        for g, n_text in zip(layout.grids, layout.text_lengths):
            cos, sin = model.rope(g, grid_type, device)  # [N_i, d] float32, cached per shape
            cos_parts += [cos.new_ones(n_text, head_dim), cos]
            sin_parts += [sin.new_zeros(n_text, head_dim), sin]
        rope = (torch.cat(cos_parts), torch.cat(sin_parts))  # [S, d] each
    elif rope_grid is not None:
        raise ValueError(
            f"rope_grid={rope_grid!r} was given but this model has no RoPE "
            "(use_rotary_positional_embeddings=False)"
        )

    mode = _resolve_mode(attention_mode, x, layout)
    mask = layout.block_mask()[None, None] if mode is PackedAttention.MASK else None
    for block in model.transformer_blocks:
        args = (block, x, temb, layout, rope, mode, attention_backend, mask)
        if model.gradient_checkpointing and torch.is_grad_enabled():
            x = checkpoint(_block_forward, *args, use_reentrant=False)
        else:
            x = _block_forward(*args)

    out = model.norm_final(x[layout.video_index])  # [N_video, D]
    norm_out = model.norm_out
    shift, scale = norm_out.linear(F.silu(temb)).chunk(2, dim=-1)  # [n, D] each
    video_ids = layout.sample_ids[layout.video_index]
    out = norm_out.norm(out) * (1 + scale[video_ids]) + shift[video_ids]
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
