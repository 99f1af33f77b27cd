"""The T5 encoder stack the CogVideoX pipelines condition on, weight-compatible with transformers'
``T5EncoderModel`` and loaded straight from its ``config.json`` + safetensors folder.

Why our own: the pipelines need only the encoder's forward, while importing transformers' modeling
code pulls in its hub-kernel, masking and tensor-parallel integrations (``torch._dynamo``,
``sympy``, ``torch.distributed.tensor``): about 11 s of the CLI's start-up on the project's 2-core
CPU, for a model that runs in 10 ms (docs/pipelines.md §Text encoder).

What it matches (transformers ``models/t5/modeling_t5.py``, T5 v1.0 / v1.1 / Flan-T5 configs):

* pre-norm blocks ``x + Attn(RMSNorm(x))`` then ``x + FF(RMSNorm(x))``; RMSNorm without a mean or a
  bias, its variance in float32 and cast back to a half weight's dtype (``T5LayerNorm``);
* attention without the ``1/sqrt(d)`` scale (T5 folds it into the initialisation) plus a learned,
  bucketed relative position bias computed by the first block and shared by all (``compute_bias``,
  bidirectional buckets: half exact, half logarithmic up to ``relative_attention_max_distance``);
* the feed-forward ``wo(act(wi(x)))`` or gated ``wo(act(wi_0(x)) * wi_1(x))``
  (``feed_forward_proj`` "relu", "gated-gelu", ...; "gated-gelu" means the tanh GELU ``gelu_new``);
* float16: ``wo`` kept in float32 (transformers' ``_keep_in_fp32_modules``) and hidden states
  clamped below the float16 maximum after each sub-block; bfloat16 and float32 run as stored;
* no attention mask: the pipelines encode the padding tokens too (docs/pipelines.md §Text encoder).

Parameter names are transformers' (``shared``, ``encoder.block.{i}.layer.{0,1}...``,
``encoder.final_layer_norm``), so a folder's state dict loads without renaming; ``decoder.*`` and
``lm_head`` keys of a full T5 checkpoint are ignored. Parity: ``apps/infer/tests/test_t5.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cogvx.modelio import parse_dtype

__all__ = ["T5Encoder", "T5EncoderConfig"]

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


def _gelu_new(x: Tensor) -> Tensor:
    # transformers' NewGELUActivation, written out so the numbers match to the last bit
    # (F.gelu(approximate="tanh") rounds differently).
    return (
        0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    )


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "swish": F.silu,
}


@dataclasses.dataclass(frozen=True)
class T5EncoderConfig:
    """The encoder fields of a transformers ``T5Config`` (``config.json`` of a ``text_encoder``
    folder). ``extra`` keeps every other key, so :meth:`to_dict` gives back the file's content."""

    vocab_size: int = 32128
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "gated-gelu"
    dtype: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        if self.relative_attention_num_buckets < 4 or self.relative_attention_num_buckets % 2:
            raise ValueError(
                f"relative_attention_num_buckets={self.relative_attention_num_buckets!r} must be "
                "an even int >= 4 (bidirectional buckets: half per direction, half of those exact)"
            )
        self.activation  # noqa: B018 (validates feed_forward_proj)
        if self.dtype is not None:
            parse_dtype(self.dtype)  # raises naming dtype and the valid names

    @property
    def is_gated(self) -> bool:
        return self.feed_forward_proj.split("-")[0] == "gated"

    @property
    def activation(self) -> str:
        """The activation name of ``feed_forward_proj`` ("gated-gelu" is the tanh ``gelu_new``)."""
        parts = self.feed_forward_proj.split("-")
        name = parts[-1]
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated") or name not in _ACTIVATIONS:
            raise ValueError(
                f"feed_forward_proj={self.feed_forward_proj!r} must be ACT or 'gated-ACT' with ACT in "
                f"{sorted(_ACTIVATIONS)}"
            )
        return "gelu_new" if self.feed_forward_proj == "gated-gelu" else name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> T5EncoderConfig:
        model_type = data.get("model_type", "t5")
        if model_type != "t5":
            raise ValueError(
                f"model_type={model_type!r}: this encoder loads T5 configs ('t5') only"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "dtype"}
        kwargs = {k: data[k] for k in names if k in data}
        dtype = data.get("dtype", data.get("torch_dtype"))
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**kwargs, dtype=dtype, extra=extra)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str]) -> T5EncoderConfig:
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"no config.json in the text encoder folder {folder}")
        return cls.from_dict(json.loads(path.read_text()))

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content (the fields over the keys they were read with)."""
        out = dict(self.extra)
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        del out["extra"], out["dtype"]
        if self.dtype is not None:
            out["dtype"] = self.dtype
        return out


class _Embedding(nn.Embedding):
    """``nn.Embedding`` that skips its random init on the meta device: ``normal_`` on a meta tensor
    imports ``torch._dynamo`` (about 4 s of start-up), and :meth:`T5Encoder.from_pretrained`
    replaces the values anyway."""

    def reset_parameters(self) -> None:
        if not self.weight.is_meta:
            super().reset_parameters()


class T5LayerNorm(nn.Module):
    """RMSNorm without a mean or a bias; the variance in float32 (``T5LayerNorm``)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


def relative_position_bucket(
    relative_position: Tensor, num_buckets: int, max_distance: int
) -> Tensor:
    """Bidirectional T5 buckets of ``key_pos - query_pos``: ``num_buckets / 2`` per sign, of which the
    first half are exact distances and the rest logarithmic bins up to ``max_distance``."""
    half = num_buckets // 2
    buckets = (relative_position > 0).to(torch.long) * half
    distance = relative_position.abs()
    max_exact = half // 2
    large = max_exact + (
        torch.log(distance.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (half - max_exact)
    ).to(torch.long)
    large = torch.minimum(large, torch.full_like(large, half - 1))
    return buckets + torch.where(distance < max_exact, distance, large)


class T5Attention(nn.Module):
    """Unscaled multi-head self-attention plus the relative position bias (first block only)."""

    def __init__(self, config: T5EncoderConfig, has_relative_attention_bias: bool) -> None:
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.num_heads, self.head_dim = config.num_heads, config.d_kv
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = _Embedding(self.num_buckets, config.num_heads)

    def compute_bias(self, length: int, device: torch.device) -> Tensor:
        """``[1, heads, L, L]`` bias of key position minus query position."""
        pos = torch.arange(length, dtype=torch.long, device=device)
        buckets = relative_position_bucket(
            pos[None, :] - pos[:, None], self.num_buckets, self.max_distance
        )
        return (
            self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)
        )  # [L, L, H] -> [1, H, L, L]

    def forward(self, x: Tensor, position_bias: Tensor | None) -> tuple[Tensor, Tensor]:
        b, length, _ = x.shape
        # [B, L, H*D] -> [B, H, L, D]
        q, k, v = (
            proj(x).view(b, length, self.num_heads, self.head_dim).transpose(1, 2)
            for proj in (self.q, self.k, self.v)
        )
        if position_bias is None:
            position_bias = self.compute_bias(length, x.device)
        # The bias is the additive mask, scale 1: transformers' SDPA path, the same kernel call.
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=position_bias.contiguous(), scale=1.0
        )
        out = out.transpose(1, 2).reshape(b, length, -1)  # [B, H, L, D] -> [B, L, H*D]
        return self.o(out), position_bias


class T5FeedForward(nn.Module):
    """``wo(act(wi(x)))`` or the gated ``wo(act(wi_0(x)) * wi_1(x))``, held as ``DenseReluDense``."""

    def __init__(self, config: T5EncoderConfig) -> None:
        super().__init__()
        self.gated = config.is_gated
        self.act = _ACTIVATIONS[config.activation]
        if self.gated:
            self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
            self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        else:
            self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.wi_0(x)) * self.wi_1(x) if self.gated else self.act(self.wi(x))
        # wo may be float32 under a float16 model (see T5Encoder.to_dtype)
        return self.wo(h.to(self.wo.weight.dtype))


def _clamp_fp16(x: Tensor) -> Tensor:
    """transformers' guard against float16 overflow: clamp below the largest finite value (1000
    below it when an inf already appeared)."""
    if x.dtype != torch.float16:
        return x
    top = torch.finfo(torch.float16).max
    limit = torch.where(torch.isinf(x).any(), top - 1000, top)
    return torch.clamp(x, min=-limit, max=limit)


class _SelfAttentionLayer(nn.Module):
    def __init__(self, config: T5EncoderConfig, has_relative_attention_bias: bool) -> None:
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)


class _FeedForwardLayer(nn.Module):
    def __init__(self, config: T5EncoderConfig) -> None:
        super().__init__()
        self.DenseReluDense = T5FeedForward(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)


class T5Block(nn.Module):
    """``x + Attn(norm(x))`` then ``x + FF(norm(x))``; ``layer[0]`` / ``layer[1]`` as in transformers."""

    def __init__(self, config: T5EncoderConfig, has_relative_attention_bias: bool) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            [_SelfAttentionLayer(config, has_relative_attention_bias), _FeedForwardLayer(config)]
        )

    def forward(self, x: Tensor, position_bias: Tensor | None) -> tuple[Tensor, Tensor]:
        attn, ff = self.layer
        out, position_bias = attn.SelfAttention(attn.layer_norm(x), position_bias)
        x = _clamp_fp16(x + out)
        x = _clamp_fp16(x + ff.DenseReluDense(ff.layer_norm(x)))
        return x, position_bias


class _Stack(nn.Module):
    def __init__(self, config: T5EncoderConfig) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            [T5Block(config, has_relative_attention_bias=i == 0) for i in range(config.num_layers)]
        )
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)


class T5Encoder(nn.Module):
    """``T5Encoder(config)(input_ids [B, L]) -> last_hidden_state [B, L, d_model]``.

    Build with :meth:`from_pretrained` on a ``text_encoder`` folder (``config.json`` plus
    ``model.safetensors`` or a sharded ``model.safetensors.index.json``).
    """

    def __init__(self, config: T5EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.shared = _Embedding(config.vocab_size, config.d_model)
        self.encoder = _Stack(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.shared.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.shared.weight.device

    def to_dtype(self, dtype: torch.dtype) -> T5Encoder:
        """Cast the parameters to ``dtype``, keeping every ``wo`` in float32 under float16 (as
        transformers loads T5: the last projection overflows float16)."""
        self.to(dtype=dtype)
        if dtype == torch.float16:
            for block in self.encoder.block:
                block.layer[1].DenseReluDense.wo.to(torch.float32)
        return self

    def forward(self, input_ids: Tensor) -> Tensor:
        if input_ids.ndim != 2 or input_ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"input_ids must be an integer tensor [batch, length], got {input_ids.dtype} "
                f"{tuple(input_ids.shape)}"
            )
        bad = (input_ids < 0) | (input_ids >= self.config.vocab_size)
        if bad.any():
            raise ValueError(
                f"input_ids hold {input_ids[bad][0].item()}, outside the vocabulary "
                f"[0, {self.config.vocab_size})"
            )
        x = self.shared(input_ids)
        position_bias = None
        for block in self.encoder.block:
            x, position_bias = block(x, position_bias)
        return self.encoder.final_layer_norm(x)

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
    ) -> T5Encoder:
        """Load a transformers ``T5EncoderModel`` (or ``T5ForConditionalGeneration``) folder.

        ``dtype`` None keeps the folder's dtype (``config.json`` ``dtype``, else the weights'), as
        transformers' ``dtype="auto"``. Missing or unexpected encoder weights raise, naming them.
        """
        from cogvx.modelio import load_checked, read_state_dict

        path = Path(folder)
        config = T5EncoderConfig.from_pretrained(path)
        state = read_state_dict(_weights_file(path), keep=_is_encoder_key)
        if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
            state["shared.weight"] = state["encoder.embed_tokens.weight"]
        state.pop("encoder.embed_tokens.weight", None)  # the tied copy of ``shared``
        with torch.device("meta"):
            model = cls(config)
        load_checked(model, state, source=str(path))
        stored = next((t.dtype for t in state.values() if t.is_floating_point()), None)
        target = dtype or parse_dtype(config.dtype, allow_auto=True) or stored or torch.float32
        return model.to_dtype(target).to(device).eval().requires_grad_(False)


def _is_encoder_key(key: str) -> bool:
    """The encoder's tensors of a T5 checkpoint (a full one also holds ``decoder.*``, ``lm_head``)."""
    return not key.startswith(("decoder.", "lm_head."))


def _weights_file(folder: Path) -> Path:
    """``model.safetensors`` or the shard index ``model.safetensors.index.json``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"text encoder folder not found: {folder}")
    for name in (WEIGHTS_NAME, WEIGHTS_INDEX_NAME):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"no weights in the text encoder folder {folder}: expected {WEIGHTS_NAME} or "
        f"{WEIGHTS_INDEX_NAME} (safetensors; pickled .bin weights are not loaded)"
    )
