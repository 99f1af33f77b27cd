"""Model folders in the diffusers layout, shared by every model member of cogvx.

One implementation of: ``config.json`` read/write (:mod:`.config`), weights as one safetensors
file or shards + ``diffusion_pytorch_model.safetensors.index.json`` (:mod:`.weights`), strict key
and shape checks with readable errors (:func:`check_state_dict`, :func:`load_checked`), atomic
writes (:mod:`.atomic`), and the field checks model configs validate with (:mod:`.fields`).
Depends on torch and safetensors[torch] only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

# Submodule -> its public names (lazy_loader.attach, PEP 562), imported on first use: the field checks, config and atomic-write
# helpers work without torch (the CLIs read folders and validate arguments before importing it).
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "atomic": ["atomic_write", "write_text_atomic"],
        "config": ["CONFIG_NAME", "read_config", "write_config"],
        "dtypes": ["DTYPE_NAMES", "dtype_name", "parse_dtype"],
        "weights": [
            "WEIGHTS_NAME",
            "check_state_dict",
            "find_weights",
            "load_checked",
            "parse_size",
            "read_state_dict",
            "resolve_model_folder",
            "weights_names",
            "write_state_dict",
        ],
    },
)


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
