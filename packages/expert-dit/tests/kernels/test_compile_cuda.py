"""The kernels compile for real GPUs (sm_80, sm_90), checked without a GPU (``-m slow``).

The interpreter tests execute the kernels' Python semantics; the CUDA compiler is stricter (types
must agree across branches, an int argument equal to 1 becomes a constant, ...). Here every
kernel variant the launchers use is compiled ahead of time with ``triton.compile`` for a
``GPUTarget`` in a fresh process (the test process runs Triton in interpreter mode). Slow: a few
seconds of CPU per variant.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from cogvx.expert_dit.kernels.backend import triton_importable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not triton_importable(), reason="triton is not importable"),
]

_SCRIPT = textwrap.dedent(
    """
    import os
    os.environ.pop("TRITON_INTERPRET", None)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from cogvx.expert_dit.kernels import triton_adaln, triton_gate, triton_rope

    FP32 = {"mean_ptr", "rstd_ptr", "p_ptr", "partial_ptr", "cos_ptr", "sin_ptr"}

    def compile_for(fn, constexprs, num_warps, capability, fp32):
        signature = {}
        for name in fn.arg_names:
            if name in constexprs:
                signature[name] = "constexpr"
            elif name.endswith("_ptr"):
                signature[name] = "*fp32" if name in fp32 else "*bf16"
            else:
                signature[name] = "fp32" if name == "eps" else "i32"
        source = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
        target = GPUTarget("cuda", capability, 32)
        return triton.compile(source, target=target, options={"num_warps": num_warps})

    variants = [
        (triton_adaln._adaln_fwd_kernel, dict(HAS_WEIGHT=True, HAS_BIAS=True, ROWS=4, BLOCK_D=128), FP32),
        (triton_adaln._adaln_fwd_kernel,
         dict(HAS_WEIGHT=False, HAS_BIAS=True, ROWS=1, BLOCK_D=128, text_len=1, n_text_chunks=1), FP32),
        (triton_adaln._adaln_bwd_kernel, dict(HAS_WEIGHT=True, COMPUTE_DX=True, ROWS=8, BLOCK_D=128),
         FP32 | {"q_ptr"}),
        (triton_adaln._adaln_bwd_kernel,
         dict(HAS_WEIGHT=False, COMPUTE_DX=False, ROWS=8, BLOCK_D=128, text_len=1), FP32 | {"q_ptr"}),
        (triton_gate._gate_kernel, dict(BACKWARD=False, ROWS=4, BLOCK_D=128), FP32 - {"partial_ptr"}),
        (triton_gate._gate_kernel, dict(BACKWARD=True, ROWS=4, BLOCK_D=128, text_len=1), FP32),
        (triton_rope._rope_kernel, dict(BACKWARD=False, BLOCK_S=16, BLOCK_D=16), FP32),
        (triton_rope._rope_kernel, dict(BACKWARD=True, BLOCK_S=32, BLOCK_D=64, offset=1), FP32),
    ]
    for capability in (80, 90):
        for fn, constexprs, fp32 in variants:
            kernel = compile_for(fn, constexprs, 4, capability, fp32)
            assert kernel.asm["cubin"], fn.__name__
    print("compiled", 2 * len(variants))
    """
)


def test_every_kernel_variant_compiles_for_sm80_and_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip() == "compiled 16"
