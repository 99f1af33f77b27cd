"""LoRA weights at inference, in the diffusers LoRA layout, through peft.

A diffusers CogVideoX LoRA is ``pytorch_lora_weights.safetensors`` holding peft keys prefixed with the
component, e.g. ``transformer.transformer_blocks.0.attn1.to_q.lora_A.weight``, and (diffusers >=
0.33) the adapter's ``LoraConfig`` as JSON under the safetensors metadata key
``lora_adapter_metadata`` (keys prefixed ``transformer.``). Without that metadata the config is
inferred as diffusers does: rank from each ``lora_B`` weight, the most common rank as ``r`` with the
others in ``rank_pattern``, and ``lora_alpha`` equal to the rank (scale 1).

The transformer's module names are the diffusers checkpoint names, so the peft keys apply unchanged.
"""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open

from cogvx.modelio import read_state_dict

if TYPE_CHECKING:  # peft is imported where LoRA is used: it costs seconds at start-up
    from peft import LoraConfig
    from peft.tuners.tuners_utils import BaseTunerLayer

__all__ = [
    "LORA_WEIGHT_NAME",
    "LoraLoaderMixin",
    "fuse_lora",
    "load_lora",
    "read_lora_file",
    "set_lora_scale",
    "unfuse_lora",
    "unload_lora",
]

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
_METADATA_KEY = "lora_adapter_metadata"
_PREFIX = "transformer."


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / LORA_WEIGHT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"LoRA weights not found: {p}")
    if p.suffix != ".safetensors":
        raise ValueError(f"LoRA file {p} must be a .safetensors file")
    return p


def read_lora_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], LoraConfig]:
    """The transformer's peft state dict (prefix stripped) and its ``LoraConfig``."""
    from peft import LoraConfig

    file = _resolve(path)
    state = read_state_dict(file)  # a truncated or corrupt file is named with its path
    with safe_open(file, framework="pt") as f:
        raw_meta = (f.metadata() or {}).get(_METADATA_KEY)
    bad = [k for k in state if "lora" not in k]
    if bad:
        raise ValueError(f"{file} is not a LoRA file: key(s) without 'lora': {bad[:3]}")
    if any(k.startswith(_PREFIX) for k in state):
        others = sorted({k.split(".")[0] for k in state if not k.startswith(_PREFIX)})
        if others:
            raise ValueError(
                f"{file} has LoRA weights for {others}; only the transformer is supported"
            )
        state = {k[len(_PREFIX) :]: v for k, v in state.items()}
    if not any(".lora_A." in k for k in state):
        raise ValueError(
            f"{file} has no peft-format keys (``...lora_A.weight`` / ``...lora_B.weight``)"
        )
    if raw_meta:
        meta = json.loads(raw_meta)
        if any(k.startswith(_PREFIX) for k in meta):
            meta = {k[len(_PREFIX) :]: v for k, v in meta.items() if k.startswith(_PREFIX)}
        config = LoraConfig(**meta)
    else:
        config = LoraConfig(**_infer_config(state))
    return state, config


def _infer_config(state: dict[str, torch.Tensor]) -> dict:
    """diffusers' inference of a LoraConfig from the weights alone (alpha = rank, scale 1)."""
    ranks = {k: v.shape[1] for k, v in state.items() if ".lora_B." in k and v.ndim == 2}
    r = collections.Counter(ranks.values()).most_common()[0][0]
    rank_pattern = {k.split(".lora_B.")[0]: v for k, v in ranks.items() if v != r}
    return {
        "r": r,
        "lora_alpha": r,
        "rank_pattern": rank_pattern,
        "alpha_pattern": dict(rank_pattern),
        "target_modules": sorted({k.split(".lora")[0] for k in state}),
        "use_dora": any("lora_magnitude_vector" in k for k in state),
        "lora_bias": any(".lora_B." in k and k.endswith(".bias") for k in state),
    }


def _lora_layers(model: torch.nn.Module) -> list[BaseTunerLayer]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def load_lora(
    transformer: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    adapter_name: str = "default",
    scale: float = 1.0,
) -> str:
    """Add the LoRA adapter in ``path`` (a file or a folder with ``pytorch_lora_weights.safetensors``)
    to ``transformer`` and set its scale. Returns the adapter name."""
    state, config = read_lora_file(path)
    if any(adapter_name in getattr(m, "lora_A", {}) for m in _lora_layers(transformer)):
        raise ValueError(f"adapter {adapter_name!r} is already loaded; pick another adapter_name")
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    param = next(transformer.parameters())
    inject_adapter_in_model(config, transformer, adapter_name=adapter_name)
    result = set_peft_model_state_dict(transformer, state, adapter_name=adapter_name)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if unexpected:
        raise ValueError(f"LoRA keys that match no module of the transformer: {unexpected[:5]}")
    transformer.to(device=param.device, dtype=param.dtype)
    set_lora_scale(transformer, scale, adapter_name=adapter_name)
    return adapter_name


def set_lora_scale(
    transformer: torch.nn.Module, scale: float, *, adapter_name: str | None = None
) -> None:
    """Weight of the adapter(s) (``alpha / r`` times ``scale``); fused weights are not changed, so
    unfuse first."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in _lora_layers(transformer) if isinstance(m, LoraLayer)]
    if not layers:
        raise ValueError("the transformer has no LoRA adapter loaded")
    for layer in layers:
        if layer.merged:
            raise ValueError("LoRA weights are fused: unfuse before changing the scale")
        for name in list(layer.lora_A):
            if adapter_name is None or name == adapter_name:
                layer.set_scale(name, scale)


def fuse_lora(transformer: torch.nn.Module, *, adapter_names: list[str] | None = None) -> None:
    """Merge the adapters (at their current scale) into the base weights: no LoRA cost per step."""
    for layer in _lora_layers(transformer):
        layer.merge(adapter_names=adapter_names)


def unfuse_lora(transformer: torch.nn.Module) -> None:
    """Undo :func:`fuse_lora` (subtracts the merged deltas)."""
    for layer in _lora_layers(transformer):
        if layer.merged:
            layer.unmerge()


def unload_lora(transformer: torch.nn.Module) -> None:
    """Remove every LoRA layer, restoring the plain base modules (unfusing first)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(transformer.named_modules()):
        if isinstance(module, BaseTunerLayer):
            if module.merged:
                module.unmerge()
            parent_name, _, child = name.rpartition(".")
            parent = transformer.get_submodule(parent_name) if parent_name else transformer
            setattr(parent, child, module.get_base_layer())


# ---- on a pipeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoraSpec:
    path: Path
    adapter_name: str
    scale: float


class LoraLoaderMixin:
    """The pipelines' LoRA methods (diffusers ``CogVideoXLoraLoaderMixin`` names).

    Adapters are remembered as (file, name, scale) and re-applied whenever a staged transformer is
    loaded again, so LoRA works with every residency. Needs ``self.transformer``, a
    :class:`cogvx.infer.staging.Component`; call :meth:`_init_lora` from ``__init__``.
    """

    def _init_lora(self) -> None:
        self.loras: list[_LoraSpec] = []
        self.lora_fused = False
        self.transformer.on_load.append(self._apply_loras)

    def load_lora_weights(
        self, path: str | os.PathLike[str], *, adapter_name: str = "default", scale: float = 1.0
    ) -> None:
        """Add a diffusers-layout LoRA (``pytorch_lora_weights.safetensors``) to the transformer."""
        if self.lora_fused:
            raise ValueError("unfuse the loaded LoRA weights before adding another adapter")
        spec = _LoraSpec(_resolve(path), adapter_name, float(scale))
        module = self.transformer.peek()
        if module is not None:
            load_lora(module, spec.path, adapter_name=spec.adapter_name, scale=spec.scale)
        self.loras.append(spec)

    def set_lora_scale(self, scale: float, *, adapter_name: str | None = None) -> None:
        """Change the LoRA scale (of one adapter, or all)."""
        if self.lora_fused:
            raise ValueError("LoRA weights are fused: unfuse before changing the scale")
        self.loras = [
            _LoraSpec(s.path, s.adapter_name, float(scale))
            if adapter_name in (None, s.adapter_name)
            else s
            for s in self.loras
        ]
        module = self.transformer.peek()
        if module is not None:
            set_lora_scale(module, scale, adapter_name=adapter_name)

    def fuse_lora(self) -> None:
        """Merge the LoRA deltas (at their scales) into the transformer weights."""
        if not self.loras:
            raise ValueError("no LoRA weights are loaded")
        module = self.transformer.peek()
        if module is not None:
            fuse_lora(module)
        self.lora_fused = True

    def unfuse_lora(self) -> None:
        """Undo :meth:`fuse_lora`."""
        module = self.transformer.peek()
        if module is not None:
            unfuse_lora(module)
        self.lora_fused = False

    def unload_lora_weights(self) -> None:
        """Remove all LoRA adapters."""
        module = self.transformer.peek()
        if module is not None:
            unload_lora(module)
        self.loras, self.lora_fused = [], False

    def _apply_loras(self, module: torch.nn.Module) -> None:
        for spec in self.loras:
            load_lora(module, spec.path, adapter_name=spec.adapter_name, scale=spec.scale)
        if self.lora_fused:
            fuse_lora(module)
