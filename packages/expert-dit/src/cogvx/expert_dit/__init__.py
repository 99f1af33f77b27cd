"""cogvx.expert_dit: the CogVideoX expert transformer, its kernels, noise schedule and samplers.

- Model: :class:`ExpertDiT` (diffusers ``CogVideoXTransformer3DModel`` layout and behaviour) built
  from a :class:`DiTConfig`; position tables in :mod:`.positions`; attention backends in
  :mod:`.attention`; SAT checkpoint conversion in :mod:`.convert`; several samples in one
  sequence in :mod:`.packed`.
- Kernels: fused expert LayerNorm + modulation, RoPE on q/k and the gated residual, Triton with a
  PyTorch reference beside each, chosen by :func:`use_kernels` (:mod:`.kernels`).
- Diffusion: the CogVideoX noise schedule (:mod:`.schedule`) and the DDIM / DPM-Solver++(2M)
  samplers with classifier-free guidance (:mod:`.sampling`); step caching (TeaCache,
  First-Block-Cache, Pyramid Attention Broadcast) and cheaper guidance in :mod:`.caching`.
"""

from cogvx.expert_dit.attention import AttentionBackend, use_attention_backend
from cogvx.expert_dit.config import DiTConfig
from cogvx.expert_dit.convert import convert_sat_checkpoint, convert_sat_state_dict
from cogvx.expert_dit.kernels import KernelBackend, current_backend, use_kernels
from cogvx.expert_dit.packed import PackedAttention, PackedExpertDiT, PackedLayout, packed_forward
from cogvx.expert_dit.positions import RopeGrid
from cogvx.expert_dit.precision import use_half_matmul
from cogvx.expert_dit.sampling import (
    DDIMSampler,
    DPMSolverSampler,
    GuidanceSchedule,
    Sampler,
    StepOutput,
    apply_guidance,
    guidance_scale_at,
    make_sampler,
)
from cogvx.expert_dit.schedule import NoiseSchedule, SchedulerConfig
from cogvx.expert_dit.transformer import ExpertDiT

__all__: list[str] = [
    "AttentionBackend",
    "DDIMSampler",
    "DPMSolverSampler",
    "DiTConfig",
    "ExpertDiT",
    "GuidanceSchedule",
    "KernelBackend",
    "NoiseSchedule",
    "PackedAttention",
    "PackedExpertDiT",
    "PackedLayout",
    "RopeGrid",
    "Sampler",
    "SchedulerConfig",
    "StepOutput",
    "apply_guidance",
    "convert_sat_checkpoint",
    "convert_sat_state_dict",
    "current_backend",
    "guidance_scale_at",
    "make_sampler",
    "packed_forward",
    "use_attention_backend",
    "use_half_matmul",
    "use_kernels",
]
