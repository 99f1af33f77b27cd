"""``cogvx generate``: text/image/video to video from the command line.

    cogvx generate "a red circle moves to the right"               # the shipped shapes model
    cogvx generate "a panda playing guitar" --model DIR --seed 1 --output out.mp4
    cogvx generate "..." --model DIR --image first.png --frames 49 --steps 30 --dtype bf16
    cogvx generate --prompt-file prompts.txt --model DIR --output outdir/ preset=cogvideox_5b
    cogvx generate "..." --seed 1,2,3                              # a Hydra multirun, one job per seed
    cogvx generate -m "..." sampling.guidance_scale=4,6 hydra.sweep.dir=sweeps/g
    cogvx generate "..." --nproc-per-node 4 parallel.cfg=2 parallel.sp=2   # one video, 4 processes
    torchrun --no-python --nproc-per-node 4 cogvx generate "..." parallel.cfg=2 parallel.sp=2
    cogvx generate "..." cache=teacache cache.threshold=0.4 sampling.guidance_stop=0.6   # faster

Flags are shorthands for config keys; any ``key=value`` argument is a Hydra override composed over
``cogvx/infer/conf/generate.yaml`` in struct mode (:mod:`cogvx.cli.hydra`): a typo, a ``+key`` the
schema lacks, a wrong type or an unknown preset fails before anything loads, as one line naming the
key (exit 2). Output paths are checked before any work and an earlier output is never replaced
without ``--overwrite``. Prints a progress bar over denoising and decoding, a per-stage time and
peak-memory summary, and the paths it wrote.

Start-up: nothing heavy is imported until the arguments and the config are checked (``--help`` loads
no torch, transformers or peft).
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogvx.cli.usage import ArgumentParser, UsageError, float_arg, int_arg
from cogvx.infer.tasks import TASKS

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["compose_config", "main"]

CONFIG_MODULE = "cogvx.infer.conf"
CONFIG_NAME = "generate"
_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.]*(@[\w.]+)?=")
TASK_CHOICES = tuple(TASKS)  # the one task table (pure Python: no torch on the --help path)
#: Denoising steps for a --model folder when --steps is not given (the reference pipelines' default).
REFERENCE_STEPS = 50
PRESETS = ("cogvideox_2b", "cogvideox_5b", "cogvideox1_5_5b")

# flag dest -> config key
_FLAG_KEYS = {
    "model": "pipeline.model",
    "task": "pipeline.task",
    "sampler": "pipeline.sampler",
    "dtype": "pipeline.dtype",
    "device": "pipeline.device",
    "frames": "sampling.num_frames",
    "height": "sampling.height",
    "width": "sampling.width",
    "steps": "sampling.steps",
    "guidance": "sampling.guidance_scale",
    "guidance_schedule": "sampling.guidance_schedule",
    "negative_prompt": "sampling.negative_prompt",
    "strength": "sampling.strength",
    "output": "output.path",
    "fps": "output.fps",
    "lora": "lora.path",
    "lora_scale": "lora.scale",
    "image": "image",
    "video": "video",
    "prompt_file": "prompt_file",
}


def _seeds(text: str) -> str:
    """``--seed N`` or ``--seed 1,2,3`` (a sweep): each a non-negative integer."""
    parts = [p.strip() for p in text.split(",")]
    for p in parts:
        if not p.isdigit() or int(p) > 2**63 - 1:
            raise UsageError("--seed", text, "a non-negative integer or a comma list (1,2,3)")
    return ",".join(str(int(p)) for p in parts)


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="cogvx generate",
        description="Generate videos with a CogVideoX model folder (diffusers layout); "
        "without --model, the shipped shapes model.",
        epilog="Extra key=value arguments are Hydra overrides, e.g. sampling.steps=30 vae.tiling=true "
        "preset=cogvideox_5b. Config keys: pipeline.*, sampling.*, vae.*, lora.*, output.*, batch.*, "
        "cache.*. -m (or a --seed list) runs a Hydra multirun: one folder per job under "
        "hydra.sweep.dir. Faster sampling (off by default): cache=teacache|fbcache|pab|taylor with "
        "cache.threshold=X (teacache/fbcache; 0 never skips), cache.interval=K cache.order=M "
        "(taylor: blocks every K-th step, residual forecast of degree M between; cache.order also "
        "forecasts the skipped residual of teacache/fbcache) and cache.attention_every=K "
        "(attention reuse, combinable); sampling.guidance_stop=F (no CFG after fraction F of the "
        "steps), "
        "sampling.guidance_interval=[lo,hi] (CFG only for timesteps in it), sampling.uncond_every=K "
        "(unconditional branch on every K-th guided step, reused between).",
    )
    p.add_argument(
        "args", nargs="*", metavar="PROMPT | key=value", help="the prompt, and any Hydra overrides"
    )
    p.add_argument("--model", help="model folder (default: the shipped shapes model)")
    p.add_argument("--task", choices=TASK_CHOICES, help="default: the folder's own task")
    p.add_argument("--prompt-file", help="batch mode: one prompt per line (or .jsonl); resumable")
    p.add_argument("--negative-prompt")
    p.add_argument("--image", help="conditioning image (image-to-video)")
    p.add_argument("--video", help="input video (video-to-video)")
    p.add_argument(
        "--strength",
        type=float_arg("--strength", minimum=0.0, maximum=1.0, exclusive_minimum=True),
        help="video-to-video strength (0.8)",
    )
    p.add_argument("--seed", type=_seeds, help="seed, or a comma list for a multirun (1,2,3)")
    p.add_argument(
        "--output",
        "-o",
        help="output .mp4/.gif (a folder with --prompt-file); default: a new folder under outputs/",
    )
    p.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    p.add_argument(
        "--frames",
        type=int_arg("--frames", minimum=1),
        help="number of frames (8N+1 for 1.0, 16N+1 for 1.5)",
    )
    p.add_argument("--height", type=int_arg("--height", minimum=1))
    p.add_argument("--width", type=int_arg("--width", minimum=1))
    p.add_argument("--snap", action="store_true", help="round invalid sizes to the nearest valid")
    p.add_argument("--steps", type=int_arg("--steps", minimum=1, maximum=10_000))
    p.add_argument("--guidance", type=float_arg("--guidance", minimum=0.0), help="(6.0)")
    p.add_argument("--dynamic-cfg", action="store_true", help="the reference dynamic CFG schedule")
    p.add_argument("--guidance-schedule", choices=["constant", "dynamic", "dynamic_step_index"])
    p.add_argument("--sampler", choices=["ddim", "dpm"], help="default: the folder's scheduler")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    p.add_argument("--tiling", action="store_true", help="tiled VAE encode/decode")
    p.add_argument(
        "--staged",
        action="store_true",
        help="load each model only for its stage (lowest peak memory)",
    )
    p.add_argument(
        "--offload",
        action="store_true",
        help="keep models in CPU memory, move each to the device for its stage",
    )
    p.add_argument("--lora", help="LoRA folder or pytorch_lora_weights.safetensors")
    p.add_argument("--lora-scale", type=float_arg("--lora-scale", minimum=-100.0, maximum=100.0))
    p.add_argument("--fuse-lora", action="store_true")
    p.add_argument(
        "--fps", type=int_arg("--fps", minimum=1, maximum=1000), help="default: 8 (1.0), 16 (1.5)"
    )
    p.add_argument("--preset", choices=PRESETS)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--nproc-per-node",
        type=int_arg("--nproc-per-node", minimum=1, maximum=1024),
        help="generate one video on N local processes (parallel.cfg x parallel.sp = N); "
        "or launch with torchrun --no-python --nproc-per-node N cogvx generate ...",
    )
    p.add_argument(
        "-m", "--multirun", action="store_true", help="Hydra multirun over sweep overrides"
    )
    return p


def _quote(value: Any) -> str:
    """A Hydra override value: strings quoted so spaces, commas and '=' survive."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _overrides(ns: Any) -> list[str]:
    prompts = [a for a in ns.args if not _OVERRIDE.match(a)]
    user = [a for a in ns.args if _OVERRIDE.match(a)]
    if len(prompts) > 1:
        raise UsageError(
            "PROMPT", " ".join(prompts), "one prompt argument; quote the prompt as one argument"
        )
    out: list[str] = []
    for dest, key in _FLAG_KEYS.items():
        value = getattr(ns, dest, None)
        if value is not None:
            out.append(f"{key}={_quote(value)}")
    if ns.seed is not None:
        out.append(f"sampling.seed={ns.seed}")  # a comma list is a sweep
    if ns.preset is not None:
        out.append(f"preset={ns.preset}")
    if ns.dynamic_cfg:
        if ns.guidance_schedule not in (None, "dynamic"):
            raise UsageError(
                "--dynamic-cfg", None, f"contradicts --guidance-schedule {ns.guidance_schedule}"
            )
        out.append("sampling.guidance_schedule=dynamic")
    for flag, key in (
        ("snap", "sampling.snap"),
        ("tiling", "vae.tiling"),
        ("fuse_lora", "lora.fuse"),
        ("overwrite", "output.overwrite"),
    ):
        if getattr(ns, flag):
            out.append(f"{key}=true")
    if ns.staged and ns.offload:
        raise UsageError("--staged", None, "--staged and --offload are exclusive; pick one")
    if ns.staged:
        out.append("pipeline.residency=staged")
    if ns.offload:
        out.append("pipeline.residency=offload")
    if ns.no_progress:
        out.append("progress=false")
    if prompts:
        if not prompts[0].strip():
            raise UsageError("PROMPT", prompts[0], "a non-empty prompt")
        out.append(f"prompt={_quote(prompts[0])}")
    return out + user


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose ``generate.yaml`` with ``overrides`` in struct mode over the ``GenerateConfig`` schema
    and check every value's range; errors are :class:`~cogvx.cli.usage.UsageError` (one line)."""
    from cogvx.cli.hydra import compose
    from cogvx.infer.config import SCHEMA_NAME, GenerateConfig, check_config

    cfg = compose(
        CONFIG_MODULE,
        CONFIG_NAME,
        overrides,
        schema=GenerateConfig,
        schema_name=SCHEMA_NAME,
        job_name="generate",
    )
    check_config(cfg)
    return cfg


def _model_folder(cfg: DictConfig) -> str:
    """The model folder: ``--model``, or the shipped shapes model (checked to exist). Fills in
    ``sampling.steps`` when unset: 50 for a given folder, ``DEFAULT_MODEL_STEPS`` (25, the setting
    its adherence was measured at) for the shipped one."""
    from cogvx.infer import DEFAULT_MODEL_STEPS, default_model_dir

    if cfg.pipeline.model is not None:
        path = Path(cfg.pipeline.model)
        if not (path / "model_index.json").is_file():
            what = "no model_index.json in it" if path.is_dir() else "no such folder"
            raise UsageError("--model", str(path), f"a model folder with model_index.json ({what})")
        if cfg.sampling.steps is None:
            cfg.sampling.steps = REFERENCE_STEPS
        return str(path)

    folder = default_model_dir()
    if not (folder / "model_index.json").is_file():
        raise UsageError(
            "--model",
            None,
            f"the default shapes model is missing ({folder} has no model_index.json); "
            "pass --model DIR with a CogVideoX model folder",
        )
    if cfg.sampling.steps is None:
        cfg.sampling.steps = DEFAULT_MODEL_STEPS
    return str(folder)


def _call_kwargs(cfg: DictConfig, task: str) -> dict[str, Any]:
    s = cfg.sampling
    kwargs: dict[str, Any] = dict(
        height=s.height,
        width=s.width,
        num_inference_steps=s.steps,
        guidance_scale=s.guidance_scale,
        guidance_schedule=s.guidance_schedule,
        negative_prompt=s.negative_prompt,
        max_sequence_length=s.max_sequence_length,
        unconditional=s.unconditional,
        snap=s.snap,
        strict_frames=s.strict_frames,
    )
    if task == "v2v":
        kwargs["strength"] = s.strength
    else:
        kwargs["num_frames"] = s.num_frames
    return kwargs | _speed_kwargs(cfg)


def _speed_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """``cache=`` and ``guidance_plan=`` of the pipeline call from ``cache.*`` and the guidance keys
    of ``sampling.*`` (both None when off: the reference path)."""
    from cogvx.expert_dit.caching import (
        FirstBlockCache,
        GuidancePlan,
        PyramidBroadcast,
        StepCaching,
        TaylorForecast,
        TeaCache,
    )

    c, s = cfg.cache, cfg.sampling
    if c.method != "teacache" and c.coefficients is not None:
        raise UsageError("cache.coefficients", list(c.coefficients), "only for cache=teacache")
    if c.method == "none" and c.threshold != 0:
        raise UsageError("cache.threshold", c.threshold, "needs cache=teacache or cache=fbcache")
    for key in ("interval", "warmup"):
        if c.method != "taylor" and c.get(key) is not None:
            raise UsageError(f"cache.{key}", c.get(key), "only for cache=taylor")
    if c.method == "none" and c.order is not None:
        raise UsageError("cache.order", c.order, "needs cache=taylor, fbcache or teacache")
    order = 0 if c.order is None else int(c.order)
    residual: Any = None
    if c.method == "teacache":
        coefficients = None if c.coefficients is None else tuple(c.coefficients)
        residual = TeaCache(
            float(c.threshold), coefficients=coefficients, signal=c.signal, order=order
        )
    elif c.method == "fbcache":
        residual = FirstBlockCache(float(c.threshold), order=order)
    elif c.method == "taylor":  # unset keys keep TaylorForecast's defaults
        given = {k: int(c[k]) for k in ("interval", "order", "warmup") if c[k] is not None}
        residual = TaylorForecast(**given)
    attention = None
    if c.attention_every is not None:
        low, high = c.attention_range
        attention = PyramidBroadcast(int(c.attention_every), (float(low), float(high)))
    caching = StepCaching(residual, attention)
    interval = s.guidance_interval
    plan = GuidancePlan(
        stop_fraction=None if s.guidance_stop is None else float(s.guidance_stop),
        interval=None if interval is None else (float(interval[0]), float(interval[1])),
        uncond_every=int(s.uncond_every),
    )
    return {
        "cache": caching if caching.active else None,
        "guidance_plan": None if plan.is_reference else plan,
    }


def _build(cfg: DictConfig, model: str, device: Any = None) -> Any:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    pipe_cfg = OmegaConf.to_container(cfg.pipeline, resolve=True)
    pipe_cfg["model"] = model
    if device is not None:
        pipe_cfg["device"] = str(device)
    pipe = instantiate(pipe_cfg)
    v = cfg.vae
    pipe.set_vae_runtime(
        tiling=v.tiling, encode_frames=v.encode_frames, decode_latent_frames=v.decode_latent_frames
    )
    if cfg.lora.path:
        pipe.load_lora_weights(cfg.lora.path, scale=cfg.lora.scale)
        if cfg.lora.fuse:
            pipe.fuse_lora()
    return pipe


def _folder_task(cfg: DictConfig, model: str) -> str:
    from cogvx.infer.model_folder import ModelFolder

    return cfg.pipeline.task or ModelFolder.open(model).task or "t2v"


def _check_inputs(cfg: DictConfig, task: str) -> None:
    """Conditioning inputs match the task and exist (before any weights load)."""
    wanted = {"i2v": "image", "v2v": "video"}.get(task)
    for kind in ("image", "video"):
        value = cfg[kind]
        if value is not None and kind != wanted:
            raise UsageError(
                f"--{kind}", value, f"only for {kind}-to-video; this model runs {task}"
            )
        if kind == wanted:
            if value is None:
                raise UsageError(f"--{kind}", None, f"required: this model runs {task}")
            if not Path(value).is_file():
                raise UsageError(f"--{kind}", value, "an existing file (not found)")


def _conditioning(cfg: DictConfig, task: str) -> dict[str, Any]:
    """The image or video input, as PIL images so resizing uses Lanczos (the reference's PIL path)."""
    from PIL import Image

    from cogvx.videoio import read_image, read_video

    if task == "i2v":
        return {"image": Image.fromarray(read_image(cfg.image))}
    if task == "v2v":
        return {"video": [Image.fromarray(f) for f in read_video(cfg.video).frames]}
    return {}


def _check_shape_early(cfg: DictConfig, model: str) -> None:
    """Refuse bad sizes and frame counts before any weights are loaded (v2v: the video decides)."""
    from cogvx.infer.pipelines import folder_shape_rules

    rules = folder_shape_rules(model)
    s = cfg.sampling
    d = rules.defaults()
    frames = d.num_frames if cfg.video or s.num_frames is None else s.num_frames
    height = d.height if s.height is None else s.height
    width = d.width if s.width is None else s.width
    try:
        rules.check(frames, height, width, snap=s.snap, strict_frames=s.strict_frames)
    except ValueError as e:
        m = re.match(r"^(num_frames|height|width)=(\S+) (.*)$", str(e), re.S)
        if m is None:
            shown = f"{frames}x{height}x{width} (frames x height x width)"
            raise UsageError("size", shown, str(e)) from None
        flag = {"num_frames": "--frames"}.get(m[1], f"--{m[1]}")
        raise UsageError(flag, m[2], m[3].replace("ask for snapping", "pass --snap")) from None


def _default_run_dir() -> Path:
    """A new folder ``outputs/generate/<time>[-n]`` (never an existing one)."""
    base = Path("outputs") / "generate" / time.strftime("%Y-%m-%d_%H-%M-%S")
    candidate, n = base, 1
    while candidate.exists():
        candidate, n = base.with_name(f"{base.name}-{n}"), n + 1
    return candidate


def _generate(pipe: Any, cfg: DictConfig, task: str, progress: bool) -> Any:
    """Run the pipeline once; frames come back as a ``[B, F, H, W, 3]`` float array in [0, 1]."""
    import torch

    kwargs = _call_kwargs(cfg, task) | _conditioning(cfg, task)
    if "return_report" in inspect.signature(pipe.__call__).parameters:
        kwargs["return_report"] = True
    generator = torch.Generator().manual_seed(int(cfg.sampling.seed))
    return pipe(
        prompt=cfg.prompt, generator=generator, progress=progress, output_type="np", **kwargs
    )


def _record(cfg: DictConfig, pipe: Any, model: str, task: str, shape: Any, fps: int) -> dict:
    from omegaconf import OmegaConf

    from cogvx.infer.outputs import versions

    s = cfg.sampling
    return {
        "prompt": cfg.prompt,
        "negative_prompt": s.negative_prompt,
        "seed": int(s.seed),
        "steps": int(s.steps),
        "guidance_scale": float(s.guidance_scale),
        "guidance_schedule": s.guidance_schedule,
        "sampler": pipe.scheduler.sampler,
        "task": task,
        "model": str(Path(model).resolve()),
        "num_frames": shape.num_frames,
        "height": shape.height,
        "width": shape.width,
        "fps": fps,
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "image": cfg.image,
        "video_input": cfg.video,
        "strength": float(s.strength) if task == "v2v" else None,
        "lora": cfg.lora.path,
        "cache": OmegaConf.to_container(cfg.cache),
        "guidance_stop": s.guidance_stop,
        "guidance_interval": None if s.guidance_interval is None else list(s.guidance_interval),
        "uncond_every": int(s.uncond_every),
        "versions": versions(),
    }


def _run_single(
    cfg: DictConfig, output: Path, pipe_cache: dict | None = None, *, write: bool = True
) -> list[Path]:
    """One prompt -> the video, GIF, contact sheet and generation.json at ``output`` (``write``
    False: generate only, the other ranks of a parallel job)."""
    import numpy as np

    from cogvx.infer.outputs import plan_outputs, write_run_outputs

    model = _model_folder(cfg)
    if not cfg.prompt:
        raise UsageError("PROMPT", None, 'required: cogvx generate "a prompt" (or --prompt-file)')
    planned = plan_outputs(output, overwrite=bool(cfg.output.overwrite)) if write else None
    task = _folder_task(cfg, model)
    _check_inputs(cfg, task)
    _check_shape_early(cfg, model)
    _check_parallel_early(cfg, model)
    key = repr((model, cfg.pipeline, cfg.vae, cfg.lora))
    pipe = pipe_cache.get(key) if pipe_cache is not None else None
    if pipe is None:
        pipe = _build(cfg, model)
        if pipe_cache is not None:
            pipe_cache[key] = pipe
    result = _generate(pipe, cfg, pipe.task, bool(cfg.progress) and write)
    if planned is None:
        return []
    frames = np.asarray(result.frames)[0]  # [F, H, W, 3] in [0, 1]
    frames = (frames * 255.0).round().clip(0, 255).astype(np.uint8)
    fps = cfg.output.fps if cfg.output.fps is not None else pipe.fps
    record = _record(cfg, pipe, model, pipe.task, result.shape, fps)
    paths = write_run_outputs(planned, frames, fps, record)
    shape = result.shape
    print(
        f"{pipe.task}: {shape.num_frames} frames {shape.height}x{shape.width}, "
        f"{cfg.sampling.steps} steps, sampler {pipe.scheduler.sampler}, dtype {pipe.dtype}",
        file=sys.stderr,
    )
    print(result.report.format(), file=sys.stderr)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    ns = _parser().parse_intermixed_args(args)
    overrides = _overrides(ns)
    if ns.multirun or (ns.seed is not None and "," in ns.seed):
        if ns.nproc_per_node is not None:
            raise UsageError("--nproc-per-node", ns.nproc_per_node, "not with a multirun")
        return _main_multirun(overrides)
    cfg = compose_config(overrides)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if ns.nproc_per_node is not None and "RANK" not in os.environ:
        return _main_launch(cfg, ns.nproc_per_node, args)
    par = cfg.parallel
    if world > 1 or par.cfg * par.sp > 1:
        return _main_parallel(cfg, world)
    if cfg.prompt_file:
        return _main_batch(cfg)
    output = Path(cfg.output.path) if cfg.output.path is not None else None
    if output is None:
        output = _default_run_dir() / "video.mp4"
    for p in _run_single(cfg, output):
        print(p)
    return 0


def _main_multirun(overrides: list[str]) -> int:
    """A Hydra multirun: every job's config and output checked first, then Hydra's launcher runs
    one job per combination, each writing into its own folder (``hydra.sweep.dir``/``subdir``)."""
    from hydra.core.hydra_config import HydraConfig

    from cogvx.cli.hydra import multirun, sweep_jobs
    from cogvx.infer.config import SCHEMA_NAME, GenerateConfig

    jobs = sweep_jobs(overrides)
    configs = [compose_config(job) for job in jobs]  # all jobs checked before the first one runs
    for cfg in configs:
        if cfg.prompt_file:
            raise UsageError("--prompt-file", cfg.prompt_file, "not with a multirun (-m / seeds)")
        if cfg.output.path is not None:
            raise UsageError(
                "--output",
                cfg.output.path,
                "not with a multirun: each job writes into its folder; set hydra.sweep.dir=DIR",
            )
        if not cfg.prompt:
            raise UsageError("PROMPT", None, 'required: cogvx generate "a prompt" -m ...')
        par = cfg.parallel
        if par.cfg * par.sp * par.vae > 1:
            raise UsageError(
                "parallel.*",
                f"cfg={par.cfg} sp={par.sp} vae={par.vae}",
                "not with a multirun (-m / a seed list): one parallel job per video",
            )
        model = _model_folder(cfg)
        task = _folder_task(cfg, model)
        _check_inputs(cfg, task)
        _check_shape_early(cfg, model)
    pipes: dict[str, Any] = {}  # jobs run in this process (basic launcher): load the model once

    def job(cfg: DictConfig) -> list[Path]:
        from cogvx.infer.config import check_config

        check_config(cfg)
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        paths = _run_single(cfg, out_dir / "video.mp4", pipes)
        for p in paths:
            print(p, flush=True)
        return paths

    multirun(
        CONFIG_MODULE,
        CONFIG_NAME,
        overrides,
        job,
        schema=GenerateConfig,
        schema_name=SCHEMA_NAME,
        job_name="generate",
    )
    return 0


def _main_batch(cfg: DictConfig) -> int:
    from cogvx.infer.batch import read_prompt_file, run_batch
    from cogvx.infer.outputs import check_writable_folder

    if cfg.prompt:
        raise UsageError("PROMPT", cfg.prompt, "pass either a prompt or --prompt-file, not both")
    for kind in ("image", "video"):
        if cfg[kind] is not None:
            raise UsageError(f"--{kind}", cfg[kind], "--prompt-file runs text-to-video only")
    fmt = cfg.output.format
    if cfg.output.path is None:
        out_dir = _default_run_dir()
    else:
        out_dir = Path(cfg.output.path)
        if out_dir.suffix.lower() in (".mp4", ".gif") or out_dir.is_file():
            raise UsageError(
                "--output", str(out_dir), "a folder for --prompt-file runs, not a file"
            )
    check_writable_folder(out_dir, "--output")
    model = _model_folder(cfg)
    task = _folder_task(cfg, model)
    if task != "t2v":
        raise UsageError("--prompt-file", cfg.prompt_file, f"text-to-video only; model runs {task}")
    try:
        records = read_prompt_file(cfg.prompt_file, base_seed=int(cfg.sampling.seed))
    except (OSError, ValueError) as e:  # missing, unreadable or malformed: named with file:line
        raise UsageError("--prompt-file", cfg.prompt_file, str(e)) from None
    _check_shape_early(cfg, model)
    call = _call_kwargs(cfg, "t2v")
    devices = cfg.batch.devices
    devices = int(devices) if str(devices).isdigit() else devices
    settings = {
        "steps": int(cfg.sampling.steps),
        "guidance_scale": float(cfg.sampling.guidance_scale),
        "guidance_schedule": cfg.sampling.guidance_schedule,
        "num_frames": cfg.sampling.num_frames,
        "height": cfg.sampling.height,
        "width": cfg.sampling.width,
        "sampler": cfg.pipeline.sampler,
        "model": str(Path(model).resolve()),
        "lora": cfg.lora.path,
    }
    result = run_batch(
        records,
        lambda device: _build(cfg, model, device),
        call,
        out_dir,
        suffix=f".{fmt}",
        fps=cfg.output.fps,
        accelerator=cfg.batch.accelerator,
        devices=devices,
        progress=bool(cfg.progress),
        settings=settings,
        overwrite=bool(cfg.output.overwrite),
    )
    for p in result:
        print(p)
    return 0


# ---- one video on several processes (cogvx.infer.parallel) ------------------------------------


def _parallel_config(cfg: DictConfig, world: int) -> Any:
    """The composed ``parallel.*`` keys as a :class:`~cogvx.infer.parallel.ParallelConfig`, checked
    against the number of processes (errors name the key)."""
    from cogvx.infer.parallel import ParallelConfig

    par = cfg.parallel
    if cfg.prompt_file:
        raise UsageError(
            "--prompt-file", cfg.prompt_file, "not with parallel.* (one video per job)"
        )
    if par.cfg * par.sp != world:
        raise UsageError(
            "parallel.cfg x parallel.sp",
            f"{par.cfg} x {par.sp}",
            f"must equal the number of processes ({world}); launch with --nproc-per-node "
            f"{par.cfg * par.sp} or torchrun --no-python --nproc-per-node {par.cfg * par.sp} "
            "cogvx generate ...",
        )
    try:
        return ParallelConfig(cfg=par.cfg, sp=par.sp, sp_mode=par.sp_mode, vae=par.vae)
    except ValueError as e:
        raise _usage(e) from None


def _usage(e: ValueError) -> Exception:
    """``parallel.<key>=<value>: <valid>`` (cogvx.infer.parallel's messages) as a UsageError."""
    m = re.match(r"^(parallel\.\w+)=(\S+): (.*)$", str(e), re.S)
    return UsageError(m[1], m[2], m[3]) if m else e


def _check_parallel_early(cfg: DictConfig, model: str) -> None:
    """Degrees the model and the size allow (heads, video tokens, latent rows), before any load."""
    par = cfg.parallel
    if par.cfg * par.sp * par.vae == 1:
        return
    from cogvx.infer.model_folder import ModelFolder
    from cogvx.infer.pipelines import folder_shape_rules

    config = _parallel_config(cfg, par.cfg * par.sp)
    transformer = ModelFolder.open(model).transformer_config
    rules = folder_shape_rules(model)
    s, d = cfg.sampling, rules.defaults()
    frames = d.num_frames if cfg.video or s.num_frames is None else s.num_frames
    shape = rules.check(
        frames,
        d.height if s.height is None else s.height,
        d.width if s.width is None else s.width,
        snap=s.snap,
        strict_frames=s.strict_frames,
    )
    factor = 8  # the CogVideoX VAE's spatial factor (the folder check enforces it)
    latent = (1, shape.padded_latent_frames, 0, shape.height // factor, shape.width // factor)
    try:
        config.check_model(transformer)
        config.check_shape(transformer, latent, do_cfg=float(s.guidance_scale) > 1.0)
    except ValueError as e:
        raise _usage(e) from None
    if cfg.vae.tiling and par.vae > 1:
        raise UsageError("parallel.vae", par.vae, "not with vae.tiling=true (the bands are exact)")


def _main_launch(cfg: DictConfig, nproc: int, args: list[str]) -> int:
    """``--nproc-per-node N``: check everything here, then run N ranks of this command."""
    from cogvx.infer.parallel import launch_local

    _parallel_config(cfg, nproc)
    if not cfg.prompt:
        raise UsageError("PROMPT", None, 'required: cogvx generate "a prompt" --nproc-per-node N')
    model = _model_folder(cfg)
    _check_inputs(cfg, _folder_task(cfg, model))
    _check_shape_early(cfg, model)
    _check_parallel_early(cfg, model)
    if cfg.output.path is not None:
        from cogvx.infer.outputs import plan_outputs

        plan_outputs(Path(cfg.output.path), overwrite=bool(cfg.output.overwrite))
    rank_args = []
    skip = False
    for a in args:  # the ranks run the same command without the launcher flag
        if skip:
            skip = False
        elif a == "--nproc-per-node":
            skip = True
        elif not a.startswith("--nproc-per-node="):
            rank_args.append(a)
    if cfg.output.path is None:  # one run folder for the job, chosen here
        rank_args += ["--output", str(_default_run_dir() / "video.mp4")]
    code = (
        "import sys; from cogvx.cli.main import main; sys.exit(main(['generate', *sys.argv[1:]]))"
    )
    return launch_local(nproc, [sys.executable, "-c", code, *rank_args])


def _main_parallel(cfg: DictConfig, world: int) -> int:
    """One rank of a parallel job (torchrun or ``--nproc-per-node``): all ranks generate, rank 0
    writes the outputs and prints the paths."""
    import torch.distributed as dist

    from cogvx.infer.parallel import init_distributed, use_parallel

    config = _parallel_config(cfg, world)
    rank = int(os.environ.get("RANK", "0"))
    output = Path(cfg.output.path) if cfg.output.path is not None else None
    if output is None:
        output = _default_run_dir() / "video.mp4"
    init_distributed(timeout_s=float(cfg.parallel.timeout))
    try:
        with use_parallel(config):
            paths = _run_single(cfg, output, write=rank == 0)
    finally:
        dist.destroy_process_group()
    for p in paths:
        print(p)
    return 0
