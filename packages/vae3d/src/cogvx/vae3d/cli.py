"""`cogvx vae`: encode a video to latents, decode latents to a video, or run the demo round trip.

    cogvx vae encode IN.mp4 OUT.safetensors [--model DIR]
    cogvx vae decode IN.safetensors OUT.mp4 [--model DIR]
    cogvx vae demo [--output outputs/vae-demo] [--model DIR] [--metrics]

Without `--model` a tiny VAE with fixed-seed RANDOM, UNTRAINED weights is used (so the commands
run anywhere); every output says so. The latent file stores UNSCALED latents `[C, t, h, w]`
plus metadata (VAE config fingerprint, scaling factor, frame count, fps, original size).
Needs the `cli` extra (cogvx-videoio, cogvx-evals, tqdm); imported inside the commands.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogvx.modelio import parse_dtype

from .config import VAEConfig

if TYPE_CHECKING:  # torch and the model are imported by the commands: `--help` stays fast
    import torch

    from .model import CausalVAE3D

__all__ = ["main", "synthetic_clip"]

RANDOM_LABEL = "RANDOM UNTRAINED WEIGHTS (tiny test VAE, no --model given): output is not a real reconstruction"
LATENT_FORMAT = "cogvx-vae-latents/1"
_DTYPE_SPELLINGS = ("fp32", "float32", "bf16", "bfloat16", "fp16", "float16")


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(
            f"'cogvx vae' needs {module} ({exc}); install the extra: pip install 'cogvx-vae3d[cli]'"
        ) from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cogvx vae", description="CogVideoX 3D causal VAE.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--model",
            type=Path,
            help="VAE folder (config.json + safetensors); default: tiny RANDOM model",
        )
        q.add_argument("--dtype", choices=_DTYPE_SPELLINGS, default="float32")
        q.add_argument(
            "--encode-chunk",
            type=int,
            default=8,
            help="video frames per encode chunk (multiple of 4; 0 = whole clip)",
        )
        q.add_argument(
            "--decode-chunk",
            type=int,
            default=2,
            help="latent frames per decode chunk (0 = whole clip)",
        )
        q.add_argument(
            "--tile", type=int, nargs=2, metavar=("H", "W"), help="spatial tiles of H x W pixels"
        )
        q.add_argument("--no-progress", action="store_true", help="no progress bar")

    enc = sub.add_parser("encode", help="video file -> latents (.safetensors)")
    enc.add_argument("input", type=Path)
    enc.add_argument("output", type=Path)
    enc.add_argument("--frames", type=int, help="use the first N frames (N = 4k+1)")
    enc.add_argument(
        "--pad-frames", action="store_true", help="repeat the last frame up to 4k+1 frames"
    )
    enc.add_argument("--pad-spatial", action="store_true", help="pad H and W up to multiples of 8")
    enc.add_argument(
        "--sample", action="store_true", help="sample the posterior instead of its mode"
    )
    enc.add_argument("--seed", type=int, default=0)
    common(enc)

    dec = sub.add_parser("decode", help="latents (.safetensors) -> video file")
    dec.add_argument("input", type=Path)
    dec.add_argument("output", type=Path)
    dec.add_argument("--fps", type=float, help="override the fps stored with the latents")
    common(dec)

    demo = sub.add_parser("demo", help="synthetic clip -> encode -> decode, with files and metrics")
    demo.add_argument("--output", type=Path, default=Path("outputs/vae-demo"))
    demo.add_argument("--frames", type=int, default=17, help="clip length (4k+1)")
    demo.add_argument("--height", type=int, default=64)
    demo.add_argument("--width", type=int, default=96)
    demo.add_argument("--fps", type=float, default=8.0)
    demo.add_argument("--metrics", action="store_true", help="round-trip PSNR/SSIM (cogvx.evals)")
    demo.add_argument(
        "--sample", action="store_true", help="sample the posterior instead of its mode"
    )
    demo.add_argument("--seed", type=int, default=0)
    common(demo)
    return p


# ------------------------------------------------------------------ helpers
def _load_model(args: argparse.Namespace) -> tuple[CausalVAE3D, str]:
    import torch

    from .model import CausalVAE3D

    dtype = parse_dtype(args.dtype, parameter="--dtype")
    if args.model is not None:
        return CausalVAE3D.from_pretrained(args.model, torch_dtype=dtype).eval(), str(args.model)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same random model in every invocation (encode then decode)
        vae = CausalVAE3D(VAEConfig.tiny())
    print(f"cogvx vae: {RANDOM_LABEL}", file=sys.stderr)
    return vae.to(dtype).eval(), "random-tiny"


def _options(args: argparse.Namespace) -> dict[str, Any]:
    if args.encode_chunk < 0 or args.decode_chunk < 0:
        raise ValueError("--encode-chunk and --decode-chunk must be >= 0 (0 = whole clip)")
    tiling = None
    if args.tile is not None:
        from .streaming import Tiling

        tiling = Tiling(sample_height=args.tile[0], sample_width=args.tile[1])
    return {
        "encode_frames": args.encode_chunk or None,
        "decode_latent_frames": args.decode_chunk or None,
        "tiling": tiling,
    }


@contextmanager
def _progress(desc: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    tqdm = _need("tqdm").tqdm
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="chunk", file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_clip(frames: int, height: int, width: int, seed: int = 0) -> Any:
    """Moving coloured shapes over a gradient: uint8 [T, H, W, 3] (numpy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), 0.5 + 0 * xx], -1) * 0.6 + 0.2
    out = np.empty((frames, height, width, 3), np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    r = 0.18 * min(height, width)
    for t in range(frames):
        img = base.copy()
        s = t / max(frames - 1, 1)
        cx, cy = (0.15 + 0.7 * s) * width, (0.5 + 0.25 * np.sin(2 * np.pi * s + phase[0])) * height
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r**2] = (0.95, 0.2, 0.15)  # red disc, left to right
        sx, sy = (0.5 + 0.3 * np.cos(2 * np.pi * s + phase[1])) * width, (0.85 - 0.7 * s) * height
        img[(abs(xx - sx) < r * 0.8) & (abs(yy - sy) < r * 0.8)] = (0.1, 0.8, 0.3)  # green square
        bx = (0.5 + 0.35 * np.sin(4 * np.pi * s + phase[2])) * width
        img[(abs(xx - bx) < r * 0.3) & (yy > height * 0.1) & (yy < height * 0.9)] = (0.2, 0.3, 0.95)
        out[t] = img
    return (out * 255 + 0.5).astype(np.uint8)


def _frames_to_video(frames: Any, dtype: torch.dtype) -> torch.Tensor:
    videoio = _need("cogvx.videoio")
    return videoio.frames_to_tensor(frames).unsqueeze(0).to(dtype)  # [1, 3, T, H, W]


def _encode(
    vae: CausalVAE3D, video: torch.Tensor, args: argparse.Namespace, **pad: bool
) -> torch.Tensor:
    import torch

    with _progress("encode", not args.no_progress) as progress, torch.inference_mode():
        post = vae.encode(video, progress=progress, **pad)
        if args.sample:
            return post.sample(generator=torch.Generator().manual_seed(args.seed))
        return post.mode()


def _decode(vae: CausalVAE3D, z: torch.Tensor, args: argparse.Namespace) -> torch.Tensor:
    import torch

    with _progress("decode", not args.no_progress) as progress, torch.inference_mode():
        return vae.decode(z, progress=progress)


# ------------------------------------------------------------------ commands
def _cmd_encode(args: argparse.Namespace) -> int:
    videoio = _need("cogvx.videoio")
    from safetensors.torch import save_file

    if args.output.suffix != ".safetensors":
        raise ValueError(f"output {str(args.output)!r} must end in .safetensors")
    clip = videoio.read_video(args.input, max_frames=args.frames)
    n = clip.num_frames
    if args.frames is not None and n < args.frames:
        raise ValueError(f"--frames {args.frames}: {str(args.input)!r} has only {n} frames")
    vae, model_name = _load_model(args)
    video = _frames_to_video(clip.frames, vae.dtype)
    _, _, _, h, w = video.shape
    with vae.runtime(**_options(args)):
        z = _encode(vae, video, args, pad_frames=args.pad_frames, pad_spatial=args.pad_spatial)
    meta = {
        "format": LATENT_FORMAT,
        "scaled": "false",
        "scaling_factor": repr(vae.config.scaling_factor),
        "config_fingerprint": vae.config.fingerprint(),
        "model": model_name,
        "random_weights": str(model_name == "random-tiny").lower(),
        "num_frames": str(n),
        "height": str(h),
        "width": str(w),
        "fps": repr(float(clip.fps)),
        "posterior": "sample" if args.sample else "mode",
    }
    with videoio.atomic_output(args.output) as tmp:
        save_file({"latents": z[0].float().contiguous()}, str(tmp), metadata=meta)
    print(f"latents {tuple(z.shape[1:])} -> {args.output}")
    return 0


def _read_latents(path: Path) -> tuple[torch.Tensor, dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise FileNotFoundError(f"latent file not found: {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if "latents" not in f.keys():  # noqa: SIM118
                raise ValueError(
                    f"{str(path)!r} has no 'latents' tensor (not written by 'cogvx vae encode')"
                )
            z = f.get_tensor("latents")
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"cannot read latent file {str(path)!r}: {exc}") from exc
    if meta.get("format") != LATENT_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a cogvx latent file (format={meta.get('format')!r})"
        )
    return z, meta


def _cmd_decode(args: argparse.Namespace) -> int:
    videoio = _need("cogvx.videoio")
    z, meta = _read_latents(args.input)
    vae, _ = _load_model(args)
    if meta.get("config_fingerprint") != vae.config.fingerprint():
        raise ValueError(
            f"latents in {str(args.input)!r} were made by VAE {meta.get('model')!r} (config "
            f"{meta.get('config_fingerprint')}); this VAE's config is {vae.config.fingerprint()}: "
            "pass the same --model"
        )
    with vae.runtime(**_options(args)):
        video = _decode(vae, z.unsqueeze(0).to(vae.dtype), args)
    n, h, w = int(meta["num_frames"]), int(meta["height"]), int(meta["width"])
    frames = videoio.tensor_to_frames(video[0, :, :n, :h, :w])  # crop any padding
    fps = args.fps or float(meta.get("fps", 8.0)) or 8.0
    videoio.write_video(args.output, frames, fps)
    print(f"video {frames.shape[0]} frames {h}x{w} @ {fps:g} fps -> {args.output}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    videoio = _need("cogvx.videoio")
    import numpy as np

    if args.frames < 1 or (args.frames - 1) % 4:
        raise ValueError(f"--frames {args.frames}: the VAE needs 4k+1 frames (e.g. 17 or 33)")
    if args.height % 16 or args.width % 16 or args.height < 16 or args.width < 16:
        raise ValueError(
            f"--height/--width {args.height}x{args.width}: use positive multiples of 16"
        )
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    clip = synthetic_clip(args.frames, args.height, args.width, seed=args.seed)
    vae, model_name = _load_model(args)
    video = _frames_to_video(clip, vae.dtype)
    with vae.runtime(**_options(args)):
        t0 = time.perf_counter()
        z = _encode(vae, video, args)
        t1 = time.perf_counter()
        recon = _decode(vae, z, args)
        t2 = time.perf_counter()
    recon_frames = videoio.tensor_to_frames(recon[0])
    paths = {
        "input": videoio.write_video(out / "input.mp4", clip, args.fps),
        "reconstruction": videoio.write_video(out / "reconstruction.mp4", recon_frames, args.fps),
    }
    report: dict[str, Any] = {
        "model": model_name,
        "weights": RANDOM_LABEL if model_name == "random-tiny" else "pretrained",
        "random_weights": model_name == "random-tiny",
        "frames": args.frames,
        "height": args.height,
        "width": args.width,
        "latent_shape": list(z.shape[1:]),
        "posterior": "sample" if args.sample else "mode",
        "dtype": args.dtype,
        "options": {
            k: (v if v is None or isinstance(v, int | float | str) else repr(v))
            for k, v in _options(args).items()
        },
        "timings_s": {"encode": round(t1 - t0, 4), "decode": round(t2 - t1, 4)},
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    if args.metrics:
        metrics = _need("cogvx.evals.metrics")
        pred = recon_frames.astype(np.float32) / 255.0
        target = clip.astype(np.float32) / 255.0
        report["psnr_db"] = float(metrics.psnr(pred, target, data_range=1.0))
        report["ssim"] = float(metrics.ssim(pred, target, data_range=1.0))
    with videoio.atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    paths["report"] = out / "report.json"
    if model_name == "random-tiny":
        print(f"NOTE: {RANDOM_LABEL}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    if args.metrics:
        print(f"round trip: PSNR {report['psnr_db']:.2f} dB, SSIM {report['ssim']:.4f}")
    print(
        f"encode {report['timings_s']['encode']:.2f} s, decode {report['timings_s']['decode']:.2f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `cogvx vae` (argv: the arguments after 'vae')."""
    args = _parser().parse_args(argv)
    command = {"encode": _cmd_encode, "decode": _cmd_decode, "demo": _cmd_demo}[args.command]
    return command(args)
