"""`VAEConfig`: the architecture of the CogVideoX 3D causal VAE as a frozen dataclass.

It reads and writes the reference `config.json` of diffusers' `AutoencoderKLCogVideoX`
([D:models/autoencoders/autoencoder_kl_cogvideox.py], spec section 2.1). Every key the reference
writes is accepted and kept, including the bookkeeping keys `_class_name` and
`_diffusers_version`; unknown keys are kept in `extra` and written back unchanged, so a config
round-trips. Runtime switches (chunk sizes, tiling, slicing, dtype) are never stored here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["CONFIG_NAME", "VAEConfig"]

CONFIG_NAME = "config.json"
_CLASS_NAME = "AutoencoderKLCogVideoX"
_DIFFUSERS_VERSION = "0.42.1"
_DOWN_BLOCK = "CogVideoXDownBlock3D"
_UP_BLOCK = "CogVideoXUpBlock3D"
_ACTIVATIONS = ("silu", "swish")


def _as_tuple(value: Any, name: str, kind: type) -> tuple:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"VAEConfig.{name} must be a list of {kind.__name__}, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of `CausalVAE3D`; field names and defaults are the reference's (2B VAE).

    Sizes used by the model: `block_out_channels` (one entry per resolution level),
    `layers_per_block` (encoder resnets per level; the decoder has one more), `latent_channels`,
    `norm_num_groups`, `norm_eps` (the encoder's resnet norms only; the reference hard-codes
    1e-6 for the encoder `norm_out` and every decoder SpatialNorm3D), and
    `temporal_compression_ratio` (the first log2(ratio) levels also halve time).
    `scaling_factor` (and `shift_factor`, `latents_mean/std`, `invert_scale_latents`) describe
    the latent scaling that callers apply; the model itself returns and takes unscaled latents.
    """

    in_channels: int = 3
    out_channels: int = 3
    down_block_types: tuple[str, ...] = (_DOWN_BLOCK,) * 4
    up_block_types: tuple[str, ...] = (_UP_BLOCK,) * 4
    block_out_channels: tuple[int, ...] = (128, 256, 256, 512)
    latent_channels: int = 16
    layers_per_block: int = 3
    act_fn: str = "silu"
    norm_eps: float = 1e-6
    norm_num_groups: int = 32
    temporal_compression_ratio: float = 4
    sample_height: int = 480
    sample_width: int = 720
    scaling_factor: float = 1.15258426
    shift_factor: float | None = None
    latents_mean: tuple[float, ...] | None = None
    latents_std: tuple[float, ...] | None = None
    force_upcast: bool = True
    use_quant_conv: bool = False
    use_post_quant_conv: bool = False
    invert_scale_latents: bool = False
    # Bookkeeping keys of the reference file, kept so a config round-trips.
    class_name: str = _CLASS_NAME
    diffusers_version: str = _DIFFUSERS_VERSION
    # Keys this version does not know, kept verbatim (sorted (key, json-text) pairs: hashable).
    extra: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("down_block_types", "up_block_types"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name), name, str))
        object.__setattr__(
            self,
            "block_out_channels",
            _as_tuple(self.block_out_channels, "block_out_channels", int),
        )
        for name in ("latents_mean", "latents_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _as_tuple(value, name, float))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        levels = len(self.block_out_channels)
        if levels < 1:
            raise ValueError("VAEConfig.block_out_channels must have at least one level, got ()")
        for name in ("in_channels", "out_channels", "latent_channels", "layers_per_block"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"VAEConfig.{name} must be a positive int, got {value!r}")
        if len(self.down_block_types) != levels or len(self.up_block_types) != levels:
            raise ValueError(
                f"VAEConfig: down_block_types ({len(self.down_block_types)}) and up_block_types "
                f"({len(self.up_block_types)}) must have one entry per block_out_channels level ({levels})"
            )
        bad = [t for t in self.down_block_types if t != _DOWN_BLOCK]
        bad += [t for t in self.up_block_types if t != _UP_BLOCK]
        if bad:
            raise ValueError(
                f"VAEConfig: unsupported block type(s) {bad}; valid: {_DOWN_BLOCK!r} (down), {_UP_BLOCK!r} (up)"
            )
        if self.act_fn not in _ACTIVATIONS:
            raise ValueError(
                f"VAEConfig.act_fn={self.act_fn!r} is not supported; valid: {_ACTIVATIONS}"
            )
        groups = self.norm_num_groups
        for ch in self.block_out_channels:
            if not isinstance(ch, int) or ch < 1 or ch % groups:
                raise ValueError(
                    f"VAEConfig.block_out_channels={list(self.block_out_channels)}: every entry must be a "
                    f"positive multiple of norm_num_groups={groups}"
                )
        ratio = self.temporal_compression_ratio
        t_levels = math.log2(ratio) if ratio > 0 else -1.0
        if not t_levels.is_integer() or not 0 <= t_levels <= levels - 1:
            raise ValueError(
                f"VAEConfig.temporal_compression_ratio={ratio!r} must be a power of two from 1 to "
                f"{2 ** (levels - 1)} (one halving per downsampling level)"
            )
        for name in ("latents_mean", "latents_std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.latent_channels:
                raise ValueError(
                    f"VAEConfig.{name} has {len(value)} entries; it needs latent_channels={self.latent_channels}"
                )

    # ------------------------------------------------------------------ derived sizes
    @property
    def spatial_compression(self) -> int:
        """Pixels per latent along H and W: 2 ** (levels - 1) (8 for the released VAEs)."""
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def temporal_compression(self) -> int:
        """Frames per latent frame after the first one: 4 for the released VAEs."""
        return int(self.temporal_compression_ratio)

    @property
    def temporal_levels(self) -> int:
        """How many of the first levels also compress time: log2(temporal_compression_ratio)."""
        return int(math.log2(self.temporal_compression_ratio))

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames for `num_frames` pixel frames (F = 4k+1 -> k+1)."""
        return (num_frames - 1) // self.temporal_compression + 1

    def pixel_frames(self, num_latent_frames: int) -> int:
        """Pixel frames decoded from `num_latent_frames` latent frames (k+1 -> 4k+1)."""
        return (num_latent_frames - 1) * self.temporal_compression + 1

    # ------------------------------------------------------------------ presets
    @classmethod
    def cogvideox_2b(cls) -> VAEConfig:
        """The CogVideoX-2B VAE (scaling factor 1.15258426) [C:tools/convert_weight_sat2hf.py]."""
        return cls(scaling_factor=1.15258426)

    @classmethod
    def cogvideox_5b(cls) -> VAEConfig:
        """The CogVideoX-5B / 5B-I2V VAE: same weights layout, scaling factor 0.7."""
        return cls(scaling_factor=0.7)

    @classmethod
    def cogvideox_1_5(cls) -> VAEConfig:
        """The CogVideoX1.5-5B VAE: scaling 0.7 and `invert_scale_latents=True` (converter flag)."""
        return cls(scaling_factor=0.7, invert_scale_latents=True)

    @classmethod
    def tiny(cls, *, latent_channels: int = 4) -> VAEConfig:
        """A test-size VAE with the full structure (4 levels, 2x temporal levels), tiny widths."""
        return cls(
            block_out_channels=(8, 16, 16, 24),
            latent_channels=latent_channels,
            layers_per_block=1,
            norm_num_groups=4,
            sample_height=64,
            sample_width=64,
            scaling_factor=1.0,
        )

    def replace(self, **changes: Any) -> VAEConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VAEConfig:
        """Build from a reference `config.json` mapping; unknown keys are kept in `extra`."""
        known = {f.name for f in fields(cls)} - {"class_name", "diffusers_version", "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in data.items():
            if key == "_class_name":
                if value != _CLASS_NAME:
                    raise ValueError(
                        f"config.json has _class_name={value!r}; this loader reads {_CLASS_NAME!r}"
                    )
                kwargs["class_name"] = value
            elif key == "_diffusers_version":
                kwargs["diffusers_version"] = str(value)
            elif key in known:
                kwargs[key] = value
            else:
                extra[key] = json.dumps(value, sort_keys=True)
        unknown = [k for k in extra if not k.startswith("_")]
        if unknown:
            warnings.warn(
                f"VAEConfig: keeping unknown config key(s) {sorted(unknown)} without using them",
                stacklevel=2,
            )
        return cls(**kwargs, extra=tuple(sorted(extra.items())))

    def to_dict(self) -> dict[str, Any]:
        """The reference `config.json` mapping (lists for tuples, `_class_name` first)."""
        data: dict[str, Any] = {
            "_class_name": self.class_name,
            "_diffusers_version": self.diffusers_version,
        }
        for key, value in asdict(self).items():
            if key in ("class_name", "diffusers_version", "extra"):
                continue
            data[key] = list(value) if isinstance(value, tuple) else value
        for key, text in self.extra:
            data[key] = json.loads(text)
        return data

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> VAEConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VAE config file not found: {str(path)!r}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"VAE config {str(path)!r} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(
                f"VAE config {str(path)!r} must hold a JSON object, got {type(data).__name__}"
            )
        return cls.from_dict(data)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def fingerprint(self) -> str:
        """Short hash of the architecture and latent scaling (stored with saved latents)."""
        data = {k: v for k, v in self.to_dict().items() if not k.startswith("_")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
