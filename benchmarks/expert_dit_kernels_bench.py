"""Benchmark the expert-transformer Triton kernels against their PyTorch references.

GPU mode (default; needs CUDA): for 2B- and 5B-like shapes in bf16 (batch 2 = one prompt with
CFG, 226 text + 13x30x45 = 17550 video tokens, i.e. 49 frames at 480x720), time forward and
backward of each kernel and of its reference with CUDA events, report the effective bandwidth
(bytes the op must move / median time) and its fraction of the measured device-to-device copy
bandwidth (target >= 80 %), the speed-up and the peak GPU memory of each side. Triton and
reference rounds are interleaved so that clock or load drift hits both alike. Peak memory is
``torch.cuda.max_memory_allocated`` after a reset, measured per side in this one process (GPU
memory, unlike RSS, resets cleanly).

CPU mode (``--cpu-check``): the kernels under the Triton interpreter (``TRITON_INTERPRET=1``) on
small awkward shapes, fp32: max|kernel - reference| / max|reference| for outputs and gradients.
This is a correctness number, not a speed number.

Compile mode (``--compile-check``; no GPU needed): compiles every kernel variant the launchers
use at 2B/5B widths ahead of time for sm_80 and sm_90 (``triton.compile`` with a ``GPUTarget``,
bf16 pointers, the 16-divisibility hints the JIT would derive from real tensors) and reports, from
the bundled ``ptxas -v``, registers, spills and shared memory, plus the widest global load.

    uv run --package cogvx-expert-dit python benchmarks/expert_dit_kernels_bench.py \
        --output benchmarks/results/expert-dit-kernels.md
    uv run --package cogvx-expert-dit python benchmarks/expert_dit_kernels_bench.py --cpu-check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

# Triton reads TRITON_INTERPRET when the kernels are defined, so it is fixed before any import:
# the interpreter for --cpu-check, compiled kernels for everything else.
if "--cpu-check" in sys.argv:
    os.environ["TRITON_INTERPRET"] = "1"
else:
    os.environ.pop("TRITON_INTERPRET", None)

import torch

from cogvx.expert_dit.kernels import (
    expert_layernorm_modulate,
    gated_residual,
    reference,
    rope_qk,
    use_kernels,
)

TEXT_LEN = 226
VIDEO_TOKENS = 13 * 30 * 45  # 49 frames at 480x720: 13 latent frames, 60x90 latents, 2x2 patches


@dataclass(frozen=True)
class ModelShape:
    name: str
    dim: int
    heads: int
    head_dim: int = 64
    batch: int = 2  # one prompt with classifier-free guidance


MODELS = {
    "2b": ModelShape("CogVideoX-2B", dim=1920, heads=30),
    "5b": ModelShape("CogVideoX-5B", dim=3072, heads=48),
}


@dataclass
class Case:
    """One op at one shape: inputs, the grads to take, and the bytes each pass must move."""

    op: str
    run: Callable[..., object]
    ref: Callable[..., object]
    args: tuple
    grad_inputs: list[torch.Tensor]
    fwd_bytes: int
    bwd_bytes: int


def _cases(shape: ModelShape, dtype: torch.dtype, device: str) -> list[Case]:
    gen = torch.Generator(device=device).manual_seed(0)
    b, s, d, el = shape.batch, TEXT_LEN + VIDEO_TOKENS, shape.dim, torch.finfo(dtype).bits // 8

    def rand(*size, scale=1.0):
        t = scale * torch.randn(*size, device=device, generator=gen)
        return t.to(dtype).requires_grad_()

    x, w, bias = rand(b, s, d), rand(d, scale=0.3), rand(d, scale=0.3)
    mods = [rand(b, d, scale=0.5) for _ in range(4)]
    tokens = b * s * d * el
    adaln = Case(
        "expert LayerNorm + adaLN",
        expert_layernorm_modulate,
        reference.expert_layernorm_modulate,
        (x, w, bias, 1e-5, TEXT_LEN, *mods),
        [x, w, bias, *mods],
        fwd_bytes=2 * tokens,  # read x, write y
        bwd_bytes=3 * tokens,  # read dy and x, write dx
    )
    # q/k as attention produces them: [B, S, H, d] viewed as [B, H, S, d].
    q = rand(b, s, shape.heads, shape.head_dim).detach().transpose(1, 2).requires_grad_()
    k = rand(b, s, shape.heads, shape.head_dim).detach().transpose(1, 2).requires_grad_()
    angles = torch.rand(VIDEO_TOKENS, shape.head_dim // 2, device=device, generator=gen) * 40
    cos = angles.cos().repeat_interleave(2, -1)
    sin = angles.sin().repeat_interleave(2, -1)
    qk_bytes = 2 * q.numel() * el
    rope = Case(
        "RoPE-3D on q and k",
        rope_qk,
        reference.rope_qk,
        (q, k, cos, sin, TEXT_LEN),
        [q, k],
        fwd_bytes=2 * qk_bytes,  # read q, k; write q', k'
        bwd_bytes=2 * qk_bytes,  # read dq', dk'; write dq, dk
    )
    xr, yr = rand(b, s, d), rand(b, s, d)
    gates = [rand(b, d, scale=0.5) for _ in range(2)]
    gate = Case(
        "gated residual",
        gated_residual,
        reference.gated_residual,
        (xr, yr, TEXT_LEN, *gates),
        [xr, yr, *gates],
        fwd_bytes=3 * tokens,  # read x, y; write out
        bwd_bytes=3 * tokens,  # read dout, y; write dy (dx is dout itself)
    )
    return [adaln, rope, gate]


def _time_ms(fn: Callable[[], object], reps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def copy_bandwidth_gbs(reps: int) -> float:
    """Device-to-device copy of 1 GiB: (read + write bytes) / median time."""
    n = 1 << 29  # bf16 elements = 1 GiB
    src = torch.empty(n, dtype=torch.bfloat16, device="cuda").normal_()
    dst = torch.empty_like(src)
    ms = _time_ms(lambda: dst.copy_(src), reps, warmup=3)
    return 2 * src.numel() * src.element_size() / (ms * 1e-3) / 1e9


def _fwd_bwd(case: Case, backend: str) -> tuple[Callable[[], object], Callable[[], object]]:
    fn = case.run if backend == "triton" else case.ref

    def forward():
        with use_kernels(backend), torch.no_grad():
            return fn(*case.args)

    with use_kernels(backend):
        out = fn(*case.args)
    outs = out if isinstance(out, tuple) else (out,)
    grads_out = [torch.randn_like(o) for o in outs]

    def backward():
        return torch.autograd.grad(outs, case.grad_inputs, grads_out, retain_graph=True)

    return forward, backward


def _peak_mib(fn: Callable[[], object]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _max_rel_err(case: Case) -> float:
    with use_kernels("triton"):
        out = case.run(*case.args)
    ref = case.ref(*case.args)
    outs, refs = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
    errs = [
        ((o.float() - r.float()).abs().max() / r.float().abs().max()).item()
        for o, r in zip(outs, refs)
    ]
    return max(errs)


def run_gpu(models: list[str], reps: int, warmup: int, rounds: int) -> str:
    dtype = torch.bfloat16
    copy_gbs = copy_bandwidth_gbs(reps)
    lines = [
        f"Device: {torch.cuda.get_device_name()} (torch {torch.__version__}); bf16; "
        f"median of {reps} CUDA-event timings x {rounds} interleaved rounds (median over rounds).",
        f"Measured device copy bandwidth (1 GiB D2D, read+write): **{copy_gbs:.0f} GB/s**.",
        "",
        "| model | op | pass | Triton ms | reference ms | speed-up | Triton GB/s | % of copy | "
        "peak MiB Triton / ref | max rel err (bf16 out) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in models:
        shape = MODELS[key]
        for case in _cases(shape, dtype, "cuda"):
            err = _max_rel_err(case)
            for pass_name, nbytes, index in (
                ("fwd", case.fwd_bytes, 0),
                ("bwd", case.bwd_bytes, 1),
            ):
                times: dict[str, list[float]] = {"triton": [], "torch": []}
                peaks: dict[str, float] = {}
                for _ in range(rounds):
                    for backend in ("triton", "torch"):  # interleaved
                        fn = _fwd_bwd(case, backend)[index]
                        times[backend].append(_time_ms(fn, reps, warmup))
                        peaks[backend] = _peak_mib(fn)
                t_ms, r_ms = statistics.median(times["triton"]), statistics.median(times["torch"])
                gbs = nbytes / (t_ms * 1e-3) / 1e9
                lines.append(
                    f"| {shape.name} | {case.op} | {pass_name} | {t_ms:.3f} | {r_ms:.3f} | "
                    f"{r_ms / t_ms:.2f}x | {gbs:.0f} | {100 * gbs / copy_gbs:.0f} % | "
                    f"{peaks['triton']:.0f} / {peaks['torch']:.0f} | {err:.2e} |"
                )
                print(lines[-1], flush=True)
    lines += [
        "",
        "Bytes counted: the tensors the op must read and write once (x/y/dy/dx, q/k), not the "
        "[B,D] modulation vectors or the fp32 mean/rstd/partial sums; the reference is rated on "
        "the same bytes.",
    ]
    return "\n".join(lines)


def run_cpu_check() -> str:
    """Kernel vs reference under the Triton interpreter, fp32, small awkward shapes."""
    gen = torch.Generator().manual_seed(0)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        scale = b.abs().max().item()
        diff = (a - b).abs().max().item()
        return diff / scale if scale > 0 else diff

    def compare(fn, ref, args, leaves):
        with use_kernels("triton"):
            out = fn(*args)
        expected = ref(*args)
        outs, refs = (out, expected) if isinstance(out, tuple) else ((out,), (expected,))
        g = [torch.randn(o.shape, generator=gen) for o in outs]
        grads = torch.autograd.grad(outs, leaves, g)
        ref_grads = torch.autograd.grad(refs, leaves, g)
        fwd = max(rel(o, r) for o, r in zip(outs, refs))
        bwd = max(rel(a, b) for a, b in zip(grads, ref_grads))
        return fwd, bwd

    rows = [
        "| op | shape | max rel err fwd | max rel err grads | interpreter s |",
        "|---|---|---|---|---|",
    ]
    for b, s, d, t in [(1, 9, 48, 4), (3, 13, 80, 0), (2, 10, 100, 10), (3, 7, 80, 1)]:
        leaves = [torch.randn(b, s, d, generator=gen).requires_grad_()]
        leaves += [torch.randn(d, generator=gen).requires_grad_() for _ in range(2)]
        leaves += [(0.5 * torch.randn(b, d, generator=gen)).requires_grad_() for _ in range(4)]
        x, w, bias, *mods = leaves
        start = time.perf_counter()
        fwd, bwd = compare(
            expert_layernorm_modulate,
            reference.expert_layernorm_modulate,
            (x, w, bias, 1e-5, t, *mods),
            leaves,
        )
        rows.append(
            f"| expert adaLN | B={b} S={s} D={d} text_len={t} | {fwd:.1e} | {bwd:.1e} | "
            f"{time.perf_counter() - start:.2f} |"
        )
    for b, h, s, hd, off in [
        (1, 2, 9, 16, 4),
        (3, 1, 7, 64, 0),
        (2, 3, 5, 16, 5),
        (1, 2, 70, 64, 3),
    ]:
        q = torch.randn(b, h, s, hd, generator=gen).requires_grad_()
        k = torch.randn(b, h, s, hd, generator=gen).requires_grad_()
        cos, sin = torch.randn(s - off, hd, generator=gen), torch.randn(s - off, hd, generator=gen)
        start = time.perf_counter()
        fwd, bwd = compare(rope_qk, reference.rope_qk, (q, k, cos, sin, off), [q, k])
        rows.append(
            f"| RoPE q,k | B={b} H={h} S={s} d={hd} offset={off} | {fwd:.1e} | {bwd:.1e} | "
            f"{time.perf_counter() - start:.2f} |"
        )
    for b, s, d, t in [(1, 9, 48, 4), (3, 13, 80, 0), (2, 10, 100, 10)]:
        leaves = [torch.randn(b, s, d, generator=gen).requires_grad_() for _ in range(2)]
        leaves += [torch.randn(b, d, generator=gen).requires_grad_() for _ in range(2)]
        x, y, *gates = leaves
        start = time.perf_counter()
        fwd, bwd = compare(gated_residual, reference.gated_residual, (x, y, t, *gates), leaves)
        rows.append(
            f"| gated residual | B={b} S={s} D={d} text_len={t} | {fwd:.1e} | {bwd:.1e} | "
            f"{time.perf_counter() - start:.2f} |"
        )
    return "\n".join(rows)


# Pointer arguments that are fp32 buffers (the rest take the model dtype, bf16 here).
_FP32_POINTERS = {"mean_ptr", "rstd_ptr", "p_ptr", "partial_ptr", "cos_ptr", "sin_ptr"}


def _compile(fn, constexprs: dict, num_warps: int, capability: int, fp32_pointers=_FP32_POINTERS):
    """Ahead-of-time compile of one kernel variant for ``sm_<capability>`` (no GPU needed)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature, attrs = {}, {}
    for index, name in enumerate(fn.arg_names):
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*fp32" if name in fp32_pointers else "*bf16"
        else:
            signature[name] = "fp32" if name == "eps" else "i32"
        # What the JIT derives from real tensors: 16-byte aligned data and row strides that are
        # multiples of 16 elements (D = 1920/3072, head dim 64).
        aligned = name.endswith("_ptr") or name.startswith("stride") or name in ("dim", "head_dim")
        if aligned and name not in constexprs:
            attrs[(index,)] = [["tt.divisibility", 16]]
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(
        source, target=GPUTarget("cuda", capability, 32), options={"num_warps": num_warps}
    )


def compile_variants():
    """(label, kernel, constexprs, num_warps, fp32 pointer names) as the launchers use them."""
    from cogvx.expert_dit.kernels import triton_adaln, triton_gate, triton_rope

    variants = []
    for dim, warps in ((2048, 8), (4096, 16)):  # D = 1920 (2B), 3072 (5B)
        variants += [
            (f"adaLN fwd BLOCK_D={dim}", triton_adaln._adaln_fwd_kernel,
             dict(HAS_WEIGHT=True, HAS_BIAS=True, ROWS=4, BLOCK_D=dim), warps, _FP32_POINTERS),
            (f"adaLN bwd BLOCK_D={dim}", triton_adaln._adaln_bwd_kernel,
             dict(HAS_WEIGHT=True, COMPUTE_DX=True, ROWS=32, BLOCK_D=dim), warps,
             _FP32_POINTERS | {"q_ptr"}),
            (f"gate fwd BLOCK_D={dim}", triton_gate._gate_kernel,
             dict(BACKWARD=False, ROWS=4, BLOCK_D=dim), warps, _FP32_POINTERS - {"partial_ptr"}),
            (f"gate bwd BLOCK_D={dim}", triton_gate._gate_kernel,
             dict(BACKWARD=True, ROWS=32, BLOCK_D=dim), warps, _FP32_POINTERS),
        ]  # fmt: skip
    # An int argument equal to 1 is specialised to a constant by the JIT: text_len = 1.
    variants.append(
        ("adaLN fwd text_len=1", triton_adaln._adaln_fwd_kernel,
         dict(HAS_WEIGHT=False, HAS_BIAS=False, ROWS=4, BLOCK_D=2048, text_len=1, n_text_chunks=1),
         8, _FP32_POINTERS)
    )  # fmt: skip
    for backward in (False, True):
        variants.append(
            (f"RoPE {'bwd' if backward else 'fwd'} d=64", triton_rope._rope_kernel,
             dict(BACKWARD=backward, BLOCK_S=32, BLOCK_D=64), 4, _FP32_POINTERS)
        )  # fmt: skip
    return variants


def run_compile_check() -> str:
    import collections
    import re
    import subprocess

    import triton

    ptxas = os.path.join(
        os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas-blackwell"
    )
    rows = [
        f"Triton {triton.__version__}, ahead-of-time compile, bf16 pointers. "
        "Registers/spills from `ptxas -v` (sm_90a); sm_80 compiled too.",
        "",
        "| kernel | warps | sm_80 | sm_90: registers | spill bytes | shared B | global ld/st |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, fn, constexprs, warps, fp32_pointers in compile_variants():
        _compile(fn, constexprs, warps, 80, fp32_pointers)
        kernel = _compile(fn, constexprs, warps, 90, fp32_pointers)
        ptx = kernel.asm["ptx"]
        with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
            f.write(ptx)
        report = subprocess.run(
            [ptxas, "-v", "--gpu-name=sm_90a", f.name, "-o", os.devnull],
            capture_output=True, text=True, check=True,
        ).stderr  # fmt: skip
        os.unlink(f.name)
        regs = re.search(r"Used (\d+) registers", report)
        spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", report)
        memops = collections.Counter(re.findall(r"(?:ld|st)\.global(?:\.v\d)?\.b\d+", ptx))
        rows.append(
            f"| {label} | {warps} | ok | {regs.group(1) if regs else '?'} | "
            f"{int(spills.group(1)) + int(spills.group(2)) if spills else '?'} | "
            f"{kernel.metadata.shared} | {', '.join(f'{k} x{v}' for k, v in sorted(memops.items()))} |"
        )
        print(rows[-1], flush=True)
    return "\n".join(rows)


def _write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".md")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["2b", "5b"])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-check", action="store_true", help="interpreter correctness only")
    parser.add_argument(
        "--compile-check", action="store_true", help="AOT-compile for sm_80/sm_90, no GPU needed"
    )
    parser.add_argument("--output", help="write the Markdown table here (atomically)")
    args = parser.parse_args(argv)
    if args.cpu_check:
        text = run_cpu_check()
    elif args.compile_check:
        text = run_compile_check()
    elif not torch.cuda.is_available():
        print(
            "expert_dit_kernels_bench: CUDA is not available; the GPU benchmark did not run "
            "(use --cpu-check for the interpreter correctness check)",
            file=sys.stderr,
        )
        return 1
    else:
        text = run_gpu(args.models, args.reps, args.warmup, args.rounds)
    print(text)
    if args.output:
        _write_atomic(args.output, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
