"""Frame-pack efficiency: padding waste and tokens per step, and a tiny model's step time.

Part 1 (planning, pure arithmetic): a realistic shape distribution is planned for one epoch at the
paper's three resolution stages (256 / 512 / 768 px short side, paper sec. 3 / Table 5) with three
batching schemes at the same per-step token budget:

* packed   -- cogvx.framepack Multi-Resolution Frame Pack (several shapes per sequence);
* bucketed -- one training shape per batch, as many samples as the budget holds (no padding, but
              the budget is under-filled);
* fixed    -- every sample padded to the stage's largest shape (max frames x max area), as a
              fixed-shape loader would do, as many as the budget holds.

Part 2 (timing): fwd + bwd + AdamW step of a small ExpertDiT (RoPE, bf16 off: fp32 on CPU) on
the same samples, packed (block-diagonal attention) vs padded (samples of a batch padded to the
batch's largest latent shape, key-padding mask, masked loss) vs bucketed (same-shape batches, no
padding). Wall-clock per real token. Each scheme runs in its own fresh process (peak RSS from
``getrusage`` in the child) and repeats are interleaved so machine load hits all alike.

Run:  uv run --package cogvx-framepack python benchmarks/framepack_bench.py [--quick]
Writes benchmarks/results/framepack.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cogvx.framepack import ModelGeometry, ResolutionStage, SampleShape, plan_epoch
from cogvx.framepack.shapes import UnfitSample, assign_train_shape

RESULTS = Path(__file__).parent / "results" / "framepack.md"

ASPECTS = {"16:9": (1080, 1920), "9:16": (1920, 1080), "4:3": (1080, 1440), "1:1": (1080, 1080)}


def realistic_shapes(n: int, seed: int = 0) -> list[SampleShape]:
    """80% videos: 2-10 s uniform at 8 fps, 1080p-class frames in 16:9 / 9:16 / 4:3 / 1:1
    (equal shares); 20% images of the same aspect mix at 0.5-1.5x that size."""
    rng = np.random.default_rng(seed)
    names = list(ASPECTS)
    shapes = []
    for _ in range(n):
        h, w = ASPECTS[names[rng.integers(len(names))]]
        if rng.random() < 0.2:
            s = rng.uniform(0.5, 1.5)
            shapes.append(SampleShape(1, int(h * s), int(w * s)))
        else:
            frames = int(rng.uniform(2.0, 10.0) * 8)
            shapes.append(SampleShape(frames, h, w, 8.0))
    return shapes


# --------------------------------------------------------------------------------- part 1
def fixed_shape_stats(shapes, stage, geometry, budget, world_size):
    """Every sample padded to the stage's largest shape; batches of budget // max_tokens."""
    side = stage.short_side
    long = int(stage.area / side) // geometry.pixel_multiple * geometry.pixel_multiple
    max_tokens = geometry.sample_tokens(stage.max_frames, side, long)
    per_batch = budget // max_tokens
    real = []
    for s in shapes:
        try:
            real.append(assign_train_shape(s, stage, geometry).tokens)
        except UnfitSample:
            continue
    steps = -(-len(real) // (per_batch * world_size))
    return {
        "steps": steps,
        "fill": sum(real) / (steps * world_size * budget),
        "padding_waste": 1 - sum(real) / (len(real) * max_tokens),
        "tokens_per_step": sum(real) / (steps * world_size),
        "samples_per_step": len(real) / (steps * world_size),
        "max_shape": (stage.max_frames, side, long, max_tokens),
    }


def planning_table(n: int, world_size: int) -> tuple[str, dict]:
    shapes = realistic_shapes(n)
    geometry = ModelGeometry.cogvideox()
    stages = [
        (ResolutionStage(256, max_frames=49, fps=8.0), 25_000),
        (ResolutionStage(512, max_frames=49, fps=8.0), 75_000),
        (ResolutionStage(768, max_frames=81, fps=8.0), 82_000),
    ]
    rows, raw = [], {}
    for stage, budget in stages:
        for mode in ("packed", "bucketed"):
            t0 = time.perf_counter()
            plan = plan_epoch(
                shapes,
                stage=stage,
                geometry=geometry,
                token_budget=budget,
                seed=0,
                epoch=0,
                world_size=world_size,
                mode=mode,
            )
            dt = time.perf_counter() - t0
            r = plan.report
            stats = {
                "steps": plan.steps,
                "fill": r.fill,
                "padding_waste": 0.0,
                "tokens_per_step": r.real_tokens / (plan.steps * world_size),
                "samples_per_step": sum(len(p.indices) for p in plan.packs) / len(plan.packs),
                "plan_seconds": dt,
                "summary": r.summary(),
            }
            raw[f"{stage.short_side}/{mode}"] = stats
            rows.append((stage, budget, mode, stats))
        stats = fixed_shape_stats(shapes, stage, geometry, budget, world_size)
        raw[f"{stage.short_side}/fixed"] = stats
        rows.append((stage, budget, "fixed", stats))
    lines = [
        "| stage (short side, max frames) | budget (tokens/seq) | scheme | steps/rank/epoch | "
        "budget filled | pad tokens / total | real tokens/step | samples/step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage, budget, mode, s in rows:
        lines.append(
            f"| {stage.short_side} px, {stage.max_frames} f | {budget:,} | {mode} | {s['steps']:,} "
            f"| {s['fill']:.1%} | {s['padding_waste']:.1%} | {s['tokens_per_step']:,.0f} "
            f"| {s['samples_per_step']:.2f} |"
        )
    return "\n".join(lines), raw


# --------------------------------------------------------------------------------- part 2
STEP_STAGE = dict(short_side=128, max_area=128 * 224, max_frames=25, fps=8.0)
STEP_BUDGET = 4096
SCHEMES = ("packed", "packed-mask", "padded", "bucketed")


def _step_config():
    from cogvx.expert_dit import DiTConfig

    return DiTConfig.tiny(
        num_attention_heads=4,
        attention_head_dim=32,
        num_layers=4,
        in_channels=16,
        out_channels=16,
        text_embed_dim=64,
        time_embed_dim=128,
        max_text_seq_length=32,
        use_rotary_positional_embeddings=True,
        sample_height=16,
        sample_width=28,
    )


def _child(scheme: str, steps: int, threads: int) -> dict:
    """One scheme in this (fresh) process: time `steps` training steps, return stats."""
    import torch
    import torch.nn.functional as F
    from einops import rearrange

    from cogvx.expert_dit import ExpertDiT
    from cogvx.expert_dit.packed import packed_forward
    from cogvx.framepack import PackCollator

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = _step_config()
    geometry = ModelGeometry(patch_size_t=None, text_tokens=config.max_text_seq_length)
    stage = ResolutionStage(**STEP_STAGE)
    shapes = realistic_shapes(400, seed=1)
    # Every scheme trains on the SAME samples: those of packs 1..steps of the packed plan (pack 0
    # is the warm-up step). bucketed regroups exactly these samples into same-shape batches.
    plan = plan_epoch(shapes, stage=stage, geometry=geometry, token_budget=STEP_BUDGET, seed=0)
    batches = [list(p.indices) for p in plan.packs[: steps + 1]]
    if scheme == "bucketed":
        timed = [i for b in batches[1:] for i in b]
        sub = plan_epoch(
            [shapes[i] for i in timed],
            stage=stage,
            geometry=geometry,
            token_budget=STEP_BUDGET,
            seed=0,
            mode="bucketed",
        )
        warm = plan_epoch(
            [shapes[i] for i in batches[0]],
            stage=stage,
            geometry=geometry,
            token_budget=STEP_BUDGET,
            seed=0,
            mode="bucketed",
        )
        batches = [[batches[0][k] for k in warm.packs[0].indices]] + [
            [timed[k] for k in p.indices] for p in sub.packs
        ]
    model = ExpertDiT(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)

    def sample(i):
        ts = plan.shapes[i]
        return {
            "latents": torch.randn(
                ts.latent_frames, 16, ts.height // 8, ts.width // 8, generator=g
            ),
            "text_embeds": torch.randn(config.max_text_seq_length, 64, generator=g),
        }

    collate = PackCollator(geometry)
    times, real_tokens, seq_tokens = [], 0, 0
    for step, indices in enumerate(batches):
        items = [sample(i) for i in indices]
        t_vec = torch.randint(0, 1000, (len(items),), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if scheme.startswith("packed"):
            b = collate(items)
            out = packed_forward(
                model,
                b.latent_tokens,
                b.text_embeds,
                text_lengths=b.text_lengths,
                grids=b.grids,
                timestep=t_vec,
                attention_mode="mask" if scheme == "packed-mask" else "split",
            )
            loss = F.mse_loss(out, torch.zeros_like(out))
            n_seq = b.seq_len
        else:
            # Pad every sample to the batch's largest latent shape; mask padded keys and loss.
            lat = [x["latents"] for x in items]
            f = max(x.shape[0] for x in lat)
            h = max(x.shape[2] for x in lat)
            w = max(x.shape[3] for x in lat)
            batch = torch.zeros(len(lat), f, 16, h, w)
            valid = torch.zeros(len(lat), f, h, w, dtype=torch.bool)
            for k, x in enumerate(lat):
                batch[k, : x.shape[0], :, : x.shape[2], : x.shape[3]] = x
                valid[k, : x.shape[0], : x.shape[2], : x.shape[3]] = True
            tok_valid = rearrange(valid, "b f (h p) (w q) -> b (f h w) (p q)", p=2, q=2)[..., 0]
            text = torch.stack([x["text_embeds"] for x in items])
            keys = torch.cat([torch.ones(len(lat), text.shape[1], dtype=torch.bool), tok_valid], 1)
            mask = keys[:, None, None, :] if scheme == "padded" else None
            out = model(batch, text, t_vec, attn_mask=mask)
            loss = (out.square() * valid[:, :, None]).sum() / (valid.sum() * 16)
            n_seq = keys.numel()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step >= 1:  # one warm-up step
            times.append(dt)
            real_tokens += sum(
                config.max_text_seq_length + plan.shapes[i].video_tokens for i in indices
            )
            seq_tokens += n_seq
    return {
        "scheme": scheme,
        "seconds": sum(times),
        "steps": len(times),
        "real_tokens": real_tokens,
        "samples": sum(len(b) for b in batches[1:]),
        "seq_tokens": seq_tokens,
        "us_per_real_token": 1e6 * sum(times) / real_tokens,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def timing_table(steps: int, repeats: int, threads: int) -> tuple[str, dict]:
    results: dict[str, list[dict]] = {s: [] for s in SCHEMES}
    for _ in range(repeats):  # interleaved: packed, packed-mask, padded, bucketed, packed, ...
        for scheme in results:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    scheme,
                    "--steps",
                    str(steps),
                    "--threads",
                    str(threads),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[scheme].append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = [
        "| scheme | samples | steps timed | real tokens/step | sequence tokens/step (incl. padding) | "
        "us per real token (median of repeats) | spread | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = statistics.median(r["us_per_real_token"] for r in results["packed"])
    for scheme, runs in results.items():
        per = [r["us_per_real_token"] for r in runs]
        r0 = runs[0]
        lines.append(
            f"| {scheme} | {r0['samples']} | {r0['steps']} | {r0['real_tokens'] / r0['steps']:,.0f} | "
            f"{r0['seq_tokens'] / r0['steps']:,.0f} | {statistics.median(per):.1f} "
            f"({statistics.median(per) / base:.2f}x packed) | {min(per):.1f}-{max(per):.1f} | "
            f"{max(r['peak_rss_mib'] for r in runs):.0f} |"
        )
    return "\n".join(lines), results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples and steps")
    parser.add_argument("--child", choices=SCHEMES)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.steps, args.threads)))
        return

    n = 2_000 if args.quick else 50_000
    world_size = 8
    plan_md, plan_raw = planning_table(n, world_size)
    print(plan_md)
    load = os.getloadavg()
    text = [
        "# cogvx-framepack benchmarks",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores shared "
        f"with other engineers; load average at start {load[0]:.1f}. "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "## Planning: padding waste and tokens per step",
        "",
        f"{n:,} samples: 80% videos of 2-10 s (uniform) at 8 fps, 20% images; aspect ratios 16:9 / "
        "9:16 / 4:3 / 1:1 in equal shares at 1080p-class sizes (images 0.5-1.5x). CogVideoX 1.0 "
        "geometry (patch 1x2x2, 226 text tokens), data-parallel world size "
        f"{world_size}, stage area limit 1.5 x short side^2 (Table 5's 256x384 for stage 1), "
        "budget = tokens per packed sequence (Table 6: max sequence length 82k). "
        "'budget filled' = real tokens / (steps x budget); 'pad tokens / total' = padding inside "
        "the sequences (fixed shape only: packed and bucketed sequences carry no padding, they "
        "end short of the budget instead).",
        "",
        plan_md,
        "",
        "Plan time (whole epoch, one process): "
        + ", ".join(
            f"{k} {v['plan_seconds']:.2f} s" for k, v in plan_raw.items() if "plan_seconds" in v
        )
        + ".",
        "",
    ]
    if not args.skip_timing:
        steps = 3 if args.quick else args.steps
        repeats = 1 if args.quick else args.repeats
        time_md, _ = timing_table(steps, repeats, args.threads)
        print(time_md)
        cfg = _step_config()
        text += [
            "## Training step: wall-clock per real token",
            "",
            f"Small ExpertDiT ({cfg.num_layers} layers, {cfg.num_attention_heads} heads x "
            f"{cfg.attention_head_dim}, RoPE, fp32, CPU, {args.threads} thread(s)), fwd + bwd + "
            f"AdamW; samples from the same distribution at a {STEP_STAGE['short_side']} px stage "
            f"(area {STEP_STAGE['max_area']}, max {STEP_STAGE['max_frames']} frames), "
            f"{cfg.max_text_seq_length} text tokens, budget {STEP_BUDGET} tokens per step. "
            "packed: one sequence, attention per sample ('split'). packed-mask: the same with one "
            "SDPA call under a boolean block-diagonal [S, S] mask. padded: the packed plan's "
            "samples as a batch padded to its largest latent shape, key-padding mask, masked "
            "loss. bucketed: the same samples regrouped into same-shape batches (no padding, budget "
            "under-filled, so more steps). All schemes train on the same samples (those of "
            f"{steps} packs); each scheme in a fresh process, {repeats} interleaved repeats, "
            "after one warm-up step.",
            "",
            time_md,
            "",
        ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".md.tmp")
    tmp.write_text("\n".join(text))
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
