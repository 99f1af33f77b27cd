"""Reading and writing VAE weights in the diffusers folder layout (safetensors, sharded or not).

A model folder holds `config.json` and one of (first match wins):

- `diffusion_pytorch_model[.<variant>].safetensors`
- `diffusion_pytorch_model[.<variant>].safetensors.index.json` + its shards
- `model.safetensors` / `model.safetensors.index.json`
- `diffusion_pytorch_model[.<variant>].bin` (read with `torch.load(weights_only=True)`)

Writes are atomic: each file goes to a temp file in the same folder and is `os.replace`d.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

__all__ = ["WEIGHTS_NAME", "find_weights", "read_weights", "write_weights"]

WEIGHTS_NAME = "diffusion_pytorch_model"


def _candidates(variant: str | None) -> list[str]:
    stem = WEIGHTS_NAME if variant is None else f"{WEIGHTS_NAME}.{variant}"
    return [
        f"{stem}.safetensors",
        f"{stem}.safetensors.index.json",
        "model.safetensors",
        "model.safetensors.index.json",
        f"{stem}.bin",
    ]


def find_weights(folder: str | os.PathLike[str], variant: str | None = None) -> Path:
    """The weight file (or shard index) of a model folder; FileNotFoundError naming what is valid."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder not found: {str(folder)!r}")
    names = _candidates(variant)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no VAE weights in {str(folder)!r}; expected one of {names}")


def _shards(path: Path) -> list[Path]:
    try:
        index = json.loads(path.read_text())
        weight_map = index["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a valid shard index (needs 'weight_map'): {exc}"
        ) from exc
    files = sorted(set(weight_map.values()))
    missing = [f for f in files if not (path.parent / f).is_file()]
    if missing:
        raise FileNotFoundError(f"shard index {str(path)!r} names missing file(s) {missing}")
    return [path.parent / f for f in files]


def read_weights(
    path: Path, *, keep: Callable[[str], bool] = lambda key: True, dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """Tensors of a weight file or shard index, only the keys `keep` accepts, cast to `dtype`.

    Tensors are read one at a time, so at most one extra tensor is alive while casting.
    """
    out: dict[str, Tensor] = {}

    def put(key: str, tensor: Tensor) -> None:
        out[key] = tensor if dtype is None or not tensor.is_floating_point() else tensor.to(dtype)

    files = _shards(path) if path.name.endswith(".index.json") else [path]
    for file in files:
        if file.suffix == ".bin":
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            for key in list(state):
                if keep(key):
                    put(key, state[key])
            continue
        try:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    if keep(key):
                        put(key, f.get_tensor(key))
        except (OSError, RuntimeError, ValueError) as exc:  # safetensors raises SafetensorError
            raise ValueError(f"cannot read safetensors file {str(file)!r}: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ == "SafetensorError":
                raise ValueError(f"cannot read safetensors file {str(file)!r}: {exc}") from exc
            raise
    return out


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(text)


def write_weights(
    folder: Path,
    state: Mapping[str, Tensor],
    *,
    max_shard_size: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write `state` as `diffusion_pytorch_model.safetensors`, or shards + index when the
    total size exceeds `max_shard_size` bytes. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in state.items()}
    meta = {"format": "pt", **(metadata or {})}
    sizes = {k: v.numel() * v.element_size() for k, v in state.items()}
    total = sum(sizes.values())
    if max_shard_size is None or total <= max_shard_size:
        target = folder / f"{WEIGHTS_NAME}.safetensors"
        with _atomic(target) as tmp:
            save_file(state, str(tmp), metadata=meta)
        return [target]
    if max_shard_size < 1:
        raise ValueError(f"max_shard_size must be a positive number of bytes, got {max_shard_size}")
    shards: list[list[str]] = [[]]
    used = 0
    for key in state:
        if shards[-1] and used + sizes[key] > max_shard_size:
            shards.append([])
            used = 0
        shards[-1].append(key)
        used += sizes[key]
    written, weight_map = [], {}
    for i, keys in enumerate(shards, 1):
        name = f"{WEIGHTS_NAME}-{i:05d}-of-{len(shards):05d}.safetensors"
        with _atomic(folder / name) as tmp:
            save_file({k: state[k] for k in keys}, str(tmp), metadata=meta)
        written.append(folder / name)
        weight_map.update(dict.fromkeys(keys, name))
    index = folder / f"{WEIGHTS_NAME}.safetensors.index.json"
    write_text_atomic(
        index, json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return [*written, index]
