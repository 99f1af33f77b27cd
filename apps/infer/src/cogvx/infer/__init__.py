"""cogvx.infer: CogVideoX inference.

Pipelines (:class:`TextToVideoPipeline`, :class:`ImageToVideoPipeline`, :class:`VideoToVideoPipeline`)
that open a diffusers-layout model folder and reproduce the reference pipelines' outputs; the T5 text
encoder wrapper; shape rules; staged loading for small machines; LoRA loading; and the
``cogvx generate`` command (Hydra configs in ``cogvx/infer/conf``).
"""

from cogvx.infer.lora import fuse_lora, load_lora, set_lora_scale, unfuse_lora, unload_lora
from cogvx.infer.model_folder import ModelFolder
from cogvx.infer.pipelines import (
    GenerationResult,
    ImageToVideoPipeline,
    TextToVideoPipeline,
    VAEInfo,
    VideoToVideoPipeline,
    build_pipeline,
    write_videos,
)
from cogvx.infer.precision import NonFiniteError, resolve_dtype
from cogvx.infer.shapes import FamilyDefaults, ShapeRules, VideoShape
from cogvx.infer.staging import Residency, StageReport, StageStats
from cogvx.infer.text_encoder import T5TextEncoder, load_tokenizer

__all__ = [
    "FamilyDefaults",
    "GenerationResult",
    "ImageToVideoPipeline",
    "ModelFolder",
    "NonFiniteError",
    "Residency",
    "ShapeRules",
    "StageReport",
    "StageStats",
    "T5TextEncoder",
    "TextToVideoPipeline",
    "VAEInfo",
    "VideoShape",
    "VideoToVideoPipeline",
    "build_pipeline",
    "fuse_lora",
    "load_lora",
    "load_tokenizer",
    "resolve_dtype",
    "set_lora_scale",
    "unfuse_lora",
    "unload_lora",
    "write_videos",
]
