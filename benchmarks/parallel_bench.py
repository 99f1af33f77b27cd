"""Communication volume and per-rank memory of the parallel inference modes (cogvx.infer.parallel).

For each mode this runs one denoising step's transformer prediction (the CFG-doubled batch, as
the pipeline calls it) and one VAE decode on local gloo ranks, and reports per rank:

* the bytes sent through the collectives, *measured* by a :class:`CommMeter` on every collective
  call, and the transformer's bytes *computed* from the shapes (formulas below); the two must
  agree exactly, which checks the formula used for the released sizes;
* the peak resident memory of the step above the memory before it (``VmHWM`` after resetting it
  through ``/proc/self/clear_refs``), so the model and the process start-up are not counted;
* the wall time of the step (CPU, gloo on loopback, a shared 2-core machine: not a speed result).

It then evaluates the formulas at CogVideoX-5B, 720x480, 49 frames (13 latent frames, 17 550
video + 226 text tokens, 42 layers, 48 heads x 64, fp32 / bf16), the size the modes are for. No
GPU was available, so there is no GPU step time.

    python benchmarks/parallel_bench.py            # writes benchmarks/results/parallel.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from cogvx.testing.distributed import run_ranks

HERE = str(Path(__file__).resolve())
OUT = Path(__file__).resolve().parent / "results" / "parallel.md"

#: A reduced DiT with the 5B layout (RoPE, expert adaLN); 8 heads so Ulysses splits 2 and 4 ways.
DIT = dict(
    num_attention_heads=8,
    attention_head_dim=32,
    num_layers=2,
    in_channels=16,
    out_channels=16,
    text_embed_dim=64,
    time_embed_dim=64,
    use_rotary_positional_embeddings=True,
    sample_frames=25,
    sample_height=32,
    sample_width=32,
    max_text_seq_length=64,
)
LATENT = (1, 4, 16, 16, 32)  # [B, F', C, h, w] per branch: 4 x 8 x 16 = 512 video tokens
TEXT = 64
VAE_LATENT = (1, 4, 3, 16, 16)  # [B, C, t, h, w] -> 9 frames 128x128 with the test-size VAE

MODES = [
    (1, "single", {}),
    (2, "cfg2", dict(cfg=2)),
    (2, "sp2-ulysses", dict(sp=2)),
    (2, "sp2-ring", dict(sp=2, sp_mode="ring")),
    (2, "vae2", dict(sp=2, vae=2)),
    (4, "cfg2xsp2-ulysses", dict(cfg=2, sp=2, vae=4)),
    (4, "sp4-ulysses", dict(sp=4, vae=4)),
    (4, "sp4-ring", dict(sp=4, sp_mode="ring", vae=4)),
]


# ---- formulas ----------------------------------------------------------------------------------
def transformer_bytes(
    degrees: dict,
    *,
    batch: int,
    tokens: int,
    text: int,
    heads: int,
    head_dim: int,
    layers: int,
    out_features: int,
    latent_elements: int,
    element: int,
) -> int:
    """Bytes one rank sends for one CFG-doubled transformer prediction (CommMeter convention)."""
    cfg, p = degrees.get("cfg", 1), degrees.get("sp", 1)
    b = 2 * batch // cfg  # the forward batch on this rank
    total = 0
    if p > 1:
        n = tokens // p
        if degrees.get("sp_mode", "ulysses") == "ulysses":
            a2a = (b * heads * n * head_dim * element) * (p - 1) // p
            per_layer = 3 * a2a + a2a + b * (heads // p) * text * head_dim * element * (p - 1)
        else:
            per_layer = (p - 1) * 2 * b * heads * n * head_dim * element
        total += layers * per_layer + b * n * out_features * element * (p - 1)  # + final gather
    if cfg == 2:
        total += batch * latent_elements * element  # my branch's prediction to the other rank
    return total


# ---- one rank ----------------------------------------------------------------------------------
def _rss_reset() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    return _status("VmRSS")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def rank_bench(rank: int, world: int, modes: list[dict]) -> list[dict]:
    """Every mode of one world size in one set of processes (start-up dominates on this machine)."""
    return [_bench_mode(world, degrees) for degrees in modes]


def _bench_mode(world: int, degrees: dict) -> dict:
    from cogvx.expert_dit import DiTConfig, ExpertDiT
    from cogvx.infer.parallel import CommMeter, ParallelConfig, ParallelContext
    from cogvx.testing import VAE_KWARGS, randomize
    from cogvx.vae3d import CausalVAE3D, VAEConfig

    torch.manual_seed(0)
    dit = ExpertDiT(DiTConfig.tiny(**DIT)).eval()
    randomize(dit, 1)
    vae = CausalVAE3D(VAEConfig.from_dict(dict(VAE_KWARGS))).eval()
    randomize(vae, 2)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2 * LATENT[0], *LATENT[1:], generator=g)  # [uncond ; cond] latents
    text = torch.randn(2 * LATENT[0], TEXT, DIT["text_embed_dim"], generator=g)
    t = torch.full((2 * LATENT[0],), 500)
    z = torch.randn(*VAE_LATENT, generator=g)
    meter = CommMeter()
    ctx = ParallelContext(ParallelConfig(**degrees), meter=meter) if world > 1 else None
    out = {}
    with torch.no_grad():
        for stage in ("transformer", "vae"):
            meter.reset()
            before = _rss_reset()
            start = time.perf_counter()
            if stage == "transformer":
                y = dit(x, text, t) if ctx is None else ctx.predict(dit, x, text, t)
            else:
                y = vae.decode(z) if ctx is None else ctx.decode(vae, z)
            seconds = time.perf_counter() - start
            out[stage] = dict(
                result=y,
                bytes=dict(meter.bytes),
                calls=dict(meter.calls),
                peak=_status("VmHWM") - before,
                seconds=seconds,
            )
    return out


# ---- report ------------------------------------------------------------------------------------
def _mb(n: float) -> str:
    return f"{n / 2**20:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows, ref = [], None
    b, f, c, h, w = LATENT
    tokens = f * (h // 2) * (w // 2)
    shape_kw = dict(
        batch=b,
        tokens=tokens,
        text=TEXT,
        heads=DIT["num_attention_heads"],
        head_dim=DIT["attention_head_dim"],
        layers=DIT["num_layers"],
        out_features=c * 4,
        latent_elements=f * c * h * w,
        element=4,
    )
    by_world: dict[int, list] = {}
    for world, name, degrees in MODES:
        by_world.setdefault(world, []).append((name, degrees))
    runs = {}
    for world, modes in by_world.items():
        print(f"{[n for n, _ in modes]} on {world} rank(s) ...", file=sys.stderr, flush=True)
        per_rank = run_ranks(HERE, "rank_bench", world, [d for _, d in modes], timeout_s=3000)
        for i, (name, _) in enumerate(modes):
            runs[name] = [r[i] for r in per_rank]
    for world, name, degrees in MODES:
        res = runs[name]
        if ref is None:
            ref = res[0]
        diff_t = max(
            (r["transformer"]["result"] - ref["transformer"]["result"]).abs().max().item()
            for r in res
        )
        diff_v = max((r["vae"]["result"] - ref["vae"]["result"]).abs().max().item() for r in res)
        measured_t = max(sum(r["transformer"]["bytes"].values()) for r in res)
        computed_t = transformer_bytes(degrees, **shape_kw) if world > 1 else 0
        measured_v = max(sum(r["vae"]["bytes"].values()) for r in res)
        rows.append(
            dict(
                name=name,
                world=world,
                diff_t=diff_t,
                diff_v=diff_v,
                computed_t=computed_t,
                measured_t=measured_t,
                ops_t=res[0]["transformer"]["bytes"],
                measured_v=measured_v,
                ops_v=res[0]["vae"]["bytes"],
                peak_t=max(r["transformer"]["peak"] for r in res),
                peak_v=max(r["vae"]["peak"] for r in res),
                sec_t=max(r["transformer"]["seconds"] for r in res),
                sec_v=max(r["vae"]["seconds"] for r in res),
            )
        )
    lines = [
        "# Parallel inference: communication and memory per rank",
        "",
        f"Reduced DiT (5B layout: RoPE, {DIT['num_layers']} layers, {DIT['num_attention_heads']} "
        f"heads x {DIT['attention_head_dim']}), one CFG-doubled prediction on latents "
        f"{list(LATENT)} per branch ({tokens} video + {TEXT} text tokens), fp32; test-size VAE "
        f"decode of {list(VAE_LATENT)} latents. gloo on 127.0.0.1, {time.strftime('%Y-%m-%d')}; "
        "max over ranks. Peak = VmHWM during the stage minus RSS before it.",
        "",
        "| mode | ranks | DiT MB sent (computed) | DiT MB sent (measured) | DiT peak MB | "
        "DiT s | VAE MB sent | VAE peak MB | VAE s | max abs diff DiT / VAE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['world']} | {_mb(r['computed_t'])} | {_mb(r['measured_t'])} | "
            f"{_mb(r['peak_t'])} | {r['sec_t']:.2f} | {_mb(r['measured_v'])} | {_mb(r['peak_v'])} | "
            f"{r['sec_v']:.2f} | {r['diff_t']:.1e} / {r['diff_v']:.1e} |"
        )
    lines += ["", "Per operation (rank 0, bytes):", ""]
    for r in rows[1:]:
        lines.append(f"- {r['name']}: DiT {r['ops_t']}; VAE {r['ops_v']}")
    # The released size: CogVideoX-5B 720x480x49.
    big = dict(
        batch=1,
        tokens=13 * 30 * 45,
        text=226,
        heads=48,
        head_dim=64,
        layers=42,
        out_features=16 * 4,
        latent_elements=13 * 16 * 60 * 90,
    )
    lines += [
        "",
        "Computed for CogVideoX-5B, 720x480x49 (17 550 video + 226 text tokens, 42 layers, 48 x 64"
        " heads), one denoising step (one CFG-doubled prediction), per rank:",
        "",
        "| mode | fp32 MB | bf16 MB |",
        "|---|---|---|",
    ]
    for name, degrees in [
        ("cfg2", dict(cfg=2)),
        ("sp2-ulysses", dict(sp=2)),
        ("sp2-ring", dict(sp=2, sp_mode="ring")),
        ("cfg2xsp2-ulysses", dict(cfg=2, sp=2)),
        ("sp4-ulysses", dict(sp=4)),
        ("sp4-ring", dict(sp=4, sp_mode="ring")),
        ("sp8-ulysses", dict(sp=8)),
    ]:
        fp32 = transformer_bytes(degrees, **big, element=4)
        bf16 = transformer_bytes(degrees, **big, element=2)
        lines.append(f"| {name} | {_mb(fp32):>8} | {_mb(bf16):>8} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.partial")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
