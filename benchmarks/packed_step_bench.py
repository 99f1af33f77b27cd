"""Packed training step of the shipped shapes transformer: forward + backward + AdamW.

The stage-2 step of the shapes recipe (docs/shapes-model.md): the shipped transformer's config
(4 layers, 4 heads x 32), one frame pack of 32 clips, each 16 text + 48 video tokens (2048 rows),
random tokens and timesteps, ``packed_forward`` in fp32 on CPU. Each ``attention_mode`` (``split``:
one batched attention call per run of same-length samples; ``mask``: one call with the
block-diagonal ``[S, S]`` mask) runs in its own fresh process, repeats interleaved, and the
median of each process's per-step times is reported.

``--src DIR`` puts another checkout's ``packages/expert-dit/src`` first on ``PYTHONPATH`` in the
children, so an earlier commit can be measured side by side with this one (``git worktree add``).

Run:  uv run --package cogvx-expert-dit python benchmarks/packed_step_bench.py \
          [--src OLD_CHECKOUT] [--threads 2] [--repeats 3]
Writes benchmarks/results/packed-step.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def child(mode: str, steps: int, threads: int) -> None:
    import torch

    from cogvx.expert_dit import DiTConfig, ExpertDiT
    from cogvx.expert_dit.packed import packed_forward

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = DiTConfig(
        num_attention_heads=4,
        attention_head_dim=32,
        in_channels=16,
        out_channels=16,
        time_embed_dim=128,
        text_embed_dim=32,
        num_layers=4,
        sample_width=8,
        sample_height=8,
        sample_frames=9,
        patch_size=2,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
    )
    model = ExpertDiT(config).train()
    n = 32
    video = torch.randn(n * 48, config.patch_dim)
    text = torch.randn(n * 16, config.text_embed_dim)
    timestep = torch.randint(0, 1000, (n,))
    opt = torch.optim.AdamW(model.parameters(), 1e-4)

    def step() -> float:
        t0 = time.perf_counter()
        out = packed_forward(
            model,
            video,
            text,
            text_lengths=[16] * n,
            grids=[(3, 4, 4)] * n,
            timestep=timestep,
            attention_mode=mode,
        )
        out.pow(2).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for _ in range(5):
        step()
    times = [step() for _ in range(steps)]
    print(json.dumps({"median_s": statistics.median(times)}))


def _cpu() -> str:
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help="another checkout to measure beside this one")
    parser.add_argument("--label", help="the name of --src in the table (default: its path)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.threads)
        return

    variants: list[tuple[str, str, dict[str, str]]] = []
    for mode in ("split", "mask"):
        variants.append(("this checkout", mode, {}))
        if args.src is not None:
            src = str(args.src.resolve() / "packages" / "expert-dit" / "src")
            variants.append((args.label or str(args.src), mode, {"PYTHONPATH": src}))
    times: dict[tuple[str, str], list[float]] = {(c, m): [] for c, m, _ in variants}
    for _ in range(args.repeats):  # interleaved: machine load hits every variant alike
        for code, mode, extra in variants:
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), **extra}
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    mode,
                    "--steps",
                    str(args.steps),
                    "--threads",
                    str(args.threads),
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            times[(code, mode)].append(json.loads(out.strip().splitlines()[-1])["median_s"])

    base = statistics.median(times[("this checkout", "split")])
    lines = [
        "# Packed training step of the shapes transformer",
        "",
        f"`benchmarks/packed_step_bench.py`, {_cpu()}, "
        f"{args.threads} threads, {args.repeats} fresh processes per row (interleaved), median "
        f"of {args.steps} steps each after 5 warm-up steps. One pack of 32 clips x (16 text + 48 "
        "video) tokens, fp32, fwd + bwd + AdamW.",
        "",
        "| code | attention_mode | step (ms), median of processes | all processes (ms) | "
        "vs this checkout's split |",
        "|---|---|---:|---|---:|",
    ]
    for (code, mode), ts in times.items():
        med = statistics.median(ts)
        lines.append(
            f"| {code} | {mode} | {med * 1e3:.1f} | {', '.join(f'{t * 1e3:.1f}' for t in ts)} | "
            f"{med / base:.2f}x |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "packed-step.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "packed-step.json").write_text(
        json.dumps({f"{c}|{m}": ts for (c, m), ts in times.items()}, indent=1) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
