"""The diffusers model-folder layout: read and write ``config.json`` + safetensors weights.

Layout (what diffusers ``ModelMixin.save_pretrained`` writes and ``from_pretrained`` reads):

- ``config.json``;
- either one ``diffusion_pytorch_model.safetensors``, or shards
  ``diffusion_pytorch_model-00001-of-0000N.safetensors`` with the index
  ``diffusion_pytorch_model.safetensors.index.json`` = ``{"metadata": {"total_size": bytes},
  "weight_map": {key: shard file}}``;
- a ``variant`` (e.g. ``fp16``/``bf16``) inserts ``.<variant>`` before ``.safetensors``.

Files are written to a temporary name in the target folder and moved into place, so an
interrupted save leaves no half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

__all__ = ["load_folder_state_dict", "parse_size", "resolve_model_folder", "save_folder"]

WEIGHTS_STEM = "diffusion_pytorch_model"
_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(size: int | str) -> int:
    """``"10GB"`` / ``"500MiB"`` / ``1234`` -> bytes (diffusers' decimal units)."""
    if isinstance(size, bool):
        raise TypeError(f"max_shard_size must be an int or a string like '10GB', got {size!r}")
    if isinstance(size, int):
        value = size
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*", str(size).upper())
        if not match:
            raise ValueError(
                f"max_shard_size={size!r} is not a size; use bytes or e.g. '5GB', '500MB', '2GiB'"
            )
        value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value <= 0:
        raise ValueError(f"max_shard_size must be positive, got {size!r}")
    return value


def _weights_name(variant: str | None, suffix: str = ".safetensors") -> str:
    return f"{WEIGHTS_STEM}{'.' + variant if variant else ''}{suffix}"


def resolve_model_folder(path: Path, subfolder: str) -> Path:
    """``path`` itself when it holds ``config.json``, else ``path/subfolder`` (pipeline folder)."""
    if not path.exists():
        raise FileNotFoundError(f"model folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"model path {str(path)!r} is not a folder")
    if (path / "config.json").is_file():
        return path
    if (path / subfolder / "config.json").is_file():
        return path / subfolder
    raise FileNotFoundError(
        f"no config.json in {str(path)!r} or {str(path / subfolder)!r} (diffusers layout)"
    )


def load_folder_state_dict(
    folder: Path, *, variant: str | None = None, device: torch.device | str = "cpu"
) -> dict[str, Tensor]:
    """Read every tensor of a single-file or sharded safetensors checkpoint in ``folder``."""
    single = folder / _weights_name(variant)
    index = folder / _weights_name(variant, ".safetensors.index.json")
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{str(index)!r} is not a safetensors index: {err}") from err
        files = [folder / name for name in sorted(set(weight_map.values()))]
        absent = [str(f) for f in files if not f.is_file()]
        if absent:
            raise FileNotFoundError(f"{str(index)!r} names missing shard file(s): {absent}")
    else:
        others = sorted(p.name for p in folder.glob(f"{WEIGHTS_STEM}*"))
        raise FileNotFoundError(
            f"no {single.name} or {index.name} in {str(folder)!r}"
            + (
                f" (found {others}; pass variant=... or convert .bin to safetensors)"
                if others
                else ""
            )
        )
    state: dict[str, Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt", device=str(device)) as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a Mapping
                if key in state:
                    raise ValueError(f"key {key!r} appears in more than one shard ({file.name})")
                state[key] = handle.get_tensor(key)
    return state


def _atomic_write(path: Path, write) -> None:  # type: ignore[no-untyped-def]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_folder(
    folder: Path,
    config_json: str,
    state: Mapping[str, Tensor],
    *,
    max_shard_size: int | str = "10GB",
    variant: str | None = None,
) -> list[Path]:
    """Write ``config.json`` and the weights; returns the weight files written.

    Tensors are packed in key order into shards of at most ``max_shard_size`` bytes (a single
    tensor larger than that gets a shard of its own). Weight files of an earlier save in the same
    folder that the new save does not use are removed afterwards.
    """
    limit = parse_size(max_shard_size)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    shards: list[dict[str, Tensor]] = [{}]
    size = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes

    written: list[Path] = []
    if len(shards) == 1:
        target = folder / _weights_name(variant)
        _atomic_write(target, lambda tmp: save_file(shards[0], tmp, metadata={"format": "pt"}))
        written.append(target)
    else:
        count = len(shards)
        weight_map: dict[str, str] = {}
        for i, shard in enumerate(shards, start=1):
            name = _weights_name(variant).replace(
                ".safetensors", f"-{i:05d}-of-{count:05d}.safetensors"
            )
            target = folder / name
            _atomic_write(target, lambda tmp, s=shard: save_file(s, tmp, metadata={"format": "pt"}))
            written.append(target)
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        index_path = folder / _weights_name(variant, ".safetensors.index.json")
        _atomic_write(index_path, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=2)))
        written.append(index_path)
    _atomic_write(folder / "config.json", lambda tmp: Path(tmp).write_text(config_json))

    # Drop leftovers of an earlier save (other shard count, or single <-> sharded).
    keep = {p.name for p in written}
    pattern = re.compile(
        re.escape(WEIGHTS_STEM + (f".{variant}" if variant else ""))
        + r"(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?"
    )
    for old in folder.iterdir():
        if pattern.fullmatch(old.name) and old.name not in keep:
            old.unlink()
    return written
