"""Convert the original SAT VAE checkpoint layout to the diffusers key names used here.

The SAT VAE (`sat/vae_modules/cp_enc_dec.py`, `ContextParallelEncoder3D/Decoder3D`) names its
modules `down.{i}.block.{j}`, `mid.block_{1,2}`, `up.{L}.block.{j}` (levels counted from the
lowest resolution), `downsample`, `upsample`, `nin_shortcut`, and stores the training loss
(`loss.*`, LPIPS + discriminator) in the same file. The rename table (docs/vae.md §SAT checkpoints, after diffusers'
`convert_cogvideox_to_diffusers.py`):

    block.           -> resnets.
    down.            -> down_blocks.
    downsample       -> downsamplers.0
    upsample         -> upsamplers.0
    nin_shortcut     -> conv_shortcut
    {enc,dec}.mid.block_{1,2} -> {enc,dec}.mid_block.resnets.{0,1}
    up.{L}           -> up_blocks.{levels-1-L}
    loss.*           -> dropped

Tensor values are unchanged (the layers have identical shapes in both layouts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["convert_sat_state_dict", "load_sat_state_dict", "sat_to_diffusers_key"]

_PREFIXES = ("first_stage_model.", "module.")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(encoder|decoder)\.mid\.block_1\."), r"\1.mid_block.resnets.0."),
    (re.compile(r"^(encoder|decoder)\.mid\.block_2\."), r"\1.mid_block.resnets.1."),
    (re.compile(r"^encoder\.down\.(\d+)\."), r"encoder.down_blocks.\1."),
    (re.compile(r"\.block\.(\d+)\."), r".resnets.\1."),
    (re.compile(r"\.downsample\."), r".downsamplers.0."),
    (re.compile(r"\.upsample\."), r".upsamplers.0."),
    (re.compile(r"\.nin_shortcut\."), r".conv_shortcut."),
)
_UP = re.compile(r"^decoder\.up\.(\d+)\.")


def sat_to_diffusers_key(key: str, *, num_levels: int = 4) -> str | None:
    """The diffusers name of a SAT VAE key, or None for keys that are dropped (`loss.*`)."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    if key.startswith("loss."):
        return None
    for pattern, repl in _RULES:
        key = pattern.sub(repl, key)
    up = _UP.match(key)
    if up:
        level = int(up.group(1))
        if not 0 <= level < num_levels:
            raise ValueError(f"SAT key {key!r}: up level {level} outside 0..{num_levels - 1}")
        key = f"decoder.up_blocks.{num_levels - 1 - level}." + key[up.end() :]
    return key


def convert_sat_state_dict(
    state: Mapping[str, Tensor], *, num_levels: int = 4
) -> dict[str, Tensor]:
    """Rename a SAT VAE state dict to diffusers keys (drops `loss.*`).

    Accepts the raw mapping or a checkpoint wrapper `{"state_dict": ...}` / `{"module": ...}`.
    """
    for wrapper in ("state_dict", "module"):
        if wrapper in state and isinstance(state[wrapper], Mapping):
            state = state[wrapper]  # type: ignore[assignment]
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        new = sat_to_diffusers_key(key, num_levels=num_levels)
        if new is None:
            continue
        if new in out:
            raise ValueError(f"SAT keys collide after renaming: two keys map to {new!r}")
        out[new] = value
    return out


def load_sat_state_dict(path: str | os.PathLike[str], *, num_levels: int = 4) -> dict[str, Tensor]:
    """Read a SAT VAE checkpoint (`torch.save` file, read with weights_only=True) and convert it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SAT checkpoint not found: {str(path)!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{str(path)!r} does not hold a state dict (got {type(state).__name__})")
    return convert_sat_state_dict(state, num_levels=num_levels)
