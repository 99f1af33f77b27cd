"""Exponential moving average of the trainable weights (docs/training.md).

The SAT optimizer (``FusedEmaAdam``) keeps an EMA "shadow" copy with decay 0.9999 warmed up as
``min(decay, (1 + n) / (10 + n))`` after ``n`` updates; this is the same rule, kept outside the
optimizer so any optimizer works. Shadows are fp32 on the weights' device, saved in the
training checkpoint (:meth:`state_dict`) and swapped into the model for validation or export
(:meth:`applied`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """EMA shadows of ``module``'s parameters that require grad (named, so they survive resume).

    Args:
        module: the model; only parameters with ``requires_grad`` are averaged (LoRA: the adapter).
        decay: the final decay (SAT 0.9999).
        warmup: use ``min(decay, (1 + n) / (10 + n))`` (SAT) instead of a constant decay.
    """

    def __init__(self, module: nn.Module, decay: float = 0.9999, *, warmup: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay={decay!r}: expected 0 < decay < 1")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().float().clone()
            for name, p in module.named_parameters()
            if p.requires_grad
        }
        if not self.shadow:
            raise ValueError("EMA: the module has no trainable parameter to average")

    def current_decay(self) -> float:
        """Decay used by the next :meth:`update`."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    def _params(self, module: nn.Module) -> Iterable[tuple[str, nn.Parameter]]:
        params = dict(module.named_parameters())
        missing = sorted(set(self.shadow) - set(params))
        if missing:
            raise ValueError(f"EMA: the module lacks averaged parameter(s) {missing[:5]}")
        return ((name, params[name]) for name in self.shadow)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """``shadow <- d * shadow + (1 - d) * param`` for every averaged parameter."""
        d = self.current_decay()
        for name, p in self._params(module):
            s = self.shadow[name]
            if s.device != p.device:
                s = self.shadow[name] = s.to(p.device)
            s.lerp_(p.detach().float(), 1.0 - d)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the shadows into the module's parameters (in their dtype)."""
        for name, p in self._params(module):
            p.copy_(self.shadow[name].to(device=p.device, dtype=p.dtype))

    @contextlib.contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """Run a block with the averaged weights in ``module``; the trained ones come back after."""
        backup = {name: p.detach().clone() for name, p in self._params(module)}
        self.copy_to(module)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self._params(module):
                    p.copy_(backup[name])

    def state_dict(self) -> dict[str, Any]:
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": {k: v.detach().cpu().clone() for k, v in self.shadow.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        shadow = state["shadow"]
        if set(shadow) != set(self.shadow):
            extra = sorted(set(shadow) ^ set(self.shadow))
            raise ValueError(
                f"EMA state does not match the model's trainable parameters: {extra[:5]}"
            )
        for k, v in shadow.items():
            if tuple(v.shape) != tuple(self.shadow[k].shape):
                raise ValueError(
                    f"EMA state {k}: shape {tuple(v.shape)} != {tuple(self.shadow[k].shape)}"
                )
            self.shadow[k] = v.to(device=self.shadow[k].device, dtype=torch.float32).clone()
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
