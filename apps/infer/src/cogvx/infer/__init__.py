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

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

# public name -> the module that defines it
_EXPORTS = {
    "fuse_lora": "lora",
    "load_lora": "lora",
    "set_lora_scale": "lora",
    "unfuse_lora": "lora",
    "unload_lora": "lora",
    "ModelFolder": "model_folder",
    "VAEInfo": "model_folder",
    "resolve_model_path": "model_folder",
    "MemoryEstimateError": "validation",
    "TASKS": "tasks",
    "Task": "tasks",
    "VideoPipelineOutput": "pipelines",
    "ImageToVideoPipeline": "pipelines",
    "TextToVideoPipeline": "pipelines",
    "VideoToVideoPipeline": "pipelines",
    "build_pipeline": "pipelines",
    "write_videos": "pipelines",
    "NonFiniteError": "precision",
    "resolve_dtype": "precision",
    "FamilyDefaults": "shapes",
    "ShapeRules": "shapes",
    "VideoShape": "shapes",
    "Residency": "staging",
    "StageReport": "staging",
    "StageStats": "staging",
    "T5TextEncoder": "text_encoder",
    "load_tokenizer": "text_encoder",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.infer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.infer.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
