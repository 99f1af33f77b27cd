"""Fused kernels of the expert transformer (docs/kernels.md §Ops).

Three ops, each a readable PyTorch reference (:mod:`.reference`, also the CPU path) plus a Triton
kernel with forward and backward, behind one dispatch point:

- :func:`expert_layernorm_modulate`: shared LayerNorm + expert (text/video) adaLN modulation.
- :func:`rope_qk`: 3D RoPE on the video tokens of q and k.
- :func:`gated_residual`: ``x + gate * y`` with text/video gates.

:func:`layernorm_modulate_rows` and :func:`gated_residual_rows` are the per-row forms (one
modulation row per token) that packed sequences use; they run the same kernels.

Pick the implementation with the :func:`use_kernels` context (``torch``, ``triton``, ``auto``);
``auto`` (default) uses Triton on capable CUDA devices and the reference elsewhere. Triton is
imported only when a Triton path is taken.
"""

from cogvx.expert_dit.kernels import reference
from cogvx.expert_dit.kernels.backend import KernelBackend, current_backend, use_kernels
from cogvx.expert_dit.kernels.ops import (
    expert_layernorm_modulate,
    gated_residual,
    gated_residual_rows,
    layernorm_modulate_rows,
    rope_qk,
)

__all__ = [
    "KernelBackend",
    "current_backend",
    "expert_layernorm_modulate",
    "gated_residual",
    "gated_residual_rows",
    "layernorm_modulate_rows",
    "reference",
    "rope_qk",
    "use_kernels",
]
