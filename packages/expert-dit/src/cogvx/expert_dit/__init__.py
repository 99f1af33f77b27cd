"""cogvx.expert_dit: the CogVideoX expert transformer, its kernels, noise schedule and samplers.

Model: :class:`ExpertDiT` (diffusers ``CogVideoXTransformer3DModel`` layout and behaviour) built
from a :class:`DiTConfig`; position tables in :mod:`.positions`; attention backends in
:mod:`.attention`; SAT checkpoint conversion in :mod:`.convert`.
"""

from cogvx.expert_dit.attention import AttentionBackend, use_attention_backend
from cogvx.expert_dit.config import DiTConfig
from cogvx.expert_dit.convert import convert_sat_checkpoint, convert_sat_state_dict
from cogvx.expert_dit.positions import RopeGrid
from cogvx.expert_dit.transformer import ExpertDiT

__all__: list[str] = [
    "AttentionBackend",
    "DiTConfig",
    "ExpertDiT",
    "RopeGrid",
    "convert_sat_checkpoint",
    "convert_sat_state_dict",
    "use_attention_backend",
]
