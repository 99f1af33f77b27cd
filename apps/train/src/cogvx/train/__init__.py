"""CogVideoX training: Lightning modules, data modules and Hydra configs (see apps/train/README.md).

Transformer training: :class:`DiTModule` (T2V / I2V, full or LoRA) over frame-pack batches from
:class:`VideoDataModule`; LoRA settings :class:`LoraSettings`; export of a model folder
:func:`export_model_folder`.
"""

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time __getattr__ imports them
    from cogvx.train.data import VideoDataModule
    from cogvx.train.dit import DiTModule
    from cogvx.train.export import export_model_folder
    from cogvx.train.lora import LoraSettings
    from cogvx.train.shapes import (
        ShapesClipDataModule,
        ShapesDataConfig,
        ShapesVideoDataModule,
        make_shapes_dataset,
    )
    from cogvx.train.vae import ClipDataModule, VAEModule

# Submodule -> its public names (lazy_loader.attach), resolved on first use (PEP 562) so that ``cogvx train
# --help`` and config composition do not import torch or Lightning.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "vae": ["ClipDataModule", "VAEModule"],
        "dit": ["DiTModule"],
        "lora": ["LoraSettings"],
        "shapes": [
            "ShapesClipDataModule",
            "ShapesDataConfig",
            "ShapesVideoDataModule",
            "make_shapes_dataset",
        ],
        "data": ["VideoDataModule"],
        "export": ["export_model_folder"],
    },
)

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
