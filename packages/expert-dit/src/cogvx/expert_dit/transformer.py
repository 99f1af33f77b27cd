"""The CogVideoX expert transformer (all released variants), read top-down.

Matches diffusers ``CogVideoXTransformer3DModel`` 0.42.1 (docs/transformer.md) with the same parameter
names, so a diffusers ``state_dict`` loads with a plain ``load_state_dict``:

1. time embedding: sinusoid of width D (``[cos | sin]``) -> Linear -> SiLU -> Linear; plus the
   ofs embedding for 1.5-I2V (sec. 3.2 step 1);
2. patch embedding: text Linear, video Conv2d 2x2 per frame (1.0) or Linear over
   ``(c, pt, p, p)`` (1.5), joint sequence ``[text ; video]`` (step 2);
3. absolute positions: 3D sin-cos (2B) or the learned table (5B-I2V); RoPE (5B, 1.5) is applied
   to q/k of the video tokens inside attention (sec. 3.3);
4. expert-adaLN blocks on ONE joint tensor ``x [B, L_text + N_video, D]`` (text first): shared
   LayerNorm, separate text/video shift/scale/gate, QK-LayerNorm, full attention (sec. 3.4);
5. ``norm_final`` -> adaptive ``norm_out`` (shift first, then scale) -> ``proj_out`` ->
   unpatchify (step 4-5).

Runtime switches are call arguments or context managers (attention backend, kernels via
:func:`cogvx.expert_dit.kernels.use_kernels`, activation checkpointing, the RoPE grid, bf16 CPU
matmuls via :func:`cogvx.expert_dit.precision.use_half_matmul`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from cogvx.modelio import (
    CONFIG_NAME,
    load_checked,
    read_state_dict,
    resolve_model_folder,
    write_config,
    write_state_dict,
)

from .attention import AttentionBackend, attention, current_attention_backend
from .attention import parse_attention_backend as _parse_attention_backend
from .config import DiTConfig
from .geometry import patchify, unpatchify
from .kernels import (
    expert_layernorm_modulate,
    gated_residual,
    gated_residual_rows,
    layernorm_modulate_rows,
    rope_qk,
)
from .positions import (
    PositionCache,
    RopeGrid,
    learned_table_init,
    parse_rope_grid,
    rope_tables,
    sincos_table,
    token_grid,
)
from .precision import Linear, linear

__all__ = [
    "AdaptiveNormOut",
    "Attend",
    "ExpertAdaLN",
    "ExpertBlock",
    "ExpertDiT",
    "FeedForward",
    "JointAttention",
    "Modulation",
    "PatchEmbed",
    "TimestepEmbedding",
    "TokenModulation",
    "timestep_sinusoid",
]

_ACTIVATIONS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu, "relu": F.relu, "mish": F.mish}


# ===================================================================================== embeddings
def timestep_sinusoid(
    timesteps: Tensor, dim: int, *, flip_sin_to_cos: bool = True, freq_shift: float = 0.0
) -> Tensor:
    """DDPM sinusoid of ``timesteps [B]`` -> ``[B, dim]`` float32 (diffusers ``Timesteps``).

    Frequencies ``exp(-ln(1e4) * i / (half - freq_shift))`` for ``i < half``; output
    ``[sin | cos]``, or ``[cos | sin]`` with ``flip_sin_to_cos`` (CogVideoX; equal to SAT
    ``timestep_embedding``). An odd ``dim`` gets one zero column.
    """
    half = dim // 2
    exponent = -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(exponent / (half - freq_shift))  # [half]
    angles = timesteps[:, None].float() * freqs[None, :]  # [B, half]
    emb = (
        torch.cat([angles.cos(), angles.sin()], dim=-1)
        if flip_sin_to_cos
        else torch.cat([angles.sin(), angles.cos()], dim=-1)
    )
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """``linear_2(act(linear_1(x)))`` (diffusers ``TimestepEmbedding``; SAT ``time_embed``)."""

    def __init__(self, in_dim: int, out_dim: int, act: str = "silu") -> None:
        super().__init__()
        self.linear_1 = Linear(in_dim, out_dim)
        self.linear_2 = Linear(out_dim, out_dim)
        self.act = _ACTIVATIONS[act]

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class PatchEmbed(nn.Module):
    """Text projection and video patchification into one joint sequence ``[text ; video]``.

    Video tokens are ordered ``(t, h, w)`` row-major; each token's input features are ordered
    ``(c, pt, ph, pw)``. For 1.0 ``proj`` is the reference ``Conv2d(C, D, k=p, s=p)`` (weights
    ``[D, C, p, p]``), evaluated as the equivalent Linear over the flattened patch; for 1.5 it is
    ``Linear(C*pt*p*p, D)`` (always with bias, as the reference, whatever ``patch_bias`` says).
    The 5B-I2V learned table is the persistent buffer ``pos_embedding [1, L_text + N, D]``.
    """

    proj: nn.Conv2d | nn.Linear
    pos_embedding: Tensor

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.patch_t = config.patch_t
        dim = config.inner_dim
        if config.patch_size_t is None:
            self.proj = nn.Conv2d(
                config.in_channels,
                dim,
                config.patch_size,
                config.patch_size,
                bias=config.patch_bias,
            )
        else:
            self.proj = Linear(config.patch_dim, dim)
        self.text_proj = Linear(config.text_embed_dim, dim)
        if config.use_learned_positional_embeddings:
            self.register_buffer("pos_embedding", learned_table_init(config), persistent=True)

    def embed_tokens(self, patches: Tensor) -> Tensor:
        """Patchified latents ``[..., C*pt*p*p]`` (:func:`cogvx.expert_dit.geometry.patchify`
        layout) -> ``[..., D]``, under the half-precision matmul policy."""
        weight = self.proj.weight.flatten(1)  # conv [D, C, p, p] -> [D, C*p*p]; linear unchanged
        return linear(patches, weight, self.proj.bias)

    def embed_video(self, latents: Tensor) -> Tensor:
        """``latents [B, F, C, H, W]`` (F divisible by pt) -> tokens ``[B, N, D]``."""
        patches = patchify(latents, self.patch_size, self.patch_t)  # [B, N, C*pt*p*p]
        return self.embed_tokens(patches)

    def forward(self, text_embeds: Tensor, latents: Tensor) -> Tensor:
        """-> joint tokens ``[B, L + N, D]`` (no positions added here)."""
        return torch.cat([self.text_proj(text_embeds), self.embed_video(latents)], dim=1)


# ===================================================================================== block
class Modulation(NamedTuple):
    """One adaLN modulation of a block half, each ``[B, D]`` (chunk order of the reference)."""

    shift: Tensor
    scale: Tensor
    gate: Tensor
    text_shift: Tensor
    text_scale: Tensor
    text_gate: Tensor


class TokenModulation(NamedTuple):
    """One adaLN modulation with a row per token, each ``[S, D]``: the packed-sequence form.

    Row ``i`` holds the shift/scale/gate of token ``i``'s sample and modality (gathered from that
    sample's :class:`Modulation`), so a packed ``x [1, S, D]`` needs no text/video split.
    """

    shift: Tensor
    scale: Tensor
    gate: Tensor

    @classmethod
    def gather(cls, mod: Modulation, sample_ids: Tensor, is_text: Tensor) -> TokenModulation:
        """Per-sample ``mod`` (fields ``[n, D]``) onto rows: sample ``sample_ids [S]``, text where
        ``is_text [S]``.

        One ``index_select`` from a ``[2n, 3D]`` table (row ``2i`` = sample ``i``'s video
        expert, ``2i + 1`` its text expert): its backward is one ``index_add_``, where indexing
        each of the six fields and choosing with ``where`` cost six accumulating ``index_put_``
        calls per gather (16% of a packed training step of the shapes model on CPU).
        """
        video = torch.cat([mod.shift, mod.scale, mod.gate], dim=-1)  # [n, 3D]
        text = torch.cat([mod.text_shift, mod.text_scale, mod.text_gate], dim=-1)  # [n, 3D]
        table = torch.stack([video, text], dim=1).flatten(0, 1)  # [2n, 3D]
        rows = table.index_select(0, sample_ids * 2 + is_text.long())  # [S, 3D]
        shift, scale, gate = rows.chunk(3, dim=-1)
        return cls(shift, scale, gate)


AnyModulation = Modulation | TokenModulation


def _check_rows(x: Tensor, text_len: int) -> None:
    if x.ndim != 3 or x.shape[0] != 1 or text_len != 0:
        raise ValueError(
            "a TokenModulation applies to one packed sequence x [1, S, D] with text_len=0; got "
            f"x of shape {tuple(x.shape)} and text_len={text_len}"
        )


def gated_update(x: Tensor, y: Tensor, mod: AnyModulation, text_len: int) -> Tensor:
    """``x + gate * y`` with the modulation's gates: text/video split at ``text_len`` (dense) or
    one gate row per token (packed)."""
    if isinstance(mod, TokenModulation):
        _check_rows(x, text_len)
        return gated_residual_rows(x[0], y[0], mod.gate)[None]
    return gated_residual(x, y, text_len, mod.text_gate, mod.gate)


class ExpertAdaLN(nn.Module):
    """Shared LayerNorm + expert modulation (diffusers ``CogVideoXLayerNormZero``).

    ``linear: Linear(time_embed_dim, 6D)`` gives ``(shift, scale, gate, text_shift, text_scale,
    text_gate)`` from ``SiLU(temb)``; ``norm`` is one LayerNorm shared by both modalities.
    :meth:`modulation` is separate from :meth:`forward` so a packed-sequence forward can gather
    it per token (:class:`TokenModulation`); :meth:`forward` takes either form.
    """

    def __init__(self, cond_dim: int, dim: int, affine: bool, eps: float) -> None:
        super().__init__()
        self.linear = Linear(cond_dim, 6 * dim)
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=affine)

    def modulation(self, temb: Tensor) -> Modulation:
        """``temb [B, time_embed_dim]`` -> six ``[B, D]`` tensors."""
        return Modulation(*self.linear(F.silu(temb)).chunk(6, dim=-1))

    def forward(self, x: Tensor, mod: AnyModulation, text_len: int) -> Tensor:
        """``LN(x) * (1 + scale) + shift`` with text params on ``x[:, :text_len]`` (a
        :class:`Modulation`), or with one row of params per token (a :class:`TokenModulation`,
        ``x [1, S, D]``, ``text_len=0``)."""
        if isinstance(mod, TokenModulation):
            _check_rows(x, text_len)
            out = layernorm_modulate_rows(
                x[0], self.norm.weight, self.norm.bias, self.norm.eps, mod.shift, mod.scale
            )
            return out[None]
        return expert_layernorm_modulate(
            x,
            self.norm.weight,
            self.norm.bias,
            self.norm.eps,
            text_len,
            mod.text_shift,
            mod.text_scale,
            mod.shift,
            mod.scale,
        )


Attend = Callable[[Tensor, Tensor, Tensor], Tensor]
"""Attention core ``(q, k, v) [B, H, S, d] -> [B, H, S, d]``: full attention (dense) or attention
kept inside each sample (packed, :class:`cogvx.expert_dit.packed.PackedAttend`)."""


class JointAttention(nn.Module):
    """Full self-attention over ``[text ; video]`` with QK-LayerNorm and video-only RoPE.

    Parameter names follow diffusers ``Attention`` (``to_q/k/v``, ``norm_q/k`` =
    ``LayerNorm(head_dim, eps=1e-6)`` shared across heads, ``to_out.0`` Linear, ``to_out.1``
    dropout). RoPE rotates q and k (not v) after the QK norm (docs/transformer.md §RoPE).
    """

    def __init__(self, dim: int, heads: int, head_dim: int, bias: bool, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.to_q = Linear(dim, heads * head_dim, bias=bias)
        self.to_k = Linear(dim, heads * head_dim, bias=bias)
        self.to_v = Linear(dim, heads * head_dim, bias=bias)
        self.norm_q = nn.LayerNorm(head_dim, eps=1e-6)
        self.norm_k = nn.LayerNorm(head_dim, eps=1e-6)
        self.to_out = nn.ModuleList([Linear(heads * head_dim, dim), nn.Dropout(dropout)])

    def forward(
        self,
        h: Tensor,
        text_len: int,
        rope: tuple[Tensor, Tensor] | None = None,
        attn_mask: Tensor | None = None,
        backend: AttentionBackend | str | None = None,
        *,
        attend: Attend | None = None,
    ) -> Tensor:
        """``h [B, S, D]`` -> ``[B, S, D]``; ``rope = (cos, sin)`` each ``[S - text_len, d]``.

        ``attend`` replaces the attention core (then ``attn_mask``/``backend`` must be None):
        the packed forward passes one that keeps attention inside each sample.
        """
        q, k, v = (
            rearrange(proj(h), "b s (n d) -> b n s d", n=self.heads)  # [B, H, S, d]
            for proj in (self.to_q, self.to_k, self.to_v)
        )
        q, k = self.norm_q(q), self.norm_k(k)
        if rope is not None:
            q, k = rope_qk(q, k, rope[0], rope[1], offset=text_len)
        if attend is None:
            out = attention(q, k, v, attn_mask=attn_mask, backend=backend)  # [B, H, S, d]
        elif attn_mask is not None or backend is not None:
            raise ValueError("pass either attend or attn_mask/backend, not both")
        else:
            out = attend(q, k, v)  # [B, H, S, d]
        out = rearrange(out, "b n s d -> b s (n d)")
        return self.to_out[1](self.to_out[0](out))


class _GeluProjection(nn.Module):
    """``gelu(proj(x))`` with diffusers' key name ``proj`` (``ff.net.0.proj``)."""

    def __init__(self, dim_in: int, dim_out: int, approximate: str) -> None:
        super().__init__()
        self.proj = Linear(dim_in, dim_out)
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.proj(x), approximate=self.approximate)


class FeedForward(nn.Module):
    """``Linear(D, 4D) -> GELU(tanh) -> Dropout -> Linear(4D, D) -> Dropout`` (``ff.net.*``)."""

    def __init__(self, dim: int, activation: str, dropout: float) -> None:
        super().__init__()
        approximate = "tanh" if activation == "gelu-approximate" else "none"
        self.net = nn.ModuleList(
            [
                _GeluProjection(dim, 4 * dim, approximate),
                nn.Dropout(dropout),
                Linear(4 * dim, dim),
                nn.Dropout(dropout),
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class ExpertBlock(nn.Module):
    """One CogVideoX block on the joint sequence ``x [B, L + N, D]`` (docs/transformer.md §Block).

    ``x = x + gate * attn(adaLN1(x))`` then ``x = x + gate * ff(adaLN2(x))``, text tokens using
    the text expert's shift/scale/gate and video tokens the video expert's.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        dim = config.inner_dim
        affine, eps = config.norm_elementwise_affine, config.norm_eps
        self.norm1 = ExpertAdaLN(config.time_embed_dim, dim, affine, eps)
        self.attn1 = JointAttention(
            dim,
            config.num_attention_heads,
            config.attention_head_dim,
            config.attention_bias,
            config.dropout,
        )
        self.norm2 = ExpertAdaLN(config.time_embed_dim, dim, affine, eps)
        self.ff = FeedForward(dim, config.activation_fn, config.dropout)

    def modulations(self, temb: Tensor) -> tuple[Modulation, Modulation]:
        """The attention-half and FFN-half modulations for ``temb [B, time_embed_dim]``."""
        return self.norm1.modulation(temb), self.norm2.modulation(temb)

    def forward(
        self,
        x: Tensor,
        temb: Tensor,
        text_len: int,
        rope: tuple[Tensor, Tensor] | None = None,
        attn_mask: Tensor | None = None,
        attention_backend: AttentionBackend | str | None = None,
    ) -> Tensor:
        """Dense form: ``x [B, L + N, D]``, ``temb [B, E]``; text rows ``:text_len``."""
        mod_attn, mod_ff = self.modulations(temb)

        def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            return attention(q, k, v, attn_mask=attn_mask, backend=attention_backend)

        return self.forward_modulated(x, mod_attn, mod_ff, text_len, rope, attend)

    def forward_modulated(
        self,
        x: Tensor,
        mod_attn: AnyModulation,
        mod_ff: AnyModulation,
        text_len: int,
        rope: tuple[Tensor, Tensor] | None,
        attend: Attend,
    ) -> Tensor:
        """The block on given modulations: the one body of the dense and the packed forward.

        Dense: :class:`Modulation` pair, ``x [B, L + N, D]``, RoPE tables for rows
        ``text_len:``. Packed: :class:`TokenModulation` pair, ``x [1, S, D]``, ``text_len=0``,
        RoPE tables for all ``S`` rows (identity rows for text) and an ``attend`` that keeps
        attention inside each sample.
        """
        h = self.norm1(x, mod_attn, text_len)
        y = self.attn1(h, text_len, rope, attend=attend)
        x = gated_update(x, y, mod_attn, text_len)
        h = self.norm2(x, mod_ff, text_len)
        return gated_update(x, self.ff(h), mod_ff, text_len)


class AdaptiveNormOut(nn.Module):
    """Final adaptive LayerNorm (diffusers ``AdaLayerNorm(chunk_dim=1)``): shift first, then scale."""

    def __init__(self, cond_dim: int, dim: int, affine: bool, eps: float) -> None:
        super().__init__()
        self.linear = Linear(cond_dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=affine)

    def modulation(self, temb: Tensor) -> tuple[Tensor, Tensor]:
        """``temb [B, E]`` -> ``(shift, scale)``, each ``[B, D]``."""
        shift, scale = self.linear(F.silu(temb)).chunk(2, dim=-1)
        return shift, scale

    def modulate(self, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
        """``LN(x) * (1 + scale) + shift``, ``shift``/``scale`` broadcastable to ``x``: ``[B, 1,
        D]`` for ``x [B, N, D]`` (dense) or one row per token ``[N, D]`` (packed)."""
        return self.norm(x) * (1 + scale) + shift

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        """Dense form: ``x [B, N, D]``, ``temb [B, E]``."""
        shift, scale = self.modulation(temb)  # [B, D] each
        return self.modulate(x, shift[:, None], scale[:, None])


# ===================================================================================== model
class ExpertDiT(nn.Module):
    """CogVideoX expert transformer: ``dit(latents, text_embeds, timestep, *, ofs=None)``.

    Build with ``ExpertDiT(DiTConfig.cogvideox_5b())`` or :meth:`from_pretrained` (diffusers
    folder layout). Parameters are randomly initialised like PyTorch defaults; the adaLN
    modulation Linears start at zero (adaLN-Zero, as SAT ``reinit``).
    """

    def __init__(self, config: DiTConfig, *, position_cache_size: int = 8) -> None:
        super().__init__()
        if not isinstance(config, DiTConfig):
            raise TypeError(f"config must be a DiTConfig, got {type(config).__name__}")
        self.config = config
        dim = config.inner_dim
        self.patch_embed = PatchEmbed(config)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.time_embedding = TimestepEmbedding(
            dim, config.time_embed_dim, config.timestep_activation_fn
        )
        self.ofs_embedding = (
            TimestepEmbedding(
                config.ofs_embed_dim, config.ofs_embed_dim, config.timestep_activation_fn
            )
            if config.ofs_embed_dim
            else None
        )
        self.transformer_blocks = nn.ModuleList(
            ExpertBlock(config) for _ in range(config.num_layers)
        )
        self.norm_final = nn.LayerNorm(dim, config.norm_eps, config.norm_elementwise_affine)
        self.norm_out = AdaptiveNormOut(
            config.time_embed_dim, dim, config.norm_elementwise_affine, config.norm_eps
        )
        self.proj_out = Linear(dim, config.patch_t * config.patch_size**2 * config.out_dim)
        self.gradient_checkpointing = False
        self._positions = PositionCache(position_cache_size)
        self._zero_init_modulation()

    def blocks(self) -> list[ExpertBlock]:
        """The transformer blocks, in order (typed view of ``transformer_blocks``)."""
        return [cast(ExpertBlock, block) for block in self.transformer_blocks]

    def _zero_init_modulation(self) -> None:
        for block in self.blocks():
            for norm in (block.norm1, block.norm2):
                if norm.linear.weight.device.type != "meta":
                    nn.init.zeros_(norm.linear.weight)
                    nn.init.zeros_(norm.linear.bias)

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embed.text_proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.patch_embed.text_proj.weight.device

    # --------------------------------------------------------------------- runtime switches
    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block in backward instead of storing its activations (training)."""
        self.gradient_checkpointing = bool(enabled)

    @contextlib.contextmanager
    def gradient_checkpointing_enabled(self, enabled: bool = True) -> Iterator[None]:
        """Context manager form of :meth:`set_gradient_checkpointing` (restores on exit)."""
        previous = self.gradient_checkpointing
        self.gradient_checkpointing = bool(enabled)
        try:
            yield
        finally:
            self.gradient_checkpointing = previous

    # --------------------------------------------------------------------- conditioning
    def embed_time(
        self,
        timestep: Tensor | int | float,
        ofs: Tensor | float | None = None,
        *,
        batch: int | None = None,
    ) -> Tensor:
        """Check and embed ``timestep`` (and ``ofs``) -> ``temb [B, time_embed_dim]`` (model dtype).

        Each may be a scalar, ``[1]`` or ``[B]`` (``batch`` B; default: the timestep's length).
        ``ofs`` is required exactly when the config has ``ofs_embed_dim`` (1.5-I2V).
        """
        config = self.config
        if batch is None:
            batch = timestep.numel() if isinstance(timestep, Tensor) and timestep.ndim else 1
        timestep = self._check_batch_vector("timestep", timestep, batch)
        ofs = self._check_ofs(ofs, batch)
        t_emb = timestep_sinusoid(
            timestep,
            config.inner_dim,
            flip_sin_to_cos=config.flip_sin_to_cos,
            freq_shift=config.freq_shift,
        )
        temb = self.time_embedding(t_emb.to(self.dtype))
        if self.ofs_embedding is not None and ofs is not None and config.ofs_embed_dim:
            ofs_emb = timestep_sinusoid(
                ofs,
                config.ofs_embed_dim,
                flip_sin_to_cos=config.flip_sin_to_cos,
                freq_shift=config.freq_shift,
            )
            temb = temb + self.ofs_embedding(ofs_emb.to(self.dtype))
        return temb

    def rope(
        self, grid: tuple[int, int, int], rope_grid: RopeGrid | str, device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Cached RoPE cos/sin ``[N, head_dim]`` (float32) of a token grid ``(T, Hp, Wp)``."""
        grid_type = parse_rope_grid(rope_grid)
        key = ("rope", grid, grid_type, device)
        return self._positions.get(  # type: ignore[return-value]
            key, lambda: rope_tables(self.config, *grid, grid_type, device=device)
        )

    def rope_grid_type(self, rope_grid: RopeGrid | str | None) -> RopeGrid | None:
        """The RoPE grid to use (``None``: the config's default), or None for a model without
        RoPE (where passing ``rope_grid`` is an error)."""
        if not self.config.use_rotary_positional_embeddings:
            if rope_grid is not None:
                raise ValueError(
                    f"rope_grid={rope_grid!r} was given but this model has no RoPE "
                    "(use_rotary_positional_embeddings=False)"
                )
            return None
        return parse_rope_grid(self.config.default_rope_grid if rope_grid is None else rope_grid)

    def sincos(
        self, grid: tuple[int, int, int], device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """Cached 2B sin-cos table ``[N, D]`` of a token grid, in ``dtype``."""
        key = ("sincos", grid, device, dtype)
        return self._positions.get(  # type: ignore[return-value]
            key, lambda: sincos_table(self.config, *grid, device=device).to(dtype)
        )

    # --------------------------------------------------------------------- forward
    def forward(
        self,
        latents: Tensor,
        text_embeds: Tensor,
        timestep: Tensor | int | float,
        *,
        ofs: Tensor | float | None = None,
        rope_grid: RopeGrid | str | None = None,
        pad_frames: bool = False,
        attn_mask: Tensor | None = None,
        attention_backend: AttentionBackend | str | None = None,
    ) -> Tensor:
        """Predict ``[B, F, C_out, H, W]`` from ``latents [B, F, C_in, H, W]``.

        Args:
            latents: transformer-layout latents (I2V: ``[noisy | image]`` on channels).
            text_embeds: ``[B, L, text_embed_dim]``; L is taken from the input.
            timestep: ``[B]`` (or a scalar / ``[1]``, broadcast over the batch).
            ofs: the 1.5-I2V offset condition (the reference pipeline passes 2.0); required
                exactly when the config has ``ofs_embed_dim``. Scalar, ``[1]`` or ``[B]``.
            rope_grid: ``"linspace"`` (interpolating) or ``"slice"`` (extrapolating); default
                from the config (``patch_size_t`` None -> linspace, else slice).
            pad_frames: for ``patch_size_t > 1`` and F not divisible by it, prepend copies of
                the first latent frame (as the reference I2V pipeline pads its image latents)
                and drop the same number of leading output frames (as the reference pipelines
                discard the padded latents). Without it such F is an error.
            attn_mask: optional boolean (True = attend) or additive mask broadcastable to
                ``[B, heads, S, S]``, ``S = L + N`` (packed sequences); None = full attention.
            attention_backend: ``"sdpa"`` (default), ``"xformers"`` or ``"math"``; default from
                :func:`cogvx.expert_dit.attention.use_attention_backend`.
        """
        config = self.config
        latents, pad = self._check_latents(latents, pad_frames)
        batch, frames, _, height, width = latents.shape
        text_embeds = self._check_text(text_embeds, batch)
        temb = self.embed_time(timestep, ofs, batch=batch)  # [B, time_embed_dim]
        grid = token_grid(config, frames, height, width)
        self.check_native_size(frames, height, width, text_embeds.shape[1])
        backend = (
            current_attention_backend()
            if attention_backend is None
            else _parse_attention_backend(attention_backend)
        )
        grid_type = self.rope_grid_type(rope_grid)
        rope = None if grid_type is None else self.rope(grid, grid_type, latents.device)

        x = self.patch_embed(text_embeds, latents)  # [B, L + N, D]
        text_len = text_embeds.shape[1]
        x = self._add_absolute_positions(x, text_len, grid)
        x = self.embedding_dropout(x)

        for block in self.transformer_blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(
                    block, x, temb, text_len, rope, attn_mask, backend, use_reentrant=False
                )
            else:
                x = block(x, temb, text_len, rope, attn_mask, backend)

        video = self.norm_final(x[:, text_len:])  # [B, N, D]
        video = self.norm_out(video, temb)
        video = self.proj_out(video)  # [B, N, C_out * pt * p * p]
        out = unpatchify(video, grid, config.patch_size, config.patch_t)  # [B, F, C_out, H, W]
        return out[:, pad:] if pad else out

    def _add_absolute_positions(
        self, x: Tensor, text_len: int, grid: tuple[int, int, int]
    ) -> Tensor:
        config = self.config
        if config.use_learned_positional_embeddings:
            return x + self.patch_embed.pos_embedding.to(x.dtype)
        if config.uses_sincos_positions:
            table = self.sincos(grid, x.device, x.dtype)  # [N, D]; text rows get nothing
            return torch.cat([x[:, :text_len], x[:, text_len:] + table], dim=1)
        return x

    # --------------------------------------------------------------------- input checks
    def _check_latents(self, latents: Tensor, pad_frames: bool) -> tuple[Tensor, int]:
        config = self.config
        if not isinstance(latents, Tensor) or latents.ndim != 5:
            shape = tuple(latents.shape) if isinstance(latents, Tensor) else type(latents).__name__
            raise ValueError(f"latents must be a [B, F, C, H, W] tensor, got {shape}")
        if not latents.is_floating_point():
            raise TypeError(
                f"latents has dtype {latents.dtype}; expected a floating-point tensor "
                "(float32, bfloat16 or float16)"
            )
        batch, frames, channels, height, width = latents.shape
        if min(batch, frames, height, width) == 0:
            raise ValueError(f"latents must be non-empty, got shape {tuple(latents.shape)}")
        if channels != config.in_channels:
            raise ValueError(
                f"latents have {channels} channels (dim 2 of [B, F, C, H, W]) but the model takes "
                f"in_channels={config.in_channels}"
                + (" ([noisy | image] latents concatenated)" if config.in_channels == 32 else "")
            )
        p = config.patch_size
        for name, size in (("height", height), ("width", width)):
            if size % p:
                raise ValueError(
                    f"latent {name}={size} is not divisible by patch_size={p}; valid sizes are "
                    f"multiples of {p} (pixel sizes multiples of {8 * p} with the 8x VAE)"
                )
        pad = 0
        pt = config.patch_t
        if frames % pt:
            if not pad_frames:
                raise ValueError(
                    f"latent frames F={frames} is not divisible by patch_size_t={pt}; pass "
                    f"pad_frames=True to prepend {pt - frames % pt} copies of the first frame "
                    "(the reference pipelines' padding; the padded outputs are dropped)"
                )
            pad = pt - frames % pt
            latents = torch.cat([latents[:, :1].expand(-1, pad, -1, -1, -1), latents], dim=1)
        return latents.to(self.dtype), pad

    def _check_text(self, text_embeds: Tensor, batch: int) -> Tensor:
        config = self.config
        if not isinstance(text_embeds, Tensor) or text_embeds.ndim != 3:
            shape = (
                tuple(text_embeds.shape)
                if isinstance(text_embeds, Tensor)
                else type(text_embeds).__name__
            )
            raise ValueError(f"text_embeds must be a [B, L, D_text] tensor, got {shape}")
        if not text_embeds.is_floating_point():
            raise TypeError(
                f"text_embeds has dtype {text_embeds.dtype}; expected a floating-point tensor"
            )
        if text_embeds.shape[0] != batch:
            raise ValueError(
                f"text_embeds batch {text_embeds.shape[0]} does not match the latents batch {batch}"
            )
        if text_embeds.shape[2] != config.text_embed_dim:
            raise ValueError(
                f"text_embeds width {text_embeds.shape[2]} does not match the model's "
                f"text_embed_dim={config.text_embed_dim}"
            )
        return text_embeds.to(self.dtype)

    def _check_batch_vector(self, name: str, value: Tensor | float, batch: int) -> Tensor:
        """Scalar, ``[1]`` or ``[B]`` -> ``[B]`` tensor on the model device."""
        if isinstance(value, bool) or not isinstance(value, (Tensor, int, float)):
            raise TypeError(f"{name} must be a tensor or a number, got {type(value).__name__}")
        if isinstance(value, Tensor) and (value.dtype == torch.bool or value.is_complex()):
            raise TypeError(f"{name} has dtype {value.dtype}; expected a real number tensor")
        value = torch.as_tensor(value, device=self.device)
        if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
            raise ValueError(
                f"{name}={value.tolist() if value.numel() <= 8 else '...'}: expected finite "
                "values >= 0"
            )
        if value.ndim == 0 or tuple(value.shape) == (1,):
            return value.reshape(1).expand(batch)
        if tuple(value.shape) != (batch,):
            raise ValueError(
                f"{name} must be a scalar, [1] or [B]=[{batch}], got shape {tuple(value.shape)}"
            )
        return value

    def _check_ofs(self, ofs: Tensor | float | None, batch: int) -> Tensor | None:
        if self.ofs_embedding is None:
            if ofs is not None:
                raise ValueError(
                    "ofs was given but this model has no ofs embedding (ofs_embed_dim=None); "
                    "only CogVideoX1.5 I2V takes it"
                )
            return None
        if ofs is None:
            raise ValueError(
                f"this model has ofs_embed_dim={self.config.ofs_embed_dim} and needs ofs "
                "(the reference I2V pipeline passes 2.0)"
            )
        return self._check_batch_vector("ofs", ofs, batch)

    def check_native_size(self, frames: int, height: int, width: int, text_len: int) -> None:
        """A model with a learned position table (5B-I2V) runs only at exactly its native size:
        latent ``(F, H, W)`` and ``max_text_seq_length`` text tokens (docs/transformer.md
        §Learned; diffusers ``CogVideoXPatchEmbed`` fails for other sizes). No-op otherwise."""
        config = self.config
        if not config.use_learned_positional_embeddings:
            return
        native = (config.sample_latent_frames, config.sample_height, config.sample_width)
        if (frames, height, width) != native:
            raise ValueError(
                f"this model has a learned position table for latents of (F, H, W)={native} "
                f"only (sample_frames={config.sample_frames}, sample_height/width); got "
                f"(F, H, W)={(frames, height, width)}"
            )
        if text_len != config.max_text_seq_length:
            raise ValueError(
                f"this model's learned position table covers exactly max_text_seq_length="
                f"{config.max_text_seq_length} text tokens; got text length {text_len}"
            )

    # --------------------------------------------------------------------- weights
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        torch_dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
        variant: str | None = None,
        subfolder: str | None = None,
    ) -> ExpertDiT:
        """Load a diffusers-layout folder: ``config.json`` + ``diffusion_pytorch_model*.safetensors``.

        As diffusers ``ModelMixin.from_pretrained``: ``torch_dtype`` casts the floating weights
        (stored dtype when None), ``subfolder="transformer"`` selects a pipeline component, and a
        pipeline folder without ``subfolder`` falls back to its ``transformer/``. Missing,
        unexpected or mis-shaped keys raise one ``ValueError`` naming them and the folder.
        """
        if torch_dtype is not None and not isinstance(torch_dtype, torch.dtype):
            raise TypeError(f"torch_dtype={torch_dtype!r}: expected a torch.dtype or None")
        folder = resolve_model_folder(path, subfolder, default_subfolder="transformer")
        config = DiTConfig.from_json_file(folder / CONFIG_NAME)
        with torch.device("meta"):
            model = cls(config)
        state = read_state_dict(folder, variant=variant, device=device)
        model.load_checked_state_dict(state, dtype=torch_dtype, source=str(folder))
        return model

    def load_checked_state_dict(
        self,
        state: Mapping[str, Tensor],
        *,
        dtype: torch.dtype | None = None,
        source: str = "state",
    ) -> None:
        """Strict load with clear errors (``cogvx.modelio.load_checked``); works on a meta model."""
        load_checked(self, state, source=source, dtype=dtype)
        self._positions.clear()

    def save_pretrained(
        self,
        path: str | os.PathLike[str],
        *,
        max_shard_size: int | str | None = "10GB",
        variant: str | None = None,
    ) -> None:
        """Write ``config.json`` + safetensors weights (sharded with an index above the limit)."""
        folder = Path(path)
        write_state_dict(folder, self.state_dict(), max_shard_size=max_shard_size, variant=variant)
        write_config(folder / CONFIG_NAME, self.config.to_dict())
