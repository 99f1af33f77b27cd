"""Dataclass schema of the ``cogvx generate`` configuration (Hydra ConfigStore).

``conf/generate.yaml`` starts from this schema, so a mistyped key or a wrong type fails when the
config is composed, before any model is loaded. ``pipeline._target_`` is the public builder
:func:`cogvx.infer.build_pipeline`; presets in ``conf/preset/`` set the released models' recommended
sampler and guidance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

__all__ = [
    "BatchSettings",
    "GenerateConfig",
    "LoraSettings",
    "OutputSettings",
    "PipelineSettings",
    "SamplingSettings",
    "VAESettings",
    "register_configs",
]


@dataclass
class PipelineSettings:
    """What to load and where (arguments of :func:`cogvx.infer.build_pipeline`)."""

    _target_: str = "cogvx.infer.build_pipeline"
    model: str = MISSING  # a diffusers-layout model folder
    task: str | None = None  # t2v | i2v | v2v; default: the folder's model_index.json
    sampler: str | None = None  # ddim | dpm; default: the folder's scheduler_config.json
    dtype: str = "auto"  # auto (bf16 on GPUs that have it, fp32 on CPU) | fp32 | bf16 | fp16
    device: str = "auto"
    residency: str = "resident"  # resident | offload | staged


@dataclass
class SamplingSettings:
    seed: int = 0
    num_frames: int | None = None  # None: the family default (49 for 1.0, 81 for 1.5)
    height: int | None = None
    width: int | None = None
    steps: int = 50
    guidance_scale: float = 6.0
    guidance_schedule: str = "constant"  # constant | dynamic | dynamic_step_index
    negative_prompt: str | None = None
    unconditional: str = "t5"  # t5 | zeros
    strength: float = 0.8  # video-to-video only
    max_sequence_length: int | None = None
    snap: bool = False  # round invalid sizes/frame counts to the nearest valid ones
    strict_frames: bool = True  # 8N+1 / 16N+1 frames (False: any 4k+1)


@dataclass
class VAESettings:
    tiling: bool = False
    encode_frames: int | None = 8
    decode_latent_frames: int | None = 2


@dataclass
class LoraSettings:
    path: str | None = None
    scale: float = 1.0
    fuse: bool = False


@dataclass
class OutputSettings:
    path: str = "outputs/video.mp4"  # a file (single prompt) or a folder (prompt file)
    format: str = "mp4"  # mp4 | gif, for prompt-file runs
    fps: int | None = None  # None: the family's (8 for 1.0, 16 for 1.5)


@dataclass
class BatchSettings:
    """Prompt-file runs: a Lightning predict loop over the available devices."""

    accelerator: str = "auto"
    devices: str = "auto"


@dataclass
class GenerateConfig:
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    vae: VAESettings = field(default_factory=VAESettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    prompt: str | None = None
    prompt_file: str | None = None  # one prompt per line, or JSON Lines {"prompt", "seed"?}
    image: str | None = None  # image-to-video conditioning image
    video: str | None = None  # video-to-video input
    progress: bool = True


def register_configs() -> None:
    """Register the schema as ``generate_schema`` (idempotent)."""
    ConfigStore.instance().store(name="generate_schema", node=GenerateConfig)
