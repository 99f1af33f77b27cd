"""Step caching and cheaper guidance: cogvx.infer vs diffusers' CogVideoXPipeline and its cache hooks.

Every method generates the same videos (same prompts, seeds, weights, steps, guidance) in a fresh
process; methods are run in an interleaved order over the repeats so background load hits all alike.
Reported per method: end-to-end time per video (text encoding + denoising + decoding), the
denoising time, the speed-up over the uncached reference (diffusers, no hook), the PSNR of the frames
against the reference's uncached frames and, on the shapes model, the shapes adherence
(cogvx.evals.shapes on held-out prompts). Methods are listed in ``methods()``.

    # the shipped shapes model (or a retrained one: pass its folder), 15 held-out prompts:
    python benchmarks/cache_bench.py shapes --model apps/infer/src/cogvx/infer/models/shapes
    # a reduced random folder with the CogVideoX-2B transformer width (1920):
    python benchmarks/cache_bench.py reduced

Writes ``benchmarks/results/cache_<kind>.md`` / ``.json`` / ``.png`` (speed-up against PSNR).
Needs the dev dependency ``diffusers`` (the reference) and matplotlib.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = Path("/tmp/cogvx_cache_bench")

# --------------------------------------------------------------------------------------- methods


def methods(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, side, options)``: side "ref" (diffusers) or "ours" (cogvx.infer)."""
    ours: list[tuple[str, dict[str, Any]]] = [
        ("ours", {}),
        ("ours teacache 0.3", {"teacache": 0.3}),
        ("ours teacache 0.6", {"teacache": 0.6}),
        ("ours fbcache 0.1", {"fbcache": 0.1}),
        ("ours fbcache 0.2", {"fbcache": 0.2}),
        ("ours pab 2", {"pab": 2}),
        ("ours pab 3", {"pab": 3}),
        ("ours cfg-stop 0.5", {"stop": 0.5}),
        ("ours cfg-interval [0,700]", {"interval": (0.0, 700.0)}),
        ("ours uncond-every 2", {"uncond_every": 2}),
        ("ours uncond-every 3", {"uncond_every": 3}),
        ("ours fast", {"fbcache": 0.2, "pab": 2, "stop": 0.5, "uncond_every": 2}),
        ("ours faster", {"teacache": 0.6, "pab": 3, "stop": 0.4, "uncond_every": 3}),
        # the CLI's cache=teacache default signal (the first block's modulated input)
        ("ours teacache modulated 0.1", {"teacache": 0.1, "signal": "modulated"}),
        ("ours teacache modulated 0.2", {"teacache": 0.2, "signal": "modulated"}),
        ("ours fbcache 0.1 + pab 3", {"fbcache": 0.1, "pab": 3}),
        # residual forecasts (TaylorForecast; FirstBlockCache with order=1)
        ("ours fbcache 0.1 order 1", {"fbcache": 0.1, "order": 1}),
        ("ours taylor w8 i3 o1", {"taylor": (3, 1, 8)}),
        ("ours taylor w6 i2 o1", {"taylor": (2, 1, 6)}),
        (
            "ours fbcache 0.1 + pab 3 + uncond-every 2",
            {"fbcache": 0.1, "pab": 3, "uncond_every": 2},
        ),
    ]
    ref: list[tuple[str, dict[str, Any]]] = [
        ("diffusers", {}),
        ("diffusers FirstBlockCache 0.1", {"fbc": 0.1}),
        ("diffusers FirstBlockCache 0.2", {"fbc": 0.2}),
        ("diffusers PyramidAttentionBroadcast 2", {"pab": 2}),
        ("diffusers PyramidAttentionBroadcast 3", {"pab": 3}),
        ("diffusers FasterCache", {"faster": True}),
        ("diffusers TaylorSeer interval 3", {"taylor": 3}),
        ("diffusers MagCache 0.06", {"mag": 0.06}),
        ("diffusers MagCache 0.2", {"mag": 0.2}),
    ]
    return [(n, "ours", o) for n, o in ours] + [(n, "ref", o) for n, o in ref]


# --------------------------------------------------------------------------------------- folders

REDUCED = dict(heads=30, head_dim=64, layers=4, frames=9, height=48, width=64, text_len=32)


def build_reduced() -> Path:
    """A random CogVideoX-2B-like folder (cogvx.testing, written by diffusers): the 2B transformer
    width (30 heads x 64 = 1920, sin-cos positions, DDIM) with fewer layers, a small T5 and VAE."""
    from cogvx.testing import TinySpec, build_model_folder

    spec = TinySpec(
        "reduced_2b",
        rope=False,
        sampler="ddim",
        snr_shift=3.0,
        randomize=False,
        transformer_overrides=dict(
            num_attention_heads=REDUCED["heads"],
            attention_head_dim=REDUCED["head_dim"],
            time_embed_dim=512,
            num_layers=REDUCED["layers"],
            sample_width=REDUCED["width"] // 8,
            sample_height=REDUCED["height"] // 8,
            sample_frames=REDUCED["frames"],
            max_text_seq_length=REDUCED["text_len"],
        ),
        vae_overrides=dict(
            block_out_channels=(16, 32, 32, 64),
            latent_channels=16,
            norm_num_groups=8,
            scaling_factor=1.15258426,
        ),
        t5_overrides=dict(
            vocab_size=32128,
            d_model=512,
            d_kv=64,
            d_ff=1024,
            num_layers=4,
            num_heads=8,
            relative_attention_num_buckets=32,
            relative_attention_max_distance=128,
        ),
    )
    folder = WORK / "reduced_2b"
    if not (folder / "model_index.json").is_file():
        folder = build_model_folder(WORK, spec, writer="diffusers")
    return folder


def jobs(kind: str, count: int) -> list[tuple[str, int]]:
    """(prompt, seed) pairs: held-out shapes prompts (every other one of the fixed set) or one
    prompt with several seeds (reduced)."""
    if kind == "shapes":
        from cogvx.evals.shapes import held_out_prompts

        prompts = [p.text for p in held_out_prompts()]
        step = max(1, len(prompts) // count)
        return [(p, 0) for p in prompts[::step][:count]]
    return [("a panda plays a small guitar", s) for s in range(count)]


# --------------------------------------------------------------------------------------- child


def _ours_options(o: dict[str, Any]) -> dict[str, Any]:
    from cogvx.expert_dit.caching import (
        FirstBlockCache,
        GuidancePlan,
        PyramidBroadcast,
        StepCaching,
        TaylorForecast,
        TeaCache,
    )

    residual = None
    order = o.get("order", 0)
    if "teacache" in o:
        residual = TeaCache(o["teacache"], signal=o.get("signal", "temb"), order=order)
    if "fbcache" in o:
        residual = FirstBlockCache(o["fbcache"], order=order)
    if "taylor" in o:
        interval, order, warmup = o["taylor"]
        residual = TaylorForecast(interval=interval, order=order, warmup=warmup)
    attention = PyramidBroadcast(o["pab"]) if "pab" in o else None
    plan = GuidancePlan(
        stop_fraction=o.get("stop"),
        interval=o.get("interval"),
        uncond_every=o.get("uncond_every", 1),
    )
    caching = StepCaching(residual, attention)
    return {
        "cache": caching if caching.active else None,
        "guidance_plan": None if plan.is_reference else plan,
    }


def _ref_enable(pipe: Any, o: dict[str, Any], call: Any) -> None:
    """Apply one diffusers cache hook to ``pipe.transformer`` (``enable_cache``)."""
    import torch
    from diffusers.hooks import (
        FasterCacheConfig,
        FirstBlockCacheConfig,
        MagCacheConfig,
        PyramidAttentionBroadcastConfig,
        TaylorSeerCacheConfig,
    )

    def now() -> int:
        return pipe.current_timestep

    if "fbc" in o:
        config: Any = FirstBlockCacheConfig(threshold=o["fbc"])
    elif "pab" in o:
        config = PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=o["pab"],
            spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=now,
        )
    elif "faster" in o:
        # diffusers' documented CogVideoX setting (hooks/faster_cache.py example).
        config = FasterCacheConfig(
            spatial_attention_block_skip_range=2,
            spatial_attention_timestep_skip_range=(-1, 681),
            low_frequency_weight_update_timestep_range=(99, 641),
            high_frequency_weight_update_timestep_range=(-1, 301),
            spatial_attention_block_identifiers=["transformer_blocks"],
            attention_weight_callback=lambda _: 0.3,
            tensor_format="BFCHW",
            current_timestep_callback=now,
        )
    elif "taylor" in o:
        config = TaylorSeerCacheConfig(
            cache_interval=o["taylor"],
            disable_cache_before_step=3,
            taylor_factors_dtype=torch.float32,
        )
    elif "mag" in o:
        # MagCache needs the model's magnitude ratios: one untimed calibration run first.
        pipe.transformer.enable_cache(
            MagCacheConfig(calibrate=True, num_inference_steps=call.steps)
        )
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            call.run(pipe, "calibration prompt", 12345)
        pipe.transformer.disable_cache()
        text = buffer.getvalue()
        ratios = json.loads(
            text[text.index("[", text.index("Calibration Complete")) :].split("]")[0] + "]"
        )
        config = MagCacheConfig(
            threshold=o["mag"], num_inference_steps=call.steps, mag_ratios=ratios
        )
    else:
        raise ValueError(f"unknown diffusers option {o}")
    pipe.transformer.enable_cache(config)


class _Call:
    def __init__(self, side: str, steps: int, guidance: float, size: dict[str, int] | None):
        self.side, self.steps, self.guidance, self.size = side, steps, guidance, size or {}

    def run(self, pipe: Any, prompt: str, seed: int, **extra: Any) -> Any:
        import torch

        kw = dict(
            prompt=prompt,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            **self.size,
            **extra,
        )
        if self.side == "ours":
            kw["progress"] = False
        return pipe(**kw)


def child(a: argparse.Namespace) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    name, side, options = next(m for m in methods(a.kind) if m[0] == a.child)
    tc = json.loads((Path(a.model) / "transformer" / "config.json").read_text())
    size = dict(  # the folder's native size, given to both sides (diffusers' defaults are 2B's)
        num_frames=tc["sample_frames"],
        height=tc["sample_height"] * 8,
        width=tc["sample_width"] * 8,
        max_sequence_length=tc["max_text_seq_length"],
    )
    call = _Call(side, a.steps, a.guidance, size)
    if side == "ref":
        from diffusers import CogVideoXPipeline

        pipe = CogVideoXPipeline.from_pretrained(a.model)
        pipe.set_progress_bar_config(disable=True)
        extra: dict[str, Any] = {}
    else:
        from cogvx.infer import TextToVideoPipeline

        pipe = TextToVideoPipeline.from_pretrained(a.model)
        extra = _ours_options(options)
    if side == "ref" and options:
        _ref_enable(pipe, options, call)
    call.run(pipe, "warm up", 999, **extra)  # first-call allocations and lazy imports
    times, denoise, frames, decisions = [], [], [], None
    for prompt, seed in jobs(a.kind, a.count):
        marks: dict[str, float] = {}
        hook = None
        if side == "ref":

            def on_forward(*_, marks=marks):
                marks.setdefault("start", time.perf_counter())

            hook = pipe.transformer.register_forward_pre_hook(on_forward)

            def on_step(p, i, t, kw, marks=marks):
                marks["end"] = time.perf_counter()
                return {}

            extra = {"callback_on_step_end": on_step}
        t0 = time.perf_counter()
        out = call.run(pipe, prompt, seed, **extra)
        times.append(time.perf_counter() - t0)
        if hook is not None:
            hook.remove()
            denoise.append(marks["end"] - marks["start"])
        else:
            stage = next(s for s in out.report.stages if s.name == "denoising")
            denoise.append(stage.seconds)
            if out.report.cache is not None:
                r = out.report.cache
                decisions = {
                    "blocks_computed": r.blocks_computed,
                    "blocks_total": r.blocks_total,
                    "branch_passes": list(r.branch_passes),
                    "steps_skipped": r.steps_skipped,
                    "attention_reused": r.attention_reused,
                    "guidance": r.guidance_counts(),
                }
        frames.append(np.asarray(out.frames)[0].astype(np.float32))  # [F, H, W, 3] in [0, 1]
    slug = "".join(c if c.isalnum() else "_" for c in name)
    path = WORK / a.kind / f"{slug}_{a.repeat}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack(frames))
    print(
        json.dumps(
            {
                "name": name,
                "side": side,
                "times": times,
                "denoise": denoise,
                "frames": str(path),
                "decisions": decisions,
            }
        )
    )


# --------------------------------------------------------------------------------------- parent


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def adherence(kind: str, count: int, videos: Any) -> dict[str, float] | None:
    if kind != "shapes":
        return None
    import numpy as np

    from cogvx.evals.shapes import evaluate_shapes

    items = [
        (np.rint(np.clip(v, 0, 1) * 255).astype(np.uint8), p)
        for v, (p, _) in zip(videos, jobs(kind, count), strict=True)
    ]
    r = evaluate_shapes(items)
    return {
        "color": r.color_accuracy,
        "shape": r.shape_accuracy,
        "direction": r.motion_accuracy,
        "all": r.all_accuracy,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("kind", choices=["shapes", "reduced"])
    p.add_argument("--model", help="model folder (shapes: default cogvx.infer.default_model_dir())")
    p.add_argument(
        "--count", type=int, help="videos per method (shapes: 15 prompts; reduced: 2 seeds)"
    )
    p.add_argument("--steps", type=int, default=None, help="(shapes 25, reduced 30)")
    p.add_argument("--guidance", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", help="comma list of method names (default: all)")
    p.add_argument(
        "--suffix", default="", help="results file suffix: cache_<kind><suffix>.{md,json,png}"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.count is None:
        a.count = 15 if a.kind == "shapes" else 2
    if a.steps is None:
        a.steps = 25 if a.kind == "shapes" else 30
    if a.model is None:
        if a.kind == "shapes":
            from cogvx.infer import default_model_dir

            a.model = str(default_model_dir())
        else:
            a.model = str(build_reduced())
    if a.child:
        child(a)
        return
    chosen = methods(a.kind)
    if a.only:  # in the given order, after the two uncached baselines
        wanted = [w.strip() for w in a.only.split(",")]
        by_name = {m[0]: m for m in chosen}
        unknown = [w for w in wanted if w not in by_name]
        if unknown:
            p.error(f"--only: unknown method(s) {unknown}; choose from {list(by_name)}")
        chosen = [by_name["diffusers"], by_name["ours"]] + [
            by_name[w] for w in wanted if w not in ("ours", "diffusers")
        ]
    else:  # the uncached reference first: partial results can be written after every run
        chosen = sorted(chosen, key=lambda m: m[0] not in ("diffusers", "ours"))
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    runs: dict[str, list[dict]] = {m[0]: [] for m in chosen}
    loads = []
    from tqdm import tqdm

    order = [(r, m) for r in range(a.repeats) for m in (chosen if r % 2 == 0 else chosen[::-1])]
    for r, (name, _, _) in tqdm(order, desc="cache bench"):
        cmd = [sys.executable, __file__, a.kind, "--model", a.model, "--count", str(a.count)]
        cmd += ["--steps", str(a.steps), "--guidance", str(a.guidance), "--threads", str(a.threads)]
        cmd += ["--child", name, "--repeat", str(r)]
        loads.append(os.getloadavg()[0])
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            print(f"{name}: failed\n{res.stderr[-3000:]}", file=sys.stderr)
            continue
        line = [x for x in res.stdout.splitlines() if x.startswith("{")][-1]
        runs[name].append(json.loads(line))
        if runs["diffusers"]:
            write(a, chosen, runs, loads, quiet=True)  # partial results survive an interruption
    write(a, chosen, runs, loads)


def write(
    a: argparse.Namespace,
    chosen: list,
    runs: dict[str, list[dict]],
    loads: list[float],
    quiet: bool = False,
) -> None:
    import numpy as np

    base = runs["diffusers"][0]
    ref_frames = np.load(base["frames"])
    rows = []
    for name, side, options in chosen:
        if not runs[name]:
            continue
        # Per video: the fastest repeat (load from other jobs only ever adds time); then the median.
        per_video = [min(v) for v in zip(*(r["times"] for r in runs[name]), strict=True)]
        per_denoise = [min(v) for v in zip(*(r["denoise"] for r in runs[name]), strict=True)]
        frames = np.load(runs[name][0]["frames"])
        rows.append(
            {
                "name": name,
                "side": side,
                "options": options,
                "time": statistics.median(per_video),
                "denoise": statistics.median(per_denoise),
                "psnr": statistics.mean(
                    min(psnr(f, g), 99.0) for f, g in zip(frames, ref_frames, strict=True)
                ),
                "adherence": adherence(a.kind, a.count, frames),
                "decisions": runs[name][0]["decisions"],
            }
        )
    ref = next(r for r in rows if r["name"] == "diffusers")
    for r in rows:
        r["speedup"] = ref["time"] / r["time"]
        r["denoise_speedup"] = ref["denoise"] / r["denoise"]
    stem = RESULTS / f"cache_{a.kind}{a.suffix}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": a.model,
        "steps": a.steps,
        "guidance": a.guidance,
        "count": a.count,
        "repeats": a.repeats,
        "threads": a.threads,
        "load": [min(loads), max(loads)],
    }
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = table(a, rows, meta)
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    plot(rows, stem.with_suffix(".png"), a.kind)
    if not quiet:
        print("\n".join(lines))


def table(a: argparse.Namespace, rows: list[dict], meta: dict) -> list[str]:
    ref = next(r for r in rows if r["name"] == "diffusers")
    shapes = a.kind == "shapes"
    head = "| method | s/video | speed-up | denoise s | denoise speed-up | PSNR vs uncached (dB) |"
    sep = "|---|---|---|---|---|---|"
    if shapes:
        head += " colour / shape / direction (%) |"
        sep += "---|"
    head += " blocks computed |"
    sep += "---|"
    lines = [
        f"Model `{meta['model']}`, {a.steps} DDIM steps, guidance {a.guidance}, "
        f"{a.count} videos per method ({'held-out shapes prompts, seed 0' if shapes else 'seeds'}), "
        f"fp32, {a.threads} thread(s), fresh process per method and repeat, {a.repeats} "
        f"interleaved repeats (per video the fastest repeat, then the median over videos); load "
        f"average {meta['load'][0]:.1f}-{meta['load'][1]:.1f}. Speed-ups are over `diffusers` "
        f"(no hook, {ref['time']:.3f} s/video); PSNR is against diffusers' uncached frames.",
        "",
        head,
        sep,
    ]
    for r in rows:
        d = r["decisions"]
        blocks = f"{d['blocks_computed']}/{d['blocks_total']}" if d else "-"
        psnr_text = ">= 99" if r["psnr"] >= 99 else f"{r['psnr']:.1f}"
        line = (
            f"| {r['name']} | {r['time']:.3f} | {r['speedup']:.2f}x | {r['denoise']:.3f} | "
            f"{r['denoise_speedup']:.2f}x | {psnr_text} |"
        )
        if shapes:
            h = r["adherence"]
            line += f" {h['color']:.1f} / {h['shape']:.1f} / {h['direction']:.1f} |"
        lines.append(line + f" {blocks} |")
    return lines


def plot(rows: list[dict], path: Path, kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for side, colour, label in (("ours", "tab:blue", "cogvx"), ("ref", "tab:orange", "diffusers")):
        pts = [r for r in rows if r["side"] == side]
        ax.scatter(
            [min(r["psnr"], 60) for r in pts], [r["speedup"] for r in pts], c=colour, label=label
        )
        for r in pts:
            ax.annotate(
                r["name"].replace("diffusers ", "").replace("ours ", ""),
                (min(r["psnr"], 60), r["speedup"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.axvline(30, color="grey", lw=0.8, ls="--")
    ax.axhline(3, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("PSNR vs uncached reference (dB; >= 60 plotted at 60)")
    ax.set_ylabel("end-to-end speed-up vs diffusers uncached")
    ax.set_title(f"Step caching, {kind} model (CPU)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)  # the results are re-plotted after every method


if __name__ == "__main__":
    main()
