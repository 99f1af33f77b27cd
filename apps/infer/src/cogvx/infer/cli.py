"""``cogvx generate``: text/image/video to video from the command line.

    cogvx generate "a panda playing guitar" --model DIR --seed 1 --output out.mp4
    cogvx generate "..." --model DIR --image first.png --frames 49 --steps 30 --dtype bf16
    cogvx generate --prompt-file prompts.txt --model DIR --output outdir/ preset=cogvideox_5b
    cogvx generate "..." --model DIR sampling.guidance_schedule=dynamic vae.tiling=true

Flags are shorthands for config keys; any ``key=value`` argument is a Hydra override composed over
``cogvx/infer/conf/generate.yaml`` (a typo fails before anything loads). Prints a progress bar over
denoising and decoding, a per-stage time and peak-memory summary, and the paths it wrote.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cogvx.infer.config import register_configs

__all__ = ["compose_config", "main"]

_OVERRIDE = re.compile(r"^[+~]{0,2}[A-Za-z_][\w.]*(@[\w.]+)?=")

# flag dest -> config key
_FLAG_KEYS = {
    "model": "pipeline.model",
    "task": "pipeline.task",
    "sampler": "pipeline.sampler",
    "dtype": "pipeline.dtype",
    "device": "pipeline.device",
    "seed": "sampling.seed",
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
    "preset": "preset",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cogvx generate",
        description="Generate videos with a CogVideoX model folder (diffusers layout).",
        epilog="Extra key=value arguments are Hydra overrides, e.g. sampling.steps=30 vae.tiling=true "
        "preset=cogvideox_5b. Config keys: pipeline.*, sampling.*, vae.*, lora.*, output.*, batch.*",
    )
    p.add_argument(
        "args", nargs="*", metavar="PROMPT | key=value", help="the prompt, and any Hydra overrides"
    )
    p.add_argument("--model", help="model folder (model_index.json + component subfolders)")
    p.add_argument("--task", choices=["t2v", "i2v", "v2v"], help="default: the folder's own task")
    p.add_argument("--prompt-file", help="batch mode: one prompt per line (or .jsonl)")
    p.add_argument("--negative-prompt")
    p.add_argument("--image", help="conditioning image (image-to-video)")
    p.add_argument("--video", help="input video (video-to-video)")
    p.add_argument("--strength", type=float, help="video-to-video strength (0.8)")
    p.add_argument("--seed", type=int)
    p.add_argument("--output", "-o", help="output .mp4/.gif (a folder with --prompt-file)")
    p.add_argument("--frames", type=int, help="number of frames (8N+1 for 1.0, 16N+1 for 1.5)")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--snap", action="store_true", help="round invalid sizes to the nearest valid")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float, help="guidance scale (6.0)")
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
    p.add_argument("--lora-scale", type=float)
    p.add_argument("--fuse-lora", action="store_true")
    p.add_argument("--fps", type=int, help="default: 8 for CogVideoX 1.0, 16 for 1.5")
    p.add_argument("--preset", choices=["cogvideox_2b", "cogvideox_5b", "cogvideox1_5_5b"])
    p.add_argument("--no-progress", action="store_true")
    return p


def _quote(value: Any) -> str:
    """A Hydra override value: strings quoted so spaces, commas and '=' survive."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _overrides(ns: argparse.Namespace) -> tuple[list[str], str | None]:
    prompts = [a for a in ns.args if not _OVERRIDE.match(a)]
    user = [a for a in ns.args if _OVERRIDE.match(a)]
    if len(prompts) > 1:
        raise ValueError(
            f"got {len(prompts)} prompt arguments {prompts}; quote the prompt as one argument"
        )
    out: list[str] = []
    for dest, key in _FLAG_KEYS.items():
        value = getattr(ns, dest, None)
        if value is not None:
            out.append(f"{key}={_quote(value)}" if key != "preset" else f"preset={value}")
    if ns.dynamic_cfg:
        if ns.guidance_schedule not in (None, "dynamic"):
            raise ValueError("--dynamic-cfg contradicts --guidance-schedule")
        out.append("sampling.guidance_schedule=dynamic")
    if ns.snap:
        out.append("sampling.snap=true")
    if ns.tiling:
        out.append("vae.tiling=true")
    if ns.staged and ns.offload:
        raise ValueError("--staged and --offload are exclusive")
    if ns.staged:
        out.append("pipeline.residency=staged")
    if ns.offload:
        out.append("pipeline.residency=offload")
    if ns.fuse_lora:
        out.append("lora.fuse=true")
    if ns.no_progress:
        out.append("progress=false")
    if prompts:
        out.append(f"prompt={_quote(prompts[0])}")
    return out + user, (prompts[0] if prompts else None)


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose ``generate.yaml`` with ``overrides``, typed by the ``GenerateConfig`` schema."""
    register_configs()
    with initialize_config_module(config_module="cogvx.infer.conf", version_base=None):
        cfg = compose(config_name="generate", overrides=overrides)
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ValueError(
            f"missing required setting(s): {', '.join(sorted(missing))} (pipeline.model: --model DIR)"
        )
    return cfg


def _call_kwargs(cfg, task: str) -> dict[str, Any]:
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
    return kwargs


def _build(cfg, device: torch.device | None = None):
    pipe_cfg = OmegaConf.to_container(cfg.pipeline, resolve=True)
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


def _conditioning(cfg, task: str) -> dict[str, Any]:
    """The image or video input, as PIL images so resizing uses Lanczos (the reference's PIL path)."""
    from PIL import Image

    from cogvx.videoio import read_image, read_video

    if task == "i2v":
        if not cfg.image:
            raise ValueError("image-to-video needs --image PATH")
        return {"image": Image.fromarray(read_image(cfg.image))}
    if cfg.image:
        raise ValueError(f"--image is only for image-to-video; this model runs {task}")
    if task == "v2v":
        if not cfg.video:
            raise ValueError("video-to-video needs --video PATH")
        return {"video": [Image.fromarray(f) for f in read_video(cfg.video).frames]}
    if cfg.video:
        raise ValueError(f"--video is only for video-to-video; this model runs {task}")
    return {}


def _check_shape_early(cfg) -> None:
    """Refuse bad sizes and frame counts before any weights are loaded (v2v: the video decides)."""
    from cogvx.infer.pipelines import folder_shape_rules

    rules = folder_shape_rules(cfg.pipeline.model)
    s = cfg.sampling
    d = rules.defaults()
    frames = d.num_frames if cfg.video else (s.num_frames or d.num_frames)
    rules.check(
        frames, s.height or d.height, s.width or d.width, snap=s.snap, strict_frames=s.strict_frames
    )


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    overrides, _ = _overrides(ns)
    cfg = compose_config(overrides)
    progress = bool(cfg.progress)

    if cfg.prompt_file:
        return _main_batch(cfg, progress)
    if not cfg.prompt:
        raise ValueError('a prompt is required: cogvx generate "a prompt" --model DIR')
    output = Path(cfg.output.path)
    if output.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--output {output} must end in .mp4 or .gif")

    _check_shape_early(cfg)
    pipe = _build(cfg)
    task = pipe.task
    kwargs = _call_kwargs(cfg, task) | _conditioning(cfg, task)
    generator = torch.Generator().manual_seed(int(cfg.sampling.seed))
    result = pipe(
        prompt=cfg.prompt, generator=generator, progress=progress, **kwargs
    )
    paths = pipe.save_video(result.frames, output, fps=cfg.output.fps)
    shape = result.shape
    print(
        f"{task}: {shape.num_frames} frames {shape.height}x{shape.width}, "
        f"{cfg.sampling.steps} steps, sampler {pipe.scheduler.sampler}, dtype {pipe.dtype}",
        file=sys.stderr,
    )
    print(result.report.format(), file=sys.stderr)
    for p in paths:
        print(p)
    return 0


def _main_batch(cfg, progress: bool) -> int:
    from cogvx.infer.batch import read_prompt_file, run_batch

    if cfg.prompt:
        raise ValueError("pass either a prompt or --prompt-file, not both")
    if cfg.image or cfg.video:
        raise ValueError("--prompt-file runs text-to-video only")
    fmt = cfg.output.format.lower().lstrip(".")
    if fmt not in ("mp4", "gif"):
        raise ValueError(f"output.format={cfg.output.format!r} must be mp4 or gif")
    out_dir = Path(cfg.output.path)
    if out_dir.suffix.lower() in (".mp4", ".gif"):
        out_dir = out_dir.with_suffix("")
    from cogvx.infer.model_folder import ModelFolder

    task = cfg.pipeline.task or ModelFolder.open(cfg.pipeline.model).task or "t2v"
    if task != "t2v":
        raise ValueError(f"--prompt-file runs text-to-video only; this model runs {task}")
    records = read_prompt_file(cfg.prompt_file, base_seed=int(cfg.sampling.seed))
    call = _call_kwargs(cfg, "t2v") | {"progress": False}
    devices = cfg.batch.devices
    devices = int(devices) if str(devices).isdigit() else devices
    paths = run_batch(
        records,
        lambda device: _build(cfg, device),
        call,
        out_dir,
        suffix=f".{fmt}",
        fps=cfg.output.fps,
        accelerator=cfg.batch.accelerator,
        devices=devices,
        progress=progress,
    )
    for p in paths:
        print(p)
    return 0
