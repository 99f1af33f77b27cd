"""Convert original SAT (SwissArmyTransformer) CogVideoX checkpoints to our / diffusers keys.

Rules (docs/transformer.md §SAT checkpoints, the published ``tools/convert_weight_sat2hf.py``):

1. keep the ``model.diffusion_model.`` tensors and strip that prefix (other sub-models of a full
   SAT checkpoint, e.g. ``first_stage_model.*`` or ``conditioner.*``, are skipped);
2. drop ``embed_tokens``, ``freqs_sin``, ``freqs_cos``, ``position_embedding`` (buffers the
   model recomputes);
3. apply the ordered substring renames of :data:`SAT_RENAMES`;
4. special cases: the fused ``query_key_value`` is chunked 3 ways along dim 0 into
   ``to_q/to_k/to_v``; ``query_layernorm_list.{i}`` / ``key_layernorm_list.{i}`` become
   ``transformer_blocks.{i}.attn1.norm_q`` / ``norm_k``; the single 12-way adaLN Linear
   ``adaln_layer.adaLN_modulations.{i}.1`` (chunks ``[shift, scale, gate]`` msa, mlp, then text
   msa, text mlp) is split into ``norm1.linear = chunks[0:3] + chunks[6:9]`` and
   ``norm2.linear = chunks[3:6] + chunks[9:12]``.

``patch_embed.pos_embedding`` is kept only for models with a learned table (5B-I2V); SAT 2B
stores its fixed sin-cos table under the same name, which the diffusers model does not persist.

Command line: ``python -m cogvx.expert_dit.convert SAT_CKPT OUT_DIR --preset 5b [--dtype bf16]``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from cogvx.modelio import parse_dtype

from .config import DiTConfig

__all__ = ["SAT_PREFIX", "SAT_RENAMES", "convert_sat_checkpoint", "convert_sat_state_dict"]

SAT_PREFIX = "model.diffusion_model."

#: Ordered substring renames (order matters: ``transformer.final_layernorm`` before
#: ``transformer``; ``attention`` turns ``post_attention_layernorm`` into ``post_attn1_layernorm``;
#: ``dense_h_to_4h``/``dense_4h_to_h`` before ``dense``).
SAT_RENAMES: tuple[tuple[str, str], ...] = (
    ("transformer.final_layernorm", "norm_final"),
    ("transformer", "transformer_blocks"),
    ("attention", "attn1"),
    ("mlp", "ff.net"),
    ("dense_h_to_4h", "0.proj"),
    ("dense_4h_to_h", "2"),
    (".layers", ""),
    ("dense", "to_out.0"),
    ("input_layernorm", "norm1.norm"),
    ("post_attn1_layernorm", "norm2.norm"),
    ("time_embed.0", "time_embedding.linear_1"),
    ("time_embed.2", "time_embedding.linear_2"),
    ("ofs_embed.0", "ofs_embedding.linear_1"),
    ("ofs_embed.2", "ofs_embedding.linear_2"),
    ("mixins.patch_embed", "patch_embed"),
    ("mixins.final_layer.norm_final", "norm_out.norm"),
    ("mixins.final_layer.linear", "proj_out"),
    ("mixins.final_layer.adaLN_modulation.1", "norm_out.linear"),
    ("mixins.pos_embed.pos_embedding", "patch_embed.pos_embedding"),
)
SAT_DROPPED = ("embed_tokens", "freqs_sin", "freqs_cos", "position_embedding")

_QK_NORM = re.compile(r"(query|key)_layernorm_list\.(\d+)\.(weight|bias)$")
_ADALN = re.compile(r"adaln_layer\.adaLN_modulations\.(\d+)\.1\.(weight|bias)$")


def _rename(key: str) -> str:
    for old, new in SAT_RENAMES:
        key = key.replace(old, new)
    return key


def convert_sat_state_dict(
    sat_state: Mapping[str, Tensor], config: DiTConfig | None = None
) -> dict[str, Tensor]:
    """SAT transformer state dict -> diffusers-named state dict (see module docstring).

    ``config`` (optional) decides whether a ``pos_embedding`` is a learned table to keep.
    """
    prefixed = any(k.startswith(SAT_PREFIX) for k in sat_state)
    out: dict[str, Tensor] = {}

    def put(key: str, value: Tensor) -> None:
        if key in out:
            raise ValueError(f"two SAT tensors map to the same key {key!r}")
        out[key] = value

    for sat_key, value in sat_state.items():
        if prefixed:
            if not sat_key.startswith(SAT_PREFIX):
                continue  # VAE / text encoder / loss tensors of a full SAT checkpoint
            key = sat_key[len(SAT_PREFIX) :]
        else:
            key = sat_key
        if any(token in key for token in SAT_DROPPED):
            continue
        if match := _QK_NORM.search(key):
            which, layer, kind = match.groups()
            put(f"transformer_blocks.{layer}.attn1.norm_{which[0]}.{kind}", value)
            continue
        if match := _ADALN.search(key):
            layer, kind = match.groups()
            if value.shape[0] % 12:
                raise ValueError(
                    f"{sat_key!r} has {value.shape[0]} rows, not a multiple of 12 (the 12-way "
                    "adaLN modulation)"
                )
            chunks = value.chunk(12, dim=0)
            put(
                f"transformer_blocks.{layer}.norm1.linear.{kind}",
                torch.cat(chunks[0:3] + chunks[6:9]),
            )
            put(
                f"transformer_blocks.{layer}.norm2.linear.{kind}",
                torch.cat(chunks[3:6] + chunks[9:12]),
            )
            continue
        key = _rename(key)
        if "query_key_value" in key:
            if value.shape[0] % 3:
                raise ValueError(
                    f"{sat_key!r} has {value.shape[0]} rows, not a multiple of 3 (fused q, k, v)"
                )
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0), strict=True):
                put(key.replace("query_key_value", name), part)
            continue
        put(key, value)

    if config is not None and not config.use_learned_positional_embeddings:
        out.pop("patch_embed.pos_embedding", None)
    return out


def _unwrap(saved: object) -> Mapping[str, Tensor]:
    """The tensor mapping inside a SAT / DeepSpeed checkpoint (``module``/``model``/``state_dict``)."""
    state = saved
    for wrapper in ("model", "module", "state_dict"):
        if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError("the SAT checkpoint holds no tensor state dict (looked in module/model)")
    return state


def convert_sat_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    config: DiTConfig,
    *,
    dtype: torch.dtype | None = None,
    max_shard_size: int | str = "10GB",
) -> Path:
    """Read a SAT ``.pt`` checkpoint, convert it, check it against ``config``, save a folder.

    The result loads with ``ExpertDiT.from_pretrained(output_dir)`` and with diffusers.
    """
    from .transformer import ExpertDiT

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"SAT checkpoint {str(checkpoint)!r} does not exist")
    saved = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True)
    state = convert_sat_state_dict(_unwrap(saved), config)
    with torch.device("meta"):
        model = ExpertDiT(config)
    model.load_checked_state_dict(state, dtype=dtype, source=str(checkpoint))
    model.save_pretrained(output_dir, max_shard_size=max_shard_size)
    return Path(output_dir)


_PRESETS = {
    "2b": DiTConfig.cogvideox_2b,
    "5b": DiTConfig.cogvideox_5b,
    "5b-i2v": DiTConfig.cogvideox_5b_i2v,
    "1.5-5b": DiTConfig.cogvideox_1_5_5b,
    "1.5-5b-i2v": DiTConfig.cogvideox_1_5_5b_i2v,
}
_DTYPE_SPELLINGS = ("fp32", "float32", "bf16", "bfloat16", "fp16", "float16")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cogvx.expert_dit.convert",
        description="Convert a SAT CogVideoX transformer checkpoint to the diffusers layout.",
    )
    parser.add_argument("checkpoint", help="SAT checkpoint (mp_rank_00_model_states.pt)")
    parser.add_argument("output_dir")
    parser.add_argument("--preset", choices=sorted(_PRESETS), required=True)
    parser.add_argument("--dtype", choices=_DTYPE_SPELLINGS, default=None)
    parser.add_argument("--max-shard-size", default="10GB")
    args = parser.parse_args(argv)
    convert_sat_checkpoint(
        args.checkpoint,
        args.output_dir,
        _PRESETS[args.preset](),
        dtype=parse_dtype(args.dtype, parameter="--dtype", allow_auto=True),
        max_shard_size=args.max_shard_size,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
