"""End-to-end text-to-video time and peak RSS: cogvx.infer vs diffusers' CogVideoXPipeline on CPU.

Both sides open the same reduced random model folder (cogvx.testing, written by diffusers; RoPE transformer,
T5 encoder, VAE, DPM sampler), run the same call (prompt, seed, size, steps, guidance) and each
run happens in a fresh process so ``ru_maxrss`` is that run's peak. Repeats are interleaved
(ref, ours, ours-staged, ref, ...) so background load from other work hits every side alike.

    uv run --package cogvx-infer python benchmarks/infer_bench.py            # build + measure
    uv run --package cogvx-infer python benchmarks/infer_bench.py --repeats 3 --steps 4

Writes ``benchmarks/results/infer.md``. Needs the dev dependency ``diffusers`` (the reference).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "infer.md"
ROOT = Path("/tmp/cogvx_infer_bench")

SIZES = {
    # name: (T5 d_model, d_ff, layers, heads; transformer heads, layers)
    "small": (512, 1024, 6, 8, 8, 8),
    "big": (1024, 2816, 12, 16, 16, 12),
}


def default_folder(size: str) -> Path:
    return ROOT / "diffusers" / f"model_{size}"


def build_folder(size: str) -> Path:
    """A reduced CogVideoX-5B-like folder (cogvx.testing's builder, written by diffusers): every part
    is smaller but real-shaped; the libraries' own initialisation."""
    from cogvx.testing import TinySpec, build_model_folder

    d_model, d_ff, t5_layers, t5_heads, heads, layers = SIZES[size]
    spec = TinySpec(
        f"model_{size}",
        rope=True,
        sampler="dpm",
        snr_shift=1.0,
        randomize=False,
        transformer_overrides=dict(
            num_attention_heads=heads,
            attention_head_dim=64,
            time_embed_dim=512,
            num_layers=layers,
            sample_width=12,
            sample_height=8,
            sample_frames=13,
            max_text_seq_length=64,
        ),
        vae_overrides=dict(
            block_out_channels=(16, 32, 32, 64),
            latent_channels=16,
            norm_num_groups=8,
            scaling_factor=0.7,
        ),
        t5_overrides=dict(
            vocab_size=32128,
            d_model=d_model,
            d_kv=64,
            d_ff=d_ff,
            num_layers=t5_layers,
            num_heads=t5_heads,
            relative_attention_num_buckets=32,
            relative_attention_max_distance=128,
        ),
    )
    return build_model_folder(ROOT, spec, writer="diffusers")


def child(side: str, folder: str, steps: int, frames: int, height: int, width: int) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    kw = dict(
        prompt="a panda plays a small guitar",
        num_frames=frames,
        height=height,
        width=width,
        num_inference_steps=steps,
        guidance_scale=6.0,
        use_dynamic_cfg=True,
        max_sequence_length=64,
    )
    t0 = time.perf_counter()
    if side == "ref":
        from diffusers import CogVideoXPipeline

        pipe = CogVideoXPipeline.from_pretrained(folder)
        pipe.set_progress_bar_config(disable=True)
        t1 = time.perf_counter()
        frames_out = pipe(**kw, generator=torch.Generator().manual_seed(0), output_type="pt").frames
    else:
        from cogvx.infer import TextToVideoPipeline

        residency = "staged" if side == "ours-staged" else "resident"
        pipe = TextToVideoPipeline.from_pretrained(folder, residency=residency)
        t1 = time.perf_counter()
        frames_out = pipe(**kw, generator=torch.Generator().manual_seed(0), progress=False).frames
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if side != "ref":
        # With per-stage probing on (pipe.probe_memory) the kernel's high-water mark (and with it
        # ru_maxrss) is reset per stage; cogvx.infer.staging.peak_rss keeps the lifetime peak.
        from cogvx.infer.staging import peak_rss

        peak = max(peak, peak_rss())
    out = {
        "side": side,
        "load_s": t1 - t0,
        "gen_s": t2 - t1,
        "peak_rss": peak,
        "checksum": float(frames_out.double().mean()),
    }
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--folder", default=None)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--height", type=int, default=48)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--child", choices=["ref", "ours", "ours-staged"])
    a = p.parse_args()
    if a.child:
        child(
            a.child,
            a.folder or str(default_folder(a.size)),
            a.steps,
            a.frames,
            a.height,
            a.width,
        )
        return
    folder = Path(a.folder) if a.folder else build_folder(a.size)
    sides = ["ref", "ours", "ours-staged"]
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    loads = []
    for r in range(a.repeats):
        for side in sides:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                side,
                "--folder",
                str(folder),
                "--size",
                a.size,
                "--steps",
                str(a.steps),
                "--frames",
                str(a.frames),
                "--height",
                str(a.height),
                "--width",
                str(a.width),
            ]
            loads.append(os.getloadavg()[0])
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = [x for x in res.stdout.splitlines() if x.startswith("{")][-1]
            runs[side].append(json.loads(line))
            print(f"repeat {r} {side}: {runs[side][-1]}", file=sys.stderr)
    write_results(a, runs, loads)


def params(folder: Path) -> dict[str, float]:
    """Parameter counts (millions) of the saved T5 and transformer, from the safetensors headers."""
    from safetensors import safe_open

    out = {}
    for name in ("text_encoder", "transformer", "vae"):
        total = 0
        for f in sorted((folder / name).glob("*.safetensors")):
            with safe_open(f, framework="pt") as h:
                for k in h.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    total += _numel(h.get_slice(k).get_shape())
        out[name] = total / 1e6
    return out


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def write_results(a, runs, loads) -> None:
    def med(side, key):
        # Times: the fastest repeat (load from other jobs only ever adds time); memory: the median.
        values = [x[key] for x in runs[side]]
        return min(values) if key.endswith("_s") else statistics.median(values)

    ref_gen, ref_rss = med("ref", "gen_s"), med("ref", "peak_rss")
    folder = Path(a.folder) if a.folder else default_folder(a.size)
    counts = params(folder)
    d_model, _, t5_layers, _, heads, layers = SIZES[a.size]
    lines = [
        f"## End-to-end text-to-video vs diffusers (CPU), {a.size} model",
        "",
        f"Reduced random CogVideoX-5B-like model ({layers} layers x {heads * 64} wide RoPE "
        f"transformer, {counts['transformer']:.0f}M parameters; {t5_layers}-layer {d_model}-wide T5 "
        f"with a 32128 vocabulary, {counts['text_encoder']:.0f}M; 4-level VAE 16-64 channels, "
        f"{counts['vae']:.1f}M), DPM-Solver++ with "
        f"dynamic CFG, {a.steps} steps, {a.frames} frames at {a.height}x{a.width}, fp32, "
        f"2 torch threads; each run in a fresh process, {a.repeats} interleaved repeats; times are the "
        f"fastest repeat, peak RSS the median. "
        f"Machine: 2 shared CPU cores, load average during the runs "
        f"{min(loads):.1f}-{max(loads):.1f} (other engineers' jobs), so absolute times are noisy; "
        "the ratios are the result.",
        "",
        "| side | load (s) | generate (s) | peak RSS (MiB) | generate vs diffusers | RSS vs diffusers |",
        "|---|---|---|---|---|---|",
    ]
    for side in runs:
        g, rss = med(side, "gen_s"), med(side, "peak_rss")
        lines.append(
            f"| {side} | {med(side, 'load_s'):.2f} | {g:.2f} | {rss / 2**20:.0f} | "
            f"{g / ref_gen:.2f}x | {rss / ref_rss:.2f}x |"
        )
    checks = {side: runs[side][0]["checksum"] for side in runs}
    lines += [
        "",
        f"Frame-mean checksums (same seed): {', '.join(f'{k} {v:.6f}' for k, v in checks.items())}.",
        "",
        "`ours-staged` loads each model (T5, transformer, VAE decoder) only for its stage and frees "
        'it afterwards (`residency="staged"`), so the peak is the largest stage plus activations '
        "instead of the sum of all weights; it pays one load per stage in `generate`.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    sections = {}
    if RESULTS.is_file():
        for chunk in RESULTS.read_text().split("\n## ")[1:]:
            title = chunk.split("\n", 1)[0]
            sections[title.rsplit(", ", 1)[-1]] = "## " + chunk.rstrip() + "\n"
    sections[f"{a.size} model"] = "\n".join(lines)
    body = "\n".join(sections[k] for k in sorted(sections, key=lambda k: k != "small model"))
    RESULTS.write_text("# cogvx-infer benchmarks\n\n" + body)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
