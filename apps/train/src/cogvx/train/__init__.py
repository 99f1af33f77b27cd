"""CogVideoX training: Lightning modules, data modules and Hydra configs (see apps/train/README.md).

Transformer training: :class:`DiTModule` (T2V / I2V, full or LoRA) over frame-pack batches from
:class:`VideoDataModule`; LoRA settings :class:`LoraSettings`; export of a model folder
:func:`export_model_folder`.
"""

import importlib
from typing import Any

# Public name -> submodule. Exports are resolved on first use (PEP 562) so that ``cogvx train
# --help`` and config composition do not import torch or Lightning.
_EXPORTS = {
    "ClipDataModule": "vae",
    "DiTModule": "dit",
    "LoraSettings": "lora",
    "ShapesClipDataModule": "shapes",
    "ShapesDataConfig": "shapes",
    "ShapesVideoDataModule": "shapes",
    "VAEModule": "vae",
    "VideoDataModule": "data",
    "export_model_folder": "export",
    "make_shapes_dataset": "shapes",
}

__all__: list[str] = [
    "ClipDataModule",
    "DiTModule",
    "LoraSettings",
    "ShapesClipDataModule",
    "ShapesDataConfig",
    "ShapesVideoDataModule",
    "VAEModule",
    "VideoDataModule",
    "export_model_folder",
    "make_shapes_dataset",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.train.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
