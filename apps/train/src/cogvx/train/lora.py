"""LoRA fine-tuning of the expert transformer through ``peft``, exported in the diffusers layout.

Defaults are the reference diffusers fine-tuning scripts' (CogVideoX ``finetune/``, see
docs/training.md): rank 128, ``lora_alpha`` 64, adapters on the attention projections
``to_q``, ``to_k``, ``to_v``, ``to_out.0``, peft's default init (``lora_B`` zero, so training
starts from the base model). The transformer's module names are the diffusers checkpoint names,
so the peft keys need no renaming.

Export (:func:`save_lora`) writes what diffusers' ``CogVideoXPipeline.save_lora_weights`` writes:
``pytorch_lora_weights.safetensors`` with the peft keys prefixed ``transformer.`` and the adapter's
``LoraConfig`` as JSON (keys prefixed ``transformer.``) under the safetensors metadata key
``lora_adapter_metadata``, so both ``cogvx.infer.load_lora`` and diffusers' ``load_lora_weights``
read it with the trained rank and alpha.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn

from cogvx.videoio import atomic_output

__all__ = ["LORA_WEIGHT_NAME", "LoraSettings", "add_lora", "lora_state_dict", "save_lora"]

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
_METADATA_KEY = "lora_adapter_metadata"
_PREFIX = "transformer"


@dataclass(frozen=True)
class LoraSettings:
    """Adapter hyper-parameters (peft ``LoraConfig`` fields); defaults are the reference scripts'."""

    rank: int = 128
    alpha: float = 64.0
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank < 1:
            raise ValueError(f"lora.rank={self.rank!r}: expected a positive int")
        if not self.alpha > 0:
            raise ValueError(f"lora.alpha={self.alpha!r}: expected > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout={self.dropout!r}: expected 0 <= dropout < 1")
        targets = tuple(self.target_modules)
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(
                f"lora.target_modules={self.target_modules!r}: expected non-empty module names"
            )
        object.__setattr__(self, "target_modules", targets)

    def to_peft(self) -> LoraConfig:
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            target_modules=list(self.target_modules),
            lora_dropout=self.dropout,
            init_lora_weights=True,
        )


def add_lora(transformer: nn.Module, settings: LoraSettings) -> LoraConfig:
    """Inject a ``default`` adapter and freeze everything else; returns the peft config.

    Raises ValueError when a target module name matches nothing in the transformer.
    """
    config = settings.to_peft()
    try:
        inject_adapter_in_model(config, transformer, adapter_name="default")
    except ValueError as e:
        raise ValueError(
            f"lora.target_modules={list(settings.target_modules)}: {e}; valid names are the "
            "transformer's Linear modules (e.g. to_q, to_k, to_v, to_out.0, ff.net.0.proj, ff.net.2)"
        ) from e
    for name, p in transformer.named_parameters():
        p.requires_grad_("lora_" in name)
    return config


def lora_state_dict(transformer: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights with peft's key names (``...to_q.lora_A.weight``), on the CPU."""
    if not any(isinstance(m, BaseTunerLayer) for m in transformer.modules()):
        raise ValueError("the transformer has no LoRA adapter (add_lora was not called)")
    state = get_peft_model_state_dict(transformer, adapter_name="default")
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def _config_metadata(config: LoraConfig) -> str:
    meta = {}
    for key, value in config.to_dict().items():
        if isinstance(value, set):
            value = sorted(value)
        meta[f"{_PREFIX}.{key}"] = value
    return json.dumps(meta, indent=2, sort_keys=True, default=str)


def save_lora(
    transformer: nn.Module,
    folder: str | os.PathLike[str],
    config: LoraConfig,
    *,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``<folder>/pytorch_lora_weights.safetensors`` (diffusers layout, atomic); returns it."""
    state = lora_state_dict(transformer)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    packed = {f"{_PREFIX}.{k}": v for k, v in state.items()}
    target = Path(folder) / LORA_WEIGHT_NAME
    with atomic_output(target) as tmp:
        save_file(
            packed, str(tmp), metadata={"format": "pt", _METADATA_KEY: _config_metadata(config)}
        )
    return target
