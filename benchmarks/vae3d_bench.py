"""cogvx-vae3d benchmarks: ours vs diffusers' AutoencoderKLCogVideoX on this CPU.

    uv run --package cogvx-vae3d python benchmarks/vae3d_bench.py speed   [--repeats 2]
    uv run --package cogvx-vae3d python benchmarks/vae3d_bench.py memory
    uv run --package cogvx-vae3d python benchmarks/vae3d_bench.py layers  [--op decode]

speed:  OFFICIAL widths (2B VAE config, random weights saved once to a model folder), same input
        and weights for both sides; encode of a 9x128x128 clip and decode of 3x16x16 latents
        (-> 9x128x128), fp32 and bf16 (bf16 on a smaller 5x32x32 case, see below). Each run is a
        fresh process (peak RSS = ru_maxrss of the child, includes imports and weights); the
        sides are interleaved so that load from other users hits both alike.
        Sides: ours (fast kernels, `fast_kernels=True`), "ours-refk" (ours with fast_kernels=False,
        the library default: the reference kernels on NCDHW), the diffusers reference; `--fp32-only` skips bf16.
layers: the same official-width case, one process per side (interleaved), per-layer wall time and
        peak RSS above the layer's start (VmHWM reset through /proc/self/clear_refs before each
        layer) from forward hooks on the modules both implementations name alike.
memory: REDUCED width (block_out_channels 32,64,64,128 / 16,32,32,64) so it runs here:
        streamed decode peak RSS vs clip length (13..49 latent frames) and tiled decode peak
        RSS vs resolution, each in a fresh process.

Results are printed as Markdown; the numbers in benchmarks/results/vae3d.md come from here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("VAE3D_BENCH_DIR", "/tmp/vae3d_bench"))


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    """Peak RSS of this process image: VmHWM (ru_maxrss also counts the parent's RSS at fork,
    which hides smaller peaks when the parent is big)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- children
def child_speed(side: str, op: str, dtype_name: str, case: str) -> dict:
    import torch

    dtype = getattr(torch, dtype_name)
    folder = ROOT / "official-2b"
    inputs = torch.load(ROOT / f"inputs-{case}.pt")
    t0 = time.perf_counter()
    if side == "ref":
        from diffusers import AutoencoderKLCogVideoX

        vae = AutoencoderKLCogVideoX.from_pretrained(folder, torch_dtype=dtype).eval()
    else:
        from cogvx.vae3d import CausalVAE3D

        parts = (
            ("encoder", "decoder")
            if side == "ours-full"
            else (("decoder",) if op == "decode" else ("encoder",))
        )
        vae = CausalVAE3D.from_pretrained(folder, torch_dtype=dtype, parts=parts).eval()
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_now_mb()
    x = inputs["z"] if op == "decode" else inputs["video"]
    x = x.to(dtype)
    kernels = (
        contextlib.nullcontext() if side == "ref" else vae.runtime(fast_kernels=side != "ours-refk")
    )
    with torch.inference_mode(), kernels:
        c0 = time.process_time()
        t0 = time.perf_counter()
        if op == "decode":
            y = vae.decode(x).sample if side == "ref" else vae.decode(x)
        else:
            y = vae.encode(x).latent_dist.mode() if side == "ref" else vae.encode(x).mode()
        run_s = time.perf_counter() - t0
        cpu_s = time.process_time() - c0  # CPU time: robust to other users' load (1 thread)
    torch.save(y.float(), ROOT / f"out-{side}-{op}-{dtype_name}-{case}.pt")
    return {
        "load_s": load_s,
        "run_s": run_s,
        "cpu_s": cpu_s,
        "rss_loaded_mb": rss_loaded,
        "peak_mb": _peak_mb(),
        "shape": list(y.shape),
    }


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: `echo 5 > /proc/self/clear_refs`)."""
    Path("/proc/self/clear_refs").write_text("5")


def child_layers(side: str, op: str, case: str = "main") -> dict:
    """Per-layer wall time and peak RSS above the layer's start, official width, fp32."""
    import torch

    folder = ROOT / "official-2b"
    inputs = torch.load(ROOT / f"inputs-{case}.pt")
    if side == "ref":
        from diffusers import AutoencoderKLCogVideoX

        vae = AutoencoderKLCogVideoX.from_pretrained(folder).eval()
    else:
        from cogvx.vae3d import CausalVAE3D

        part_name = "decoder" if op == "decode" else "encoder"
        vae = CausalVAE3D.from_pretrained(folder, parts=(part_name,)).eval()
    part = vae.decoder if op == "decode" else vae.encoder
    # The layers both implementations name alike: convs in/out, every resnet, every resampler.
    pattern = re.compile(
        r"conv_in|norm_out|conv_out|(mid_block|(up|down)_blocks\.\d+)\.(resnets\.\d+|(up|down)samplers\.0)"
    )
    names = [n for n, _ in part.named_modules() if pattern.fullmatch(n)]
    rows: dict[str, dict] = {}
    state: dict[str, float] = {}

    def pre(name):
        def hook(module, args):
            _reset_peak()
            state["rss0"] = _rss_now_mb()
            state["t0"] = time.process_time()  # CPU time of this process (1 thread)
            x = args[0]
            rows.setdefault(name, {"in": list(x.shape)})

        return hook

    def post(name):
        def hook(module, args, out):
            dt = time.process_time() - state["t0"]
            r = rows[name]
            r["s"] = r.get("s", 0.0) + dt
            r["peak_above_mb"] = max(r.get("peak_above_mb", 0.0), _peak_mb() - state["rss0"])
            r["out"] = list(
                (out[0] if isinstance(out, tuple) else out).shape
            )  # diffusers: (h, cache)

        return hook

    modules = dict(part.named_modules())
    for n in names:
        modules[n].register_forward_pre_hook(pre(n))
        modules[n].register_forward_hook(post(n))
    x = inputs["z"] if op == "decode" else inputs["video"]
    kernels = (
        contextlib.nullcontext() if side == "ref" else vae.runtime(fast_kernels=side != "ours-refk")
    )
    _reset_peak()
    rss_loaded = _rss_now_mb()
    with torch.inference_mode(), kernels:
        t0 = time.process_time()
        vae.decode(x) if op == "decode" else vae.encode(x)
        run_s = time.process_time() - t0
    return {"run_s": run_s, "rss_loaded_mb": rss_loaded, "layers": rows}


def child_memory(kind: str, n: int) -> dict:
    import torch

    from cogvx.vae3d import CausalVAE3D, Tiling, VAEConfig

    torch.manual_seed(0)
    if kind == "stream":
        cfg = VAEConfig.tiny().replace(
            block_out_channels=(32, 64, 64, 128),
            norm_num_groups=32,
            layers_per_block=3,
            latent_channels=16,
        )
        vae = CausalVAE3D(cfg, parts=("decoder",)).eval()
        z = torch.randn(1, 16, n, 6, 8)  # n latent frames -> 4n-3 frames of 48x64
        tiling = None
    else:
        cfg = VAEConfig.tiny().replace(
            block_out_channels=(16, 32, 32, 64),
            norm_num_groups=16,
            layers_per_block=1,
            latent_channels=16,
        )
        vae = CausalVAE3D(cfg, parts=("decoder",)).eval()
        z = torch.randn(1, 16, 2, n, n)  # 2 latent frames -> 5 frames of 8n x 8n
        tiling = Tiling(64, 64) if kind == "tiled" else None
    rss0 = _rss_now_mb()
    with torch.inference_mode():
        t0 = time.perf_counter()
        y = vae.decode(z, tiling=tiling)
        run_s = time.perf_counter() - t0
    out_mb = y.numel() * y.element_size() / 2**20
    return {
        "run_s": run_s,
        "rss_before_mb": rss0,
        "peak_mb": _peak_mb(),
        "output_mb": out_mb,
        "shape": list(y.shape),
    }


# ---------------------------------------------------------------------------- parent
def _spawn(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, __file__, "child", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _prepare() -> None:
    import torch

    from cogvx.vae3d import CausalVAE3D, VAEConfig

    ROOT.mkdir(parents=True, exist_ok=True)
    folder = ROOT / "official-2b"
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        CausalVAE3D(VAEConfig.cogvideox_2b()).save_pretrained(folder)
    g = torch.Generator().manual_seed(1)
    torch.save(
        {
            "video": torch.rand(1, 3, 9, 128, 128, generator=g) * 2 - 1,
            "z": torch.randn(1, 16, 3, 16, 16, generator=g),
        },
        ROOT / "inputs-main.pt",
    )
    torch.save(
        {
            "video": torch.rand(1, 3, 5, 32, 32, generator=g) * 2 - 1,
            "z": torch.randn(1, 16, 2, 4, 4, generator=g),
        },
        ROOT / "inputs-small.pt",
    )
    torch.save(  # official width, a quarter of the main case's frames x pixels
        {
            "video": torch.rand(1, 3, 9, 64, 64, generator=g) * 2 - 1,
            "z": torch.randn(1, 16, 3, 8, 8, generator=g),  # odd: the reference's frame rule
        },
        ROOT / "inputs-quick.pt",
    )


def speed(
    repeats: int,
    timeout: float,
    ref_bf16: bool,
    fp32_only: bool,
    sides: list[str],
    case_fp32: str = "main",
) -> None:
    subprocess.run(
        [sys.executable, __file__, "child", "prepare"], check=True
    )  # keep this process small
    load0 = os.getloadavg()
    rows = []
    plan = [
        ("decode", "float32", case_fp32),
        ("encode", "float32", case_fp32),
        ("decode", "bfloat16", "small"),
        ("encode", "bfloat16", "small"),
    ]
    if fp32_only:
        plan = [p for p in plan if p[1] == "float32"]
    for op, dt, case in plan:
        results: dict[str, list[dict]] = {side: [] for side in sides}
        for _ in range(repeats if dt == "float32" else 1):
            for side in sides if dt == "float32" or ref_bf16 else ("ours",):
                limit = timeout if dt == "float32" else min(timeout, 300)
                results[side].append(_spawn(["speed", side, op, dt, case], limit))
                print(op, dt, case, side, results[side][-1], file=sys.stderr, flush=True)
        full = (
            _spawn(["speed", "ours-full", op, dt, case], timeout)
            if dt == "float32" and "ours-full" in sides
            else None
        )
        err = None
        if (ROOT / f"out-ref-{op}-{dt}-{case}.pt").exists() and results["ref"]:
            proc = subprocess.run(
                [sys.executable, __file__, "child", "compare", op, dt, case],
                capture_output=True,
                text=True,
            )
            err = float(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
        rows.append((op, dt, case, results, full, err))
    load1 = os.getloadavg()
    print(f"\nLoad average (1/5/15 min) before: {load0}, after: {load1}; CPUs: {os.cpu_count()}\n")
    print(
        "| op | dtype | input | side | load s | run s (each repeat) | CPU s | RSS after load MB | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for op, dt, case, results, full, err in rows:
        for side, runs in [
            *results.items(),
            *([("ours, full model loaded", [full])] if full else []),
        ]:
            ok = [r for r in runs if "error" not in r]
            if not runs:
                continue
            if not ok:
                print(f"| {op} | {dt} | {case} | {side} | - | {runs[0]['error']} | - | - |")
                continue
            print(
                f"| {op} | {dt} | {case} | {side} | {min(r['load_s'] for r in ok):.1f} | "
                f"{', '.join(format(r['run_s'], '.1f') for r in ok)} | "
                f"{', '.join(format(r.get('cpu_s', float('nan')), '.1f') for r in ok)} | "
                f"{min(r['rss_loaded_mb'] for r in ok):.0f} | "
                f"{min(r['peak_mb'] for r in ok):.0f} |"
            )
        ours = [r for r in results["ours"] if "error" not in r]
        ref = [r for r in results["ref"] if "error" not in r]
        if ours and ref:
            t = min(r["run_s"] for r in ours) / min(r["run_s"] for r in ref)
            tc = min(r.get("cpu_s", float("nan")) for r in ours) / min(
                r.get("cpu_s", float("nan")) for r in ref
            )
            m = min(r["peak_mb"] for r in ours) / min(r["peak_mb"] for r in ref)
            act_o = min(r["peak_mb"] - r["rss_loaded_mb"] for r in ours)
            act_r = min(r["peak_mb"] - r["rss_loaded_mb"] for r in ref)
            print(
                f"|  |  |  | **ours/ref** | | time x{t:.2f} | CPU x{tc:.2f} | | peak x{m:.2f} (above-load peak x{act_o / max(act_r, 1):.2f}); "
                f"max rel err {err:.2e} |"
                if err is not None
                else "|"
            )


def layers(ops: list[str], timeout: float, sides: list[str], case: str) -> None:
    subprocess.run([sys.executable, __file__, "child", "prepare"], check=True)
    load0 = os.getloadavg()
    for op in ops:
        res = {side: _spawn(["layers", side, op, case], timeout) for side in sides}
        for side, r in res.items():
            print(op, side, "error" if "error" in r else f"{r['run_s']:.1f} s", file=sys.stderr)
        ok = {k: v for k, v in res.items() if "error" not in v}
        if "ours" not in ok or "ref" not in ok:
            print(f"{op}: failed: {res}")
            continue
        print(
            f"\n{op}, official 2B width, fp32, per layer (load average before {load0}, after {os.getloadavg()})\n"
        )
        print(
            "| layer | in -> out | ours CPU s | ours, reference kernels CPU s | diffusers CPU s | ours / diffusers | "
            "peak above start MB: ours / ref kernels / diffusers |"
        )
        print("|---|---|---|---|---|---|---|")
        tot = dict.fromkeys(sides, 0.0)
        for name, r in ok["ours"]["layers"].items():
            vals = {side: ok[side]["layers"].get(name) if side in ok else None for side in sides}
            for side, v in vals.items():
                tot[side] += v["s"] if v else 0.0
            shape = "x".join(map(str, r["in"][1:])) + " -> " + "x".join(map(str, r["out"][1:]))
            fmt = lambda v, key, f: format(v[key], f) if v else "-"  # noqa: E731
            ratio = vals["ours"]["s"] / vals["ref"]["s"] if vals["ref"] else float("nan")
            print(
                f"| {name} | {shape} | {fmt(vals['ours'], 's', '.2f')} | {fmt(vals['ours-refk'], 's', '.2f')} | "
                f"{fmt(vals['ref'], 's', '.2f')} | {ratio:.2f} | "
                + " / ".join(fmt(vals[sd], "peak_above_mb", ".0f") for sd in sides)
                + " |"
            )
        print(
            f"| **all layers** | | {tot['ours']:.1f} | {tot['ours-refk']:.1f} | {tot['ref']:.1f} | "
            f"{tot['ours'] / max(tot['ref'], 1e-9):.2f} | |"
        )
        print(
            "| whole call | | "
            + " | ".join(f"{ok[sd]['run_s']:.1f}" if sd in ok else "-" for sd in sides)
            + " | | |"
        )


def memory(timeout: float) -> None:
    print(
        "| run | size | time s | RSS before decode MB | peak RSS MB | peak - before MB | output MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, sizes in [
        ("stream", [13, 25, 49] if "--skip-stream" not in sys.argv else []),
        ("tiled", [16, 32, 48]),
        ("untiled", [16, 32, 48]),
    ]:
        for n in sizes:
            r = _spawn(["memory", kind, str(n)], timeout)
            if "error" in r:
                print(f"| {kind} | {n} | {r['error']} | | | | |", flush=True)
                continue
            size = (
                f"{n} latent frames -> {r['shape'][2]} frames 48x64"
                if kind == "stream"
                else f"{n}x{n} latents -> 5x{8 * n}x{8 * n}"
            )
            print(
                f"| {kind} decode | {size} | {r['run_s']:.1f} | {r['rss_before_mb']:.0f} | {r['peak_mb']:.0f} | "
                f"{r['peak_mb'] - r['rss_before_mb']:.0f} | {r['output_mb']:.1f} |",
                flush=True,
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        kind = sys.argv[2]
        if kind == "prepare":
            _prepare()
            return
        if kind == "compare":
            import torch

            op, dt, case = sys.argv[3:6]
            a = torch.load(ROOT / f"out-ours-{op}-{dt}-{case}.pt")
            b = torch.load(ROOT / f"out-ref-{op}-{dt}-{case}.pt")
            print(float((a - b).abs().max() / b.abs().max()))
            return
        if kind == "speed":
            out = child_speed(*sys.argv[3:7])
        elif kind == "layers":
            out = child_layers(*sys.argv[3:6])
        else:
            out = child_memory(sys.argv[3], int(sys.argv[4]))
        print(json.dumps(out))
        return
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["speed", "memory", "layers"])
    p.add_argument(
        "--op", choices=["decode", "encode", "both"], default="both", help="layers: which"
    )
    p.add_argument("--fp32-only", action="store_true", help="speed: skip the bf16 cases")
    p.add_argument(
        "--case",
        choices=["main", "quick"],
        default="main",
        help="speed fp32 input: main = 3x16x16 latents / 9x128x128 video, quick = 3x8x8 / 9x64x64",
    )
    p.add_argument(
        "--sides",
        default="ours,ref",
        help="speed: comma-separated sides per repeat (ours, ours-refk, ref), interleaved",
    )
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--skip-stream", action="store_true", help="memory: tiled/untiled runs only")
    p.add_argument(
        "--skip-ref-bf16", action="store_true", help="reference bf16 (slow_conv3d) is not run"
    )
    a = p.parse_args()
    if a.what == "speed":
        speed(a.repeats, a.timeout, not a.skip_ref_bf16, a.fp32_only, a.sides.split(","), a.case)
    elif a.what == "layers":
        layers(
            ["decode", "encode"] if a.op == "both" else [a.op],
            a.timeout,
            a.sides.split(",") if a.sides != "ours,ref" else ["ours", "ours-refk", "ref"],
            a.case,
        )
    else:
        memory(a.timeout)


if __name__ == "__main__":
    main()
