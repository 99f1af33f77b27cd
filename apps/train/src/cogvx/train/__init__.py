"""CogVideoX training: Lightning modules, data modules and Hydra configs (see apps/train/README.md).

Transformer training: :class:`DiTModule` (T2V / I2V, full or LoRA) over frame-pack batches from
:class:`VideoDataModule`; LoRA settings :class:`LoraSettings`; export of a model folder
:func:`export_model_folder`.
"""

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
