"""cogvx.infer: CogVideoX inference.

Pipelines (:class:`TextToVideoPipeline`, :class:`ImageToVideoPipeline`, :class:`VideoToVideoPipeline`)
that open a diffusers-layout model folder and reproduce the reference pipelines' outputs; the T5 text
encoder wrapper; shape rules; staged loading for small machines; LoRA loading; and the
``cogvx generate`` command (Hydra configs in ``cogvx/infer/conf``).

The public names are exported lazily (a module-level ``__getattr__``): importing ``cogvx.infer`` or
running ``cogvx generate --help`` loads no torch, transformers or peft; each name's module is imported
on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from cogvx.infer.lora import fuse_lora, load_lora, set_lora_scale, unfuse_lora, unload_lora
    from cogvx.infer.model_folder import ModelFolder, VAEInfo, resolve_model_path
    from cogvx.infer.pipelines import (
        ImageToVideoPipeline,
        TextToVideoPipeline,
        VideoPipelineOutput,
        VideoToVideoPipeline,
        build_pipeline,
        write_videos,
    )
    from cogvx.infer.precision import NonFiniteError, resolve_dtype
    from cogvx.infer.shapes import FamilyDefaults, ShapeRules, VideoShape
    from cogvx.infer.staging import Residency, StageReport, StageStats
    from cogvx.infer.tasks import TASKS, Task
    from cogvx.infer.text_encoder import T5TextEncoder, load_tokenizer
    from cogvx.infer.validation import MemoryEstimateError

# submodule -> the public names it defines (lazy_loader.attach, PEP 562)
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "lora": ["fuse_lora", "load_lora", "set_lora_scale", "unfuse_lora", "unload_lora"],
        "model_folder": ["ModelFolder", "VAEInfo", "resolve_model_path"],
        "validation": ["MemoryEstimateError"],
        "tasks": ["TASKS", "Task"],
        "pipelines": [
            "ImageToVideoPipeline",
            "TextToVideoPipeline",
            "VideoPipelineOutput",
            "VideoToVideoPipeline",
            "build_pipeline",
            "write_videos",
        ],
        "precision": ["NonFiniteError", "resolve_dtype"],
        "shapes": ["FamilyDefaults", "ShapeRules", "VideoShape"],
        "staging": ["Residency", "StageReport", "StageStats"],
        "text_encoder": ["T5TextEncoder", "load_tokenizer"],
    },
)

__all__ = [
    "DEFAULT_MODEL_STEPS",
    "TASKS",
    "FamilyDefaults",
    "ImageToVideoPipeline",
    "MemoryEstimateError",
    "ModelFolder",
    "NonFiniteError",
    "Residency",
    "ShapeRules",
    "StageReport",
    "StageStats",
    "T5TextEncoder",
    "Task",
    "TextToVideoPipeline",
    "VAEInfo",
    "VideoPipelineOutput",
    "VideoShape",
    "VideoToVideoPipeline",
    "build_pipeline",
    "default_model_dir",
    "fuse_lora",
    "load_lora",
    "load_tokenizer",
    "resolve_dtype",
    "resolve_model_path",
    "set_lora_scale",
    "unfuse_lora",
    "unload_lora",
    "write_videos",
]


#: Denoising steps ``cogvx generate`` uses for the shipped shapes model when ``--steps`` is not
#: given: the setting its adherence was measured at (docs/shapes-model.md). Other folders get 50,
#: the reference pipelines' default.
DEFAULT_MODEL_STEPS = 25


def default_model_dir() -> Path:
    """The shipped "shapes" text-to-video model folder (package data of cogvx-infer), which
    ``cogvx generate`` uses when no ``--model`` is given. It may be absent in a development
    checkout until the model is trained; callers check ``(dir / "model_index.json").is_file()``."""
    return Path(__file__).resolve().parent / "models" / "shapes"


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
