"""Model folders in the diffusers layout, shared by every model member of cogvx.

One implementation of: ``config.json`` read/write (:mod:`.config`), weights as one safetensors
file or shards + ``diffusion_pytorch_model.safetensors.index.json`` (:mod:`.weights`), strict key
and shape checks with readable errors (:func:`check_state_dict`, :func:`load_checked`), atomic
writes (:mod:`.atomic`), and the field checks model configs validate with (:mod:`.fields`).
Depends on torch and safetensors[torch] only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ imports them
    from cogvx.modelio.atomic import (
        atomic_write,
        write_text_atomic,
    )
    from cogvx.modelio.config import (
        CONFIG_NAME,
        read_config,
        write_config,
    )
    from cogvx.modelio.dtypes import (
        DTYPE_NAMES,
        dtype_name,
        parse_dtype,
    )
    from cogvx.modelio.weights import (
        WEIGHTS_NAME,
        check_state_dict,
        find_weights,
        load_checked,
        parse_size,
        read_state_dict,
        resolve_model_folder,
        weights_names,
        write_state_dict,
    )

# Public name -> submodule. Imported on first use: the field checks, config and atomic-write
# helpers work without torch (the CLIs read folders and validate arguments before importing it).
_EXPORTS: dict[str, str] = {
    "atomic_write": "atomic",
    "write_text_atomic": "atomic",
    "CONFIG_NAME": "config",
    "read_config": "config",
    "write_config": "config",
    "DTYPE_NAMES": "dtypes",
    "dtype_name": "dtypes",
    "parse_dtype": "dtypes",
    "WEIGHTS_NAME": "weights",
    "check_state_dict": "weights",
    "find_weights": "weights",
    "load_checked": "weights",
    "parse_size": "weights",
    "read_state_dict": "weights",
    "resolve_model_folder": "weights",
    "weights_names": "weights",
    "write_state_dict": "weights",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.modelio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.modelio.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CONFIG_NAME",
    "DTYPE_NAMES",
    "WEIGHTS_NAME",
    "atomic_write",
    "check_state_dict",
    "dtype_name",
    "find_weights",
    "load_checked",
    "parse_dtype",
    "parse_size",
    "read_config",
    "read_state_dict",
    "resolve_model_folder",
    "weights_names",
    "write_config",
    "write_state_dict",
    "write_text_atomic",
]
