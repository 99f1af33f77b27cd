"""ExpertDiT vs diffusers CogVideoXTransformer3DModel: CPU time and peak RSS.

Two blocks at the 2B (D=1920, sin-cos) and 5B (D=3072, RoPE) widths, 226 text tokens + 780 video
tokens (latents [1, 3, 16, 26, 40]) = 1006 tokens, fp32 and bf16. Every (side, width, dtype) runs
in a fresh subprocess (peak RSS = ``ru_maxrss`` of that child) which times one forward (after one
warm-up forward) and then one forward+backward; the parent interleaves the sides and alternates
their order per repeat so that load from other users hits both alike. A separate child measures
this CPU's matmul throughput (``F.linear`` of the model's FFN shape) for the "fraction of peak".

    uv run --package cogvx-expert-dit python benchmarks/expert_dit_model_bench.py \
        --repeats 2 --out benchmarks/results/expert-dit-model.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WIDTHS = {"2b": (30, False), "5b": (48, True)}  # heads (x64), RoPE
TEXT_LEN, LATENT = 226, (3, 16, 26, 40)  # F, C, H, W -> 3 * 13 * 20 = 780 video tokens


def model_flops(dim: int, text_dim: int = 4096, blocks: int = 2) -> float:
    """Forward FLOPs (multiply-add = 2) of the big matmuls and attention."""
    frames, channels, height, width = LATENT
    video = frames * (height // 2) * (width // 2)
    seq = TEXT_LEN + video
    per_block = 2 * seq * dim * dim * 12 + 4 * seq * seq * dim  # qkv+out+ffn (12 D^2), QK^T + PV
    embed = 2 * TEXT_LEN * text_dim * dim + 2 * video * (channels * 4) * dim * 2  # text, patch, out
    return blocks * per_block + embed


# ----------------------------------------------------------------------------- child processes
def child_matmul(dtype_name: str) -> dict:
    import torch
    import torch.nn.functional as F

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    seq, dim = TEXT_LEN + 780, 3072
    x, w = torch.randn(seq, dim, dtype=dtype), torch.randn(4 * dim, dim, dtype=dtype)
    F.linear(x, w)
    best = min(_timed(lambda: F.linear(x, w)) for _ in range(3))
    return {"gflops": 2 * seq * dim * 4 * dim / best / 1e9, "threads": torch.get_num_threads()}


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child_model(side: str, width: str, dtype_name: str) -> dict:
    import resource

    import torch

    torch.manual_seed(0)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    heads, rope = WIDTHS[width]
    frames, channels, height, width_px = LATENT
    latents = torch.randn(1, frames, channels, height, width_px, dtype=dtype)
    text = torch.randn(1, TEXT_LEN, 4096, dtype=dtype)
    timestep = torch.tensor([500])
    if side == "ours":
        from cogvx.expert_dit import DiTConfig, ExpertDiT

        config = DiTConfig(
            num_attention_heads=heads, num_layers=2, use_rotary_positional_embeddings=rope
        )
        model = ExpertDiT(config).to(dtype)

        def run():  # type: ignore[no-untyped-def]
            return model(latents, text, timestep)
    else:
        from diffusers import CogVideoXTransformer3DModel
        from diffusers.models.embeddings import get_3d_rotary_pos_embed

        model = CogVideoXTransformer3DModel(
            num_attention_heads=heads, num_layers=2, use_rotary_positional_embeddings=rope
        ).to(dtype)
        # The pipeline computes RoPE once per video outside the model; so do we (not timed).
        image_rotary_emb = (
            get_3d_rotary_pos_embed(
                64, ((0, 0), (height // 2, width_px // 2)), (height // 2, width_px // 2), frames
            )
            if rope
            else None
        )

        def run():  # type: ignore[no-untyped-def]
            return model(
                latents, text, timestep, image_rotary_emb=image_rotary_emb, return_dict=False
            )[0]

    for p in model.parameters():  # random (the zero-init adaLN would make blocks trivial)
        torch.nn.init.normal_(p, std=0.02)
    load_before = os.getloadavg()[0]
    with torch.no_grad():
        run()  # warm-up
        forward = _timed(run)
    rss_forward = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def train_step():  # type: ignore[no-untyped-def]
        model.zero_grad(set_to_none=True)
        run().float().square().mean().backward()

    backward = _timed(train_step) if os.environ.get("BENCH_FORWARD_ONLY") != "1" else float("nan")
    rss_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "forward_s": forward,
        "fwd_bwd_s": backward,
        "rss_forward_mb": rss_forward,
        "rss_fwd_bwd_mb": rss_all,
        "load": (load_before + os.getloadavg()[0]) / 2,
    }


# ----------------------------------------------------------------------------- parent
def spawn(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--widths", nargs="+", default=list(WIDTHS))
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--forward-only",
        action="store_true",
        help="skip the training step (the bf16 reference backward takes ~15 min)",
    )
    args = parser.parse_args()
    if args.forward_only:
        os.environ["BENCH_FORWARD_ONLY"] = "1"  # inherited by the child processes
    if args.child:
        kind, *rest = args.child
        result = child_matmul(*rest) if kind == "matmul" else child_model(*rest)
        print(json.dumps(result))
        return

    results: dict[tuple[str, str, str], list[dict]] = {}
    peaks = {d: spawn("matmul", d) for d in args.dtypes}
    print("matmul peak", peaks, flush=True)
    for rep in range(args.repeats):
        for dtype in args.dtypes:
            for width in args.widths:
                sides = ["ours", "ref"] if rep % 2 == 0 else ["ref", "ours"]
                for side in sides:
                    r = spawn("model", side, width, dtype)
                    results.setdefault((side, width, dtype), []).append(r)
                    print(rep, side, width, dtype, r, flush=True)
    report = render(results, peaks, args.repeats)
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report)


def render(results, peaks, repeats) -> str:  # type: ignore[no-untyped-def]
    lines = [
        "# expert-dit: ExpertDiT vs diffusers CogVideoXTransformer3DModel (CPU)",
        "",
        f"Machine: {os.cpu_count()} CPU cores (AVX2, no avx512_bf16), SHARED with ~7 engineers "
        "running tests at the same time (load average in the table), so absolute times are noisy;"
        " sides were interleaved in fresh processes, order alternated per repeat. "
        f"{repeats} repeat(s); median shown. 2 blocks, 226 text + 780 video tokens (1006), "
        "batch 1. Forward after one warm-up forward; forward+backward = one training step "
        "(loss mean(out^2)).",
        "",
        "Measured matmul throughput (F.linear 1006x3072 @ 3072x12288, best of 3): "
        + ", ".join(f"{d} {p['gflops']:.1f} GFLOP/s" for d, p in peaks.items()),
        "",
        "| width | dtype | side | forward s | fwd+bwd s | peak RSS fwd MB | peak RSS fwd+bwd MB "
        "| load | fwd ratio ours/ref | fwd+bwd ratio | fwd GFLOP/s (% of matmul peak) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (side, width, dtype), runs in sorted(
        results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])
    ):
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        ref = results.get(("ref", width, dtype))
        ratio_f = ratio_b = ""
        if side == "ours" and ref:
            ratio_f = f"{med['forward_s'] / statistics.median(r['forward_s'] for r in ref):.2f}"
            ratio_b = f"{med['fwd_bwd_s'] / statistics.median(r['fwd_bwd_s'] for r in ref):.2f}"
        dim = WIDTHS[width][0] * 64
        gflops = model_flops(dim) / med["forward_s"] / 1e9
        frac = 100 * gflops / peaks[dtype]["gflops"]
        lines.append(
            f"| {width} (D={dim}) | {dtype} | {side} | {med['forward_s']:.2f} | "
            f"{med['fwd_bwd_s']:.2f} | {med['rss_forward_mb']:.0f} | {med['rss_fwd_bwd_mb']:.0f} | "
            f"{med['load']:.1f} | {ratio_f} | {ratio_b} | {gflops:.1f} ({frac:.0f}%) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
