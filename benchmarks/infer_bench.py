"""End-to-end text-to-video time and peak RSS: cogvx.infer vs diffusers' CogVideoXPipeline on CPU.

Both sides open the same reduced random model folder (written by diffusers; RoPE transformer,
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
CORPUS = [
    "a panda plays a small guitar in a bamboo forest",
    "sunlight filters through the tall trees onto a quiet river",
] * 20


SIZES = {
    # name: (T5 d_model, d_ff, layers, heads; transformer heads, layers)
    "small": (512, 1024, 6, 8, 8, 8),
    "big": (1024, 2816, 12, 16, 16, 12),
}


def build_folder(folder: Path, size: str) -> None:
    """A reduced CogVideoX-5B-like folder: every part is smaller but real-shaped."""
    import io

    import sentencepiece as spm
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDPMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    torch.manual_seed(0)
    tok_dir = folder.parent / (folder.name + "_tok")
    tok_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=buf,
        vocab_size=60,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    (tok_dir / "spiece.model").write_bytes(buf.getvalue())
    tokenizer = T5Tokenizer.from_pretrained(tok_dir)
    d_model, d_ff, t5_layers, t5_heads, heads, layers = SIZES[size]
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=32128,
            d_model=d_model,
            d_kv=64,
            d_ff=d_ff,
            num_layers=t5_layers,
            num_heads=t5_heads,
            feed_forward_proj="gated-gelu",
        )
    )
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=heads,
        attention_head_dim=64,
        in_channels=16,
        out_channels=16,
        time_embed_dim=512,
        text_embed_dim=d_model,
        num_layers=layers,
        sample_width=12,
        sample_height=8,
        sample_frames=13,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=64,
        use_rotary_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(
        block_out_channels=(16, 32, 32, 64),
        latent_channels=16,
        layers_per_block=1,
        norm_num_groups=8,
        temporal_compression_ratio=4,
        scaling_factor=0.7,
    )
    scheduler = CogVideoXDPMScheduler(
        beta_schedule="scaled_linear",
        clip_sample=False,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        snr_shift_scale=1.0,
    )
    CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=t5, vae=vae, transformer=transformer, scheduler=scheduler
    ).save_pretrained(folder)


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
        frames_out = pipe(**kw, generator=torch.Generator().manual_seed(0), progress=False)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if side != "ref":
        # Our per-stage report resets the kernel's high-water mark (and with it ru_maxrss); the
        # lifetime peak is kept by cogvx.infer.staging.peak_rss.
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
            a.folder or f"/tmp/cogvx_infer_bench/model_{a.size}",
            a.steps,
            a.frames,
            a.height,
            a.width,
        )
        return
    folder = Path(a.folder or f"/tmp/cogvx_infer_bench/model_{a.size}")
    if not (folder / "model_index.json").is_file():
        build_folder(folder, a.size)
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
    folder = Path(a.folder or f"/tmp/cogvx_infer_bench/model_{a.size}")
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
