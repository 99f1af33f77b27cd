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
from typing import Any

from cogvx.modelio import read_config
from cogvx.modelio.fields import check_bool, check_choice, check_float, check_int, config_error

__all__ = ["DIFFUSERS_CLASS_NAME", "DIFFUSERS_VERSION", "DiTConfig"]

#: ``_class_name`` the reference writes into ``transformer/config.json``.
DIFFUSERS_CLASS_NAME = "CogVideoXTransformer3DModel"
#: diffusers release whose folder layout and config keys we write (the parity oracle's version).
DIFFUSERS_VERSION = "0.42.1"

_ACTIVATIONS = ("gelu-approximate", "gelu")
_TIMESTEP_ACTIVATIONS = ("silu", "swish", "gelu", "relu", "mish")
_OWNER = "DiTConfig"


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
        """Types, finiteness, ranges and divisibility; each error names the key, value and what is valid."""
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
            check_int(_OWNER, name, getattr(self, name), minimum=1)
        check_int(_OWNER, "num_layers", self.num_layers, minimum=0)
        check_int(_OWNER, "max_text_seq_length", self.max_text_seq_length, minimum=0)
        check_int(_OWNER, "out_channels", self.out_channels, minimum=1, optional=True)
        check_int(_OWNER, "patch_size_t", self.patch_size_t, minimum=1, optional=True)
        # 0 and None both mean "no ofs embedding", as diffusers' ``if ofs_embed_dim:``.
        check_int(_OWNER, "ofs_embed_dim", self.ofs_embed_dim, minimum=0, optional=True)
        # The sinusoid divides by (inner_dim // 2 - freq_shift).
        check_int(_OWNER, "freq_shift", self.freq_shift, minimum=0, maximum=self.inner_dim // 2 - 1)
        for name in (
            "flip_sin_to_cos",
            "attention_bias",
            "norm_elementwise_affine",
            "use_rotary_positional_embeddings",
            "use_learned_positional_embeddings",
            "patch_bias",
        ):
            check_bool(_OWNER, name, getattr(self, name))
        check_float(_OWNER, "dropout", self.dropout, minimum=0, maximum=1, exclusive_maximum=True)
        check_float(_OWNER, "norm_eps", self.norm_eps, minimum=0, exclusive_minimum=True)
        for name in ("spatial_interpolation_scale", "temporal_interpolation_scale"):
            check_float(_OWNER, name, getattr(self, name), minimum=0, exclusive_minimum=True)
        check_choice(_OWNER, "activation_fn", self.activation_fn, _ACTIVATIONS)
        check_choice(
            _OWNER, "timestep_activation_fn", self.timestep_activation_fn, _TIMESTEP_ACTIVATIONS
        )
        if (self.sample_frames - 1) % self.temporal_compression_ratio:
            raise config_error(
                _OWNER,
                "sample_frames",
                self.sample_frames,
                f"expected k * temporal_compression_ratio + 1 pixel frames "
                f"(temporal_compression_ratio={self.temporal_compression_ratio})",
            )
        # The reference refuses this combination: no checkpoint has a learned table without RoPE.
        if self.use_learned_positional_embeddings and not self.use_rotary_positional_embeddings:
            raise config_error(
                _OWNER,
                "use_learned_positional_embeddings",
                True,
                "a learned position table needs use_rotary_positional_embeddings=True (5B-I2V)",
            )
        if self.use_learned_positional_embeddings:
            # The table covers exactly the native token grid, so the native size must patchify.
            for name in ("sample_height", "sample_width"):
                if getattr(self, name) % self.patch_size:
                    raise config_error(
                        _OWNER,
                        name,
                        getattr(self, name),
                        f"the learned position table needs a multiple of patch_size={self.patch_size}",
                    )
        if self.use_rotary_positional_embeddings and self.attention_head_dim % 16:
            # RoPE splits the head dim t/h/w as d/4, 3d/8, 3d/8, and each part must be even.
            raise config_error(
                _OWNER,
                "attention_head_dim",
                self.attention_head_dim,
                "RoPE needs a multiple of 16 (t/h/w parts d/4, 3d/8, 3d/8, each even)",
            )
        if (self.uses_sincos_positions or self.use_learned_positional_embeddings) and (
            self.inner_dim % 16
        ):
            # 3D sin-cos splits D as D/4 (time) + 3D/8 (w) + 3D/8 (h), each a sin|cos pair.
            raise config_error(
                _OWNER,
                "num_attention_heads",
                self.num_attention_heads,
                f"3D sin-cos positions need num_attention_heads * attention_head_dim divisible "
                f"by 16, got {self.num_attention_heads} * {self.attention_head_dim} = {self.inner_dim}",
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
                f"DiTConfig._class_name={class_name!r}: expected {DIFFUSERS_CLASS_NAME!r} (is "
                "this the config of another model?)"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if not k.startswith("_") and k not in fields)
        if unknown:
            raise ValueError(
                f"DiTConfig: unknown key(s) {unknown}; valid keys are {sorted(fields)}"
            )
        return cls(**{k: v for k, v in data.items() if k in fields})

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> DiTConfig:
        """Read a reference ``config.json``; every error (file, JSON, field) names the path."""
        data = read_config(path)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{str(path)!r}: {err}") from None

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
