"""Architecture config of the CogVideoX expert transformer.

:class:`DiTConfig` holds exactly the fields of the reference ``config.json`` written by diffusers'
``CogVideoXTransformer3DModel`` (docs/transformer.md §Config), with the same names and defaults (the 2B values),
so a hub ``transformer/config.json`` loads unchanged and ours loads in diffusers. Runtime switches
(attention backend, kernels, checkpointing, dtype, the RoPE grid override) are *not* here: they are
arguments of the forward call or context managers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DIFFUSERS_CLASS_NAME", "DIFFUSERS_VERSION", "DiTConfig"]

#: ``_class_name`` the reference writes into ``transformer/config.json``.
DIFFUSERS_CLASS_NAME = "CogVideoXTransformer3DModel"
#: diffusers release whose folder layout and config keys we write (the parity oracle's version).
DIFFUSERS_VERSION = "0.42.1"

_ACTIVATIONS = ("gelu-approximate", "gelu")
_TIMESTEP_ACTIVATIONS = ("silu", "swish", "gelu", "relu", "mish")


@dataclass(frozen=True)
class DiTConfig:
    """Sizes and switches of one expert transformer; field names are the diffusers config keys.

    Defaults are CogVideoX-2b. Derived sizes are properties (``inner_dim``, ``out_dim``, ...).
    ``sample_frames`` is in *pixel* frames, ``(K - 1) * temporal_compression_ratio + 1`` for K
    latent frames (the reference's documented quirk; 49 for 13 latent frames).
    """

    num_attention_heads: int = 30
    attention_head_dim: int = 64
    in_channels: int = 16
    out_channels: int | None = 16
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    time_embed_dim: int = 512
    ofs_embed_dim: int | None = None
    text_embed_dim: int = 4096
    num_layers: int = 30
    dropout: float = 0.0
    attention_bias: bool = True
    sample_width: int = 90
    sample_height: int = 60
    sample_frames: int = 49
    patch_size: int = 2
    patch_size_t: int | None = None
    temporal_compression_ratio: int = 4
    max_text_seq_length: int = 226
    activation_fn: str = "gelu-approximate"
    timestep_activation_fn: str = "silu"
    norm_elementwise_affine: bool = True
    norm_eps: float = 1e-5
    spatial_interpolation_scale: float = 1.875
    temporal_interpolation_scale: float = 1.0
    use_rotary_positional_embeddings: bool = False
    use_learned_positional_embeddings: bool = False
    patch_bias: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, valid: str) -> None:
            if not ok:
                raise ValueError(f"DiTConfig.{name}={getattr(self, name)!r} is invalid: {valid}")

        for name in (
            "num_attention_heads",
            "attention_head_dim",
            "in_channels",
            "time_embed_dim",
            "text_embed_dim",
            "patch_size",
            "temporal_compression_ratio",
            "sample_width",
            "sample_height",
            "sample_frames",
        ):
            value = getattr(self, name)
            need(
                isinstance(value, int) and not isinstance(value, bool) and value > 0,
                name,
                "expected a positive int",
            )
        need(self.num_layers >= 0, "num_layers", "expected an int >= 0")
        need(self.max_text_seq_length >= 0, "max_text_seq_length", "expected an int >= 0")
        need(
            self.out_channels is None or self.out_channels > 0,
            "out_channels",
            "expected a positive int or None (= in_channels)",
        )
        need(
            self.patch_size_t is None or self.patch_size_t > 0,
            "patch_size_t",
            "expected a positive int (CogVideoX 1.5) or None (1.0)",
        )
        need(
            self.ofs_embed_dim is None or self.ofs_embed_dim >= 0,
            "ofs_embed_dim",
            "expected a positive int (CogVideoX 1.5 I2V) or None",
        )
        need(self.activation_fn in _ACTIVATIONS, "activation_fn", f"one of {_ACTIVATIONS}")
        need(
            self.timestep_activation_fn in _TIMESTEP_ACTIVATIONS,
            "timestep_activation_fn",
            f"one of {_TIMESTEP_ACTIVATIONS}",
        )
        need(0.0 <= self.dropout < 1.0, "dropout", "expected 0 <= dropout < 1")
        need(self.norm_eps > 0, "norm_eps", "expected > 0")
        # The reference refuses this combination: no checkpoint has a learned table without RoPE.
        need(
            not (
                self.use_learned_positional_embeddings and not self.use_rotary_positional_embeddings
            ),
            "use_learned_positional_embeddings",
            "a learned position table needs use_rotary_positional_embeddings=True (5B-I2V)",
        )
        if self.use_rotary_positional_embeddings:
            # RoPE splits the head dim t/h/w as d/4, 3d/8, 3d/8, and each part must be even.
            need(
                self.attention_head_dim % 16 == 0,
                "attention_head_dim",
                "RoPE needs a multiple of 16 (t/h/w parts d/4, 3d/8, 3d/8, each even)",
            )
        if self.uses_sincos_positions or self.use_learned_positional_embeddings:
            # 3D sin-cos splits D as D/4 (time) + 3D/8 (w) + 3D/8 (h), each a sin|cos pair.
            need(
                self.inner_dim % 16 == 0,
                "num_attention_heads",
                f"3D sin-cos positions need heads*head_dim divisible by 16, got {self.inner_dim}",
            )

    # ----------------------------------------------------------------------------- derived sizes
    @property
    def inner_dim(self) -> int:
        """Transformer width D = heads x head dim."""
        return self.num_attention_heads * self.attention_head_dim

    @property
    def out_dim(self) -> int:
        """Output latent channels (``out_channels``, or ``in_channels`` when it is None)."""
        return self.in_channels if self.out_channels is None else self.out_channels

    @property
    def patch_t(self) -> int:
        """Temporal patch size: 1 for CogVideoX 1.0 (``patch_size_t`` None)."""
        return 1 if self.patch_size_t is None else self.patch_size_t

    @property
    def patch_dim(self) -> int:
        """Input features per video token: C_in * pt * p * p."""
        return self.in_channels * self.patch_t * self.patch_size**2

    @property
    def uses_sincos_positions(self) -> bool:
        """The 2B absolute 3D sin-cos table (used when RoPE is off)."""
        return not self.use_rotary_positional_embeddings

    @property
    def sample_latent_frames(self) -> int:
        """Latent frames of the native size: ``(sample_frames - 1) // tcr + 1``."""
        return (self.sample_frames - 1) // self.temporal_compression_ratio + 1

    @property
    def default_rope_grid(self) -> str:
        """``"linspace"`` (interpolating, 1.0) when ``patch_size_t`` is None, else ``"slice"``."""
        return "linspace" if self.patch_size_t is None else "slice"

    # ----------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """The reference ``config.json`` content, ``_class_name`` and ``_diffusers_version`` first."""
        return {
            "_class_name": DIFFUSERS_CLASS_NAME,
            "_diffusers_version": DIFFUSERS_VERSION,
            **dataclasses.asdict(self),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiTConfig:
        """Build from a reference config dict.

        Keys starting with ``_`` (``_class_name``, ``_diffusers_version``, ``_name_or_path``,
        ``_use_default_values``) are bookkeeping and ignored, except that a ``_class_name`` of
        another model is refused. Any other unknown key is an error (a typo must not be silently
        dropped).
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"config must be a mapping, got {type(data).__name__}")
        class_name = data.get("_class_name", DIFFUSERS_CLASS_NAME)
        if class_name != DIFFUSERS_CLASS_NAME:
            raise ValueError(
                f"config _class_name={class_name!r} is not a {DIFFUSERS_CLASS_NAME} config"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if not k.startswith("_") and k not in fields)
        if unknown:
            raise ValueError(f"unknown DiTConfig key(s) {unknown}; valid keys are {sorted(fields)}")
        return cls(**{k: v for k, v in data.items() if k in fields})

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> DiTConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"config file {str(path)!r} is not valid JSON: {err}") from err
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> DiTConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------------------- presets
    @classmethod
    def cogvideox_2b(cls) -> DiTConfig:
        """CogVideoX-2b: 30 layers, 30 heads x 64, 3D sin-cos absolute positions."""
        return cls()

    @classmethod
    def cogvideox_5b(cls) -> DiTConfig:
        """CogVideoX-5b: 42 layers, 48 heads x 64, 3D RoPE (interpolating linspace grid)."""
        return cls(num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True)

    @classmethod
    def cogvideox_5b_i2v(cls) -> DiTConfig:
        """CogVideoX-5b-I2V: as 5b with 32 input channels and the learned table (plus RoPE)."""
        return cls.cogvideox_5b().replace(in_channels=32, use_learned_positional_embeddings=True)

    @classmethod
    def cogvideox_1_5_5b(cls) -> DiTConfig:
        """CogVideoX1.5-5B: as 5b with patch_size_t=2 (linear patch embed), extrapolating RoPE.

        ``sample_height = sample_width = 300`` as in the published hub config and SAT's
        ``latent_height/width: 300`` (the diffusers converter writes 96/170 instead); with the
        ``slice`` grid they only name the native size, any resolution runs.
        """
        return cls.cogvideox_5b().replace(
            patch_size_t=2, patch_bias=False, sample_frames=81, sample_height=300, sample_width=300
        )

    @classmethod
    def cogvideox_1_5_5b_i2v(cls) -> DiTConfig:
        """CogVideoX1.5-5B-I2V: as 1.5-5B with 32 input channels and the ofs embedding."""
        return cls.cogvideox_1_5_5b().replace(in_channels=32, ofs_embed_dim=512)

    @classmethod
    def tiny(cls, **overrides: Any) -> DiTConfig:
        """A test-size model: 2 heads x 16, 2 layers, text width 32, 4 latent channels.

        The native size is 3 latent frames of 8x12 latents. Pass field overrides to get the
        other variants at this size (e.g. ``use_rotary_positional_embeddings=True``).
        """
        base = cls(
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=4,
            out_channels=4,
            time_embed_dim=32,
            text_embed_dim=32,
            num_layers=2,
            sample_width=12,
            sample_height=8,
            sample_frames=9,
            max_text_seq_length=8,
        )
        return base.replace(**overrides)
