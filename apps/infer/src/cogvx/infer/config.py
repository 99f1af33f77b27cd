"""Dataclass schema of the ``cogvx generate`` configuration (Hydra ConfigStore).

``conf/generate.yaml`` starts from this schema and is composed in struct mode
(:func:`cogvx.cli.hydra.compose`), so a mistyped key, a ``+key`` the schema lacks or a wrong type
fails when the config is composed, before any model is loaded; :func:`check_config` then checks every
value's range (``None`` means "the default", ``0`` is never read as one). ``pipeline._target_`` is
the public builder :func:`cogvx.infer.build_pipeline`; presets in ``conf/preset/`` set the released
models' recommended sampler and guidance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cogvx.cli.usage import UsageError
from cogvx.infer.tasks import TASKS

__all__ = [
    "BatchSettings",
    "CacheSettings",
    "GenerateConfig",
    "LoraSettings",
    "OutputSettings",
    "ParallelSettings",
    "PipelineSettings",
    "SamplingSettings",
    "VAESettings",
    "check_config",
    "register_configs",
]


@dataclass
class PipelineSettings:
    """What to load and where (arguments of :func:`cogvx.infer.build_pipeline`)."""

    _target_: str = "cogvx.infer.build_pipeline"
    model: str | None = (
        None  # a diffusers-layout model folder; None: cogvx.infer.default_model_dir()
    )
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
    steps: int | None = None  # None: 25 for the shipped shapes model (DEFAULT_MODEL_STEPS), else 50
    guidance_scale: float = 6.0
    guidance_schedule: str = "constant"  # constant | dynamic | dynamic_step_index
    negative_prompt: str | None = None
    unconditional: str = "t5"  # t5 | zeros
    strength: float = 0.8  # video-to-video only
    max_sequence_length: int | None = None
    snap: bool = False  # round invalid sizes/frame counts to the nearest valid ones
    strict_frames: bool = True  # 8N+1 / 16N+1 frames (False: any 4k+1)
    # Cheaper guidance (cogvx.expert_dit.caching.GuidancePlan; docs/pipelines.md §Step caching):
    guidance_stop: float | None = None  # CFG truncation: no guidance after this fraction of steps
    guidance_interval: list[float] | None = None  # [low, high]: guidance only for t in it
    uncond_every: int = 1  # compute the unconditional branch on every k-th guided step only


@dataclass
class CacheSettings:
    """Step caching (``cache=teacache|fbcache|pab|taylor``; cogvx.expert_dit.caching). Off by
    default."""

    method: str = "none"  # none | teacache | fbcache | taylor: the residual cache
    threshold: float = 0.0  # the residual cache's skip threshold (0: never skip)
    signal: str = "temb"  # teacache: temb (TeaCache4CogVideoX) | modulated (first block input)
    coefficients: list[float] | None = None  # teacache polynomial; None: the family's published
    interval: int | None = None  # taylor: blocks run every k-th step (None: 3)
    order: int | None = None  # degree of the skipped residual's forecast (None: taylor 1, else 0)
    warmup: int | None = None  # taylor: first steps always computed (None: 8)
    attention_every: int | None = None  # Pyramid Attention Broadcast: recompute every k steps
    attention_range: list[float] = field(default_factory=lambda: [100.0, 800.0])  # timesteps


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
    # A file (single prompt; a GIF, a contact-sheet PNG and generation.json are written beside it)
    # or a folder (prompt file). None: a new run folder outputs/generate/<time>/ (video.mp4).
    path: str | None = None
    format: str = "mp4"  # mp4 | gif, for prompt-file runs
    fps: int | None = None  # None: the family's (8 for 1.0, 16 for 1.5)
    overwrite: bool = False  # replace earlier outputs (otherwise an existing output is refused)


@dataclass
class BatchSettings:
    """Prompt-file runs: a Lightning predict loop over the available devices."""

    accelerator: str = "auto"
    devices: str = "auto"


@dataclass
class ParallelSettings:
    """One video on several processes (cogvx.infer.parallel; launch with torchrun or
    ``--nproc-per-node``): ``cfg`` x ``sp`` must equal the number of processes."""

    cfg: int = 1  # 2: the unconditional and conditional branches on two ranks
    sp: int = 1  # sequence-parallel degree of the transformer
    sp_mode: str = "ulysses"  # ulysses (sp | heads) | ring
    vae: int = 1  # ranks decoding each video together (row bands); divides cfg x sp
    timeout: float = 600.0  # seconds a collective may wait before the job fails


@dataclass
class GenerateConfig:
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    vae: VAESettings = field(default_factory=VAESettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    parallel: ParallelSettings = field(default_factory=ParallelSettings)
    prompt: str | None = None
    prompt_file: str | None = None  # one prompt per line, or JSON Lines {"prompt", "seed"?}
    image: str | None = None  # image-to-video conditioning image
    video: str | None = None  # video-to-video input
    progress: bool = True


SCHEMA_NAME = "generate_schema"  # the name generate.yaml's defaults list uses


def register_configs() -> None:
    """Register the schema as ``generate_schema`` (idempotent)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=GenerateConfig)


# key -> (check, what is valid); None always passes (it means "the default")
_CHOICES: dict[str, tuple[str, ...]] = {
    "pipeline.task": tuple(TASKS),
    "pipeline.sampler": ("ddim", "dpm"),
    "pipeline.dtype": ("auto", "fp32", "bf16", "fp16"),
    "pipeline.residency": ("resident", "offload", "staged"),
    "sampling.guidance_schedule": ("constant", "dynamic", "dynamic_step_index"),
    "sampling.unconditional": ("t5", "zeros"),
    "output.format": ("mp4", "gif"),
    "cache.method": ("none", "teacache", "fbcache", "taylor"),
    "cache.signal": ("temb", "modulated"),
    "parallel.sp_mode": ("ulysses", "ring"),
}
MAX_SEQUENCE_LENGTH = 4096  # CogVideoX uses 226; far longer allocates T5 activations of many GB
_INT_RANGES: dict[str, tuple[int, int | None]] = {
    "sampling.seed": (0, 2**63 - 1),
    "sampling.num_frames": (1, None),
    "sampling.height": (1, None),
    "sampling.width": (1, None),
    "sampling.steps": (1, 10_000),
    "sampling.max_sequence_length": (1, MAX_SEQUENCE_LENGTH),
    "vae.encode_frames": (1, None),
    "vae.decode_latent_frames": (1, None),
    "output.fps": (1, 1000),
    "sampling.uncond_every": (1, 10_000),
    "cache.attention_every": (1, 10_000),
    "cache.interval": (1, 10_000),
    "cache.order": (0, 4),
    "cache.warmup": (1, 10_000),
    "parallel.cfg": (1, 2),
    "parallel.sp": (1, 1024),
    "parallel.vae": (1, 1024),
}
_FLOAT_RANGES: dict[str, tuple[float, float | None, bool]] = {  # (low, high, low exclusive)
    "sampling.guidance_scale": (0.0, None, False),
    "sampling.strength": (0.0, 1.0, True),
    "lora.scale": (-100.0, 100.0, False),
    "sampling.guidance_stop": (0.0, 1.0, False),
    "cache.threshold": (0.0, None, False),
    "parallel.timeout": (0.0, None, True),
}


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def check_config(cfg: Any) -> None:
    """Refuse any out-of-range value of a composed config with a :class:`UsageError` naming the key,
    the value and what is valid (numbers finite, counts >= 1, choices spelled out)."""
    for key, choices in _CHOICES.items():
        value = _get(cfg, key)
        if value is not None and value not in choices:
            raise UsageError(key, value, f"choose from {', '.join(choices)}")
    for key, (low, high) in _INT_RANGES.items():
        value = _get(cfg, key)
        if value is not None and (value < low or (high is not None and value > high)):
            bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise UsageError(key, value, f"an integer {bound} (or null for the default)")
    for key, (low, high, exclusive) in _FLOAT_RANGES.items():
        value = _get(cfg, key)
        if value is None:
            continue
        ok = math.isfinite(value) and (value > low if exclusive else value >= low)
        if not ok or (high is not None and value > high):
            lo = f"{'>' if exclusive else '>='} {low}"
            bound = f"{lo} and <= {high}" if high is not None else lo
            raise UsageError(key, value, f"a finite number {bound}")
    for key in ("sampling.guidance_interval", "cache.attention_range"):
        value = _get(cfg, key)
        if value is None:
            continue
        pair = list(value)
        if len(pair) != 2 or not all(math.isfinite(v) for v in pair) or pair[0] > pair[1]:
            raise UsageError(key, pair, "[low, high] finite timesteps with low <= high")
    coefficients = cfg.cache.coefficients
    if coefficients is not None and not all(math.isfinite(c) for c in coefficients):
        raise UsageError("cache.coefficients", list(coefficients), "finite numbers")
    devices = str(cfg.batch.devices)
    if devices != "auto" and not (devices.isdigit() and int(devices) >= 1):
        raise UsageError("batch.devices", devices, "auto or a number of devices >= 1")
    for key in ("prompt", "sampling.negative_prompt"):
        value = _get(cfg, key)
        if value is not None and "\x00" in value:
            raise UsageError(key, value.replace("\x00", "\\0"), "text without NUL characters")
