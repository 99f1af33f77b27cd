"""`VAEConfig`: the architecture of the CogVideoX 3D causal VAE as a frozen dataclass.

It reads and writes the reference `config.json` of diffusers' `AutoencoderKLCogVideoX`
(`autoencoder_kl_cogvideox.py`, docs/vae.md §Config). Every key the reference
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
from typing import Any

from cogvx.modelio import read_config
from cogvx.modelio.fields import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_int_tuple,
    config_error,
)

__all__ = ["CONFIG_NAME", "VAEConfig"]

CONFIG_NAME = "config.json"
_CLASS_NAME = "AutoencoderKLCogVideoX"
_DIFFUSERS_VERSION = "0.42.1"
_DOWN_BLOCK = "CogVideoXDownBlock3D"
_UP_BLOCK = "CogVideoXUpBlock3D"
_ACTIVATIONS = ("silu", "swish")


_OWNER = "VAEConfig"


def _as_tuple(value: Any, name: str, kind: type) -> tuple:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise config_error(_OWNER, name, value, f"expected a list of {kind.__name__}", TypeError)
    return tuple(value)


def _float_tuple(value: Any, name: str) -> tuple[float, ...]:
    items = _as_tuple(value, name, float)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise config_error(_OWNER, name, value, "expected a list of finite numbers", TypeError)
        if (isinstance(item, float) and not math.isfinite(item)) or abs(item) > 1e30:
            raise config_error(_OWNER, name, value, "expected a list of finite numbers")
    return tuple(float(v) for v in items)


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
            check_int_tuple(_OWNER, "block_out_channels", self.block_out_channels, minimum=1),
        )
        for name in ("latents_mean", "latents_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _float_tuple(value, name))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        """Types, finiteness, ranges and divisibility; errors name the key, value and what is valid."""
        levels = len(self.block_out_channels)
        if levels < 1:
            raise config_error(_OWNER, "block_out_channels", [], "expected at least one level")
        for name in ("in_channels", "out_channels", "latent_channels", "layers_per_block"):
            check_int(_OWNER, name, getattr(self, name), minimum=1)
        check_int(_OWNER, "norm_num_groups", self.norm_num_groups, minimum=1)
        check_float(_OWNER, "norm_eps", self.norm_eps, minimum=0, exclusive_minimum=True)
        for name in ("sample_height", "sample_width"):
            check_int(_OWNER, name, getattr(self, name), minimum=1)
        check_float(
            _OWNER, "scaling_factor", self.scaling_factor, minimum=0, exclusive_minimum=True
        )
        check_float(_OWNER, "shift_factor", self.shift_factor, optional=True)
        for name in (
            "force_upcast",
            "use_quant_conv",
            "use_post_quant_conv",
            "invert_scale_latents",
        ):
            check_bool(_OWNER, name, getattr(self, name))
        for name in ("class_name", "diffusers_version"):
            if not isinstance(getattr(self, name), str):
                raise config_error(
                    _OWNER, name, getattr(self, name), "expected a string", TypeError
                )
        for name in ("down_block_types", "up_block_types"):
            if len(getattr(self, name)) != levels:
                raise config_error(
                    _OWNER,
                    name,
                    list(getattr(self, name)),
                    f"expected one entry per block_out_channels level ({levels})",
                )
        for name, valid in (("down_block_types", _DOWN_BLOCK), ("up_block_types", _UP_BLOCK)):
            for t in getattr(self, name):
                if t != valid:
                    raise config_error(
                        _OWNER, name, list(getattr(self, name)), f"every entry must be {valid!r}"
                    )
        check_choice(_OWNER, "act_fn", self.act_fn, _ACTIVATIONS)
        groups = self.norm_num_groups
        for ch in self.block_out_channels:
            if ch % groups:
                raise config_error(
                    _OWNER,
                    "block_out_channels",
                    list(self.block_out_channels),
                    f"every entry must be a multiple of norm_num_groups={groups}",
                )
        ratio = self.temporal_compression_ratio
        check_float(_OWNER, "temporal_compression_ratio", ratio, minimum=1)
        t_levels = math.log2(ratio)
        if not t_levels.is_integer() or t_levels > levels - 1:
            raise config_error(
                _OWNER,
                "temporal_compression_ratio",
                ratio,
                f"expected a power of two from 1 to {2 ** (levels - 1)} (one halving per "
                "downsampling level)",
            )
        for name in ("latents_mean", "latents_std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.latent_channels:
                raise config_error(
                    _OWNER,
                    name,
                    list(value),
                    f"expected latent_channels={self.latent_channels} entries",
                )
        if self.latents_std is not None and min(self.latents_std) <= 0:
            raise config_error(_OWNER, "latents_std", list(self.latents_std), "entries must be > 0")

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
        """The CogVideoX-2B VAE (scaling factor 1.15258426) (CogVideo `tools/convert_weight_sat2hf.py`)."""
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
        if not isinstance(data, Mapping):
            raise TypeError(f"VAEConfig.from_dict: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"class_name", "diffusers_version", "extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, str] = {}
        for key, value in data.items():
            if key == "_class_name":
                if value != _CLASS_NAME:
                    raise ValueError(
                        f"VAEConfig._class_name={value!r}: expected {_CLASS_NAME!r} (is this the "
                        "config of another model?)"
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
        """Read a reference `config.json`; every error (file, JSON, field) names the path."""
        data = read_config(path)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{str(path)!r}: {err}") from None

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def fingerprint(self) -> str:
        """Short hash of the architecture and latent scaling (stored with saved latents)."""
        data = {k: v for k, v in self.to_dict().items() if not k.startswith("_")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
