"""Weights of a diffusers-layout model folder: safetensors, single file or shards + index.

Layout (what diffusers ``ModelMixin.save_pretrained`` writes and ``from_pretrained`` reads):

- ``config.json`` (see :mod:`cogvx.modelio.config`);
- ``diffusion_pytorch_model.safetensors``, or shards ``diffusion_pytorch_model-00001-of-0000N
  .safetensors`` with the index ``diffusion_pytorch_model.safetensors.index.json`` =
  ``{"metadata": {"total_size": bytes}, "weight_map": {key: shard file}}``;
- a ``variant`` (``fp16``, ``bf16``) inserts ``.<variant>`` before ``.safetensors``.

Reading also accepts ``model.safetensors[.index.json]`` and, last, ``diffusion_pytorch_model.bin``
(``torch.load(weights_only=True)``: tensors only, no code). Every error names the file it is
about: a missing or unreadable file, a truncated or corrupt safetensors file, an index that does
not match its shards, and (from :func:`check_state_dict`) missing, unexpected and mis-shaped keys.
Writes are atomic file by file (:mod:`cogvx.modelio.atomic`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from .atomic import atomic_write, write_text_atomic
from .config import CONFIG_NAME

__all__ = [
    "WEIGHTS_NAME",
    "check_state_dict",
    "find_weights",
    "load_checked",
    "parse_size",
    "read_state_dict",
    "resolve_model_folder",
    "weights_names",
    "write_state_dict",
]

WEIGHTS_NAME = "diffusion_pytorch_model"
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


# ============================================================================ names and sizes
def parse_size(size: int | str) -> int:
    """``"10GB"`` / ``"500MiB"`` / ``1234`` -> bytes (diffusers' decimal units)."""
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f"max_shard_size={size!r}: expected an int (bytes) or a size like '10GB'")
    if isinstance(size, int):
        value = size
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*", size.upper())
        if not match:
            raise ValueError(
                f"max_shard_size={size!r}: not a size; use bytes or e.g. '5GB', '500MB', '2GiB'"
            )
        value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value <= 0:
        raise ValueError(f"max_shard_size={size!r}: must be a positive number of bytes")
    return value


def _stem(variant: str | None) -> str:
    if variant is not None and (not isinstance(variant, str) or not re.fullmatch(r"\w+", variant)):
        raise ValueError(f"variant={variant!r}: expected None or a word such as 'fp16' or 'bf16'")
    return WEIGHTS_NAME if variant is None else f"{WEIGHTS_NAME}.{variant}"


def weights_names(variant: str | None = None) -> list[str]:
    """The weight file names looked for in a model folder, in the order they are tried."""
    stem = _stem(variant)
    return [
        f"{stem}.safetensors",
        f"{stem}.safetensors.index.json",
        "model.safetensors",
        "model.safetensors.index.json",
        f"{stem}.bin",
    ]


def resolve_model_folder(
    path: str | os.PathLike[str],
    subfolder: str | None = None,
    *,
    default_subfolder: str | None = None,
) -> Path:
    """The folder holding ``config.json``.

    ``path/subfolder`` when ``subfolder`` is given (diffusers' ``subfolder=``); otherwise ``path``
    itself when it holds ``config.json``, else ``path/default_subfolder`` (a pipeline folder such
    as ``CogVideoX-2b/`` with ``transformer/`` and ``vae/``).
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"model folder not found: {str(root)!r}")
    if not root.is_dir():
        raise NotADirectoryError(f"model path {str(root)!r} is not a folder")
    if subfolder is not None:
        folder = root / subfolder
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(
                f"no {CONFIG_NAME} in {str(folder)!r} (subfolder={subfolder!r})"
            )
        return folder
    if (root / CONFIG_NAME).is_file():
        return root
    if default_subfolder is not None and (root / default_subfolder / CONFIG_NAME).is_file():
        return root / default_subfolder
    looked = [str(root / CONFIG_NAME)]
    if default_subfolder is not None:
        looked.append(str(root / default_subfolder / CONFIG_NAME))
    raise FileNotFoundError(f"no {CONFIG_NAME} in the model folder; looked for {looked}")


def find_weights(folder: str | os.PathLike[str], variant: str | None = None) -> Path:
    """The weight file (or shard index) of a model folder; FileNotFoundError listing the names tried."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder not found: {str(folder)!r}")
    names = weights_names(variant)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p.name for p in folder.glob(f"{WEIGHTS_NAME}*"))
    hint = f" (found {found}; pass variant=...)" if found else ""
    raise FileNotFoundError(f"no weights in {str(folder)!r}; expected one of {names}{hint}")


# ============================================================================ reading
def _read_index(index: Path) -> dict[str, list[str]]:
    """``{shard path: [keys]}`` of a shard index, every shard checked to exist in the folder."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        weight_map = data["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"shard index {str(index)!r} is not valid (needs a JSON object with 'weight_map'): "
            f"{type(err).__name__}: {err}"
        ) from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise ValueError(f"shard index {str(index)!r}: 'weight_map' must map key -> file name")
    shards: dict[str, list[str]] = {}
    for key, name in weight_map.items():
        if Path(name).name != name:
            raise ValueError(
                f"shard index {str(index)!r} names {name!r} for {key!r}: shards must be plain "
                "file names in the index's folder"
            )
        shards.setdefault(name, []).append(key)
    missing = [name for name in sorted(shards) if not (index.parent / name).is_file()]
    if missing:
        raise FileNotFoundError(f"shard index {str(index)!r} names missing file(s) {missing}")
    return {str(index.parent / name): keys for name, keys in sorted(shards.items())}


def _cast(tensor: Tensor, dtype: torch.dtype | None) -> Tensor:
    return tensor if dtype is None or not tensor.is_floating_point() else tensor.to(dtype)


def _read_safetensors(
    file: Path, keep: Callable[[str], bool], dtype: torch.dtype | None, device: str, out: dict
) -> list[str]:
    """Add ``file``'s kept tensors to ``out``; returns all keys in the file."""
    try:
        with safe_open(str(file), framework="pt", device=device) as handle:
            keys = list(handle.keys())
            for key in keys:
                if not keep(key):
                    continue
                if key in out:
                    raise ValueError(
                        f"key {key!r} in {str(file)!r} was already read from another shard"
                    )
                out[key] = _cast(handle.get_tensor(key), dtype)
    except ValueError:
        raise
    except Exception as err:  # safetensors raises SafetensorError (an Exception) or OSError
        raise ValueError(
            f"cannot read safetensors file {str(file)!r} (truncated or corrupt?): "
            f"{type(err).__name__}: {err}"
        ) from None
    return keys


def read_state_dict(
    path: str | os.PathLike[str],
    *,
    variant: str | None = None,
    keep: Callable[[str], bool] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, Tensor]:
    """Tensors of a model folder, a ``.safetensors`` file, a shard index or a ``.bin`` file.

    ``keep(key)`` selects keys (all by default); floating tensors are cast to ``dtype`` one at a
    time (at most one extra tensor alive while casting). A shard index must agree with its shards:
    a key it lists that its shard lacks is an error naming both files.
    """
    path = Path(path)
    file = find_weights(path, variant) if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"weights file not found: {str(file)!r}")
    select = keep if keep is not None else (lambda key: True)
    device = str(device)
    out: dict[str, Tensor] = {}
    if file.name.endswith(".index.json"):
        for shard, listed in _read_index(file).items():
            present = set(_read_safetensors(Path(shard), select, dtype, device, out))
            absent = [k for k in listed if k not in present]
            if absent:
                raise ValueError(
                    f"shard index {str(file)!r} places {len(absent)} key(s) in {shard!r} that the "
                    f"file does not hold: {_preview(absent)}"
                )
    elif file.suffix == ".bin":
        try:
            state = torch.load(file, map_location=device, weights_only=True, mmap=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
            raise ValueError(
                f"cannot read {str(file)!r} (torch.load weights_only): {type(err).__name__}: {err}"
            ) from None
        if not isinstance(state, Mapping):
            raise ValueError(f"{str(file)!r} does not hold a state dict")
        for key in list(state):
            if select(key):
                out[key] = _cast(state[key], dtype)
    else:
        _read_safetensors(file, select, dtype, device, out)
    return out


# ============================================================================ checking
def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def check_state_dict(
    state: Mapping[str, Tensor],
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    *,
    source: str,
    what: str = "model",
) -> None:
    """Raise one ValueError naming ``source`` when ``state`` does not fit ``expected`` shapes.

    The message lists missing keys, unexpected keys and mis-shaped keys (checkpoint shape vs model
    shape), each with its count.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k])}"
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_preview(unexpected)}")
    if wrong:
        problems.append(f"mis-shaped keys ({len(wrong)}): {_preview(wrong)}")
    if problems:
        raise ValueError(
            f"weights in {source} do not fit this {what} (is config.json the one saved with "
            "these weights?): " + "; ".join(problems)
        )


def load_checked(
    module: nn.Module,
    state: Mapping[str, Tensor],
    *,
    source: str,
    dtype: torch.dtype | None = None,
) -> None:
    """Strict ``load_state_dict`` after :func:`check_state_dict`; floating tensors cast to ``dtype``.

    On a module built on the meta device the tensors are assigned (held in memory once); otherwise
    they are copied into the existing parameters.
    """
    expected = {k: v.shape for k, v in module.state_dict(keep_vars=True).items()}
    check_state_dict(state, expected, source=source, what=type(module).__name__)
    state = {k: _cast(v, dtype) for k, v in state.items()}
    meta = any(t.is_meta for t in module.state_dict(keep_vars=True).values())
    module.load_state_dict(state, strict=True, assign=meta)


# ============================================================================ writing
def write_state_dict(
    folder: str | os.PathLike[str],
    state: Mapping[str, Tensor],
    *,
    max_shard_size: int | str | None = "10GB",
    variant: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``state`` into ``folder`` as one safetensors file, or shards + index above the limit.

    Tensors are packed in key order into shards of at most ``max_shard_size`` bytes (None: one
    file whatever the size; a tensor larger than the limit gets a shard of its own). Weight files
    of an earlier save that this one does not use are removed afterwards. Returns the files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _stem(variant)
    limit = None if max_shard_size is None else parse_size(max_shard_size)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    meta = {"format": "pt", **(metadata or {})}
    shards: list[dict[str, Tensor]] = [{}]
    used = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if limit is not None and shards[-1] and used + nbytes > limit:
            shards.append({})
            used = 0
        shards[-1][key] = tensor
        used += nbytes

    written: list[Path] = []
    if len(shards) == 1:
        target = folder / f"{stem}.safetensors"
        with atomic_write(target) as tmp:
            save_file(shards[0], str(tmp), metadata=meta)
        written.append(target)
    else:
        weight_map: dict[str, str] = {}
        for i, shard in enumerate(shards, start=1):
            target = folder / f"{stem}-{i:05d}-of-{len(shards):05d}.safetensors"
            with atomic_write(target) as tmp:
                save_file(shard, str(tmp), metadata=meta)
            written.append(target)
            weight_map.update(dict.fromkeys(shard, target.name))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = folder / f"{stem}.safetensors.index.json"
        body = {"metadata": {"total_size": total}, "weight_map": weight_map}
        written.append(write_text_atomic(index, json.dumps(body, indent=2) + "\n"))

    # Drop leftovers of an earlier save (another shard count, or single <-> sharded).
    keep = {p.name for p in written}
    pattern = re.compile(re.escape(stem) + r"(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?")
    for old in folder.iterdir():
        if pattern.fullmatch(old.name) and old.name not in keep:
            old.unlink()
    return written
