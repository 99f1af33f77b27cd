"""The pipeline's model components: the VAE with diffusers' memory switches, and the loaders of a
model folder's three models (used by every residency: loaded now, or per stage)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from cogvx.infer.model_folder import ModelFolder
from cogvx.infer.staging import Component
from cogvx.infer.tasks import Task
from cogvx.infer.text_encoder import T5TextEncoder
from cogvx.infer.validation import invalid

__all__ = ["FolderLoaders", "VAEComponent", "as_component", "first_param"]


class VAEComponent(Component):
    """The VAE component, with diffusers' memory switches (``pipe.vae.enable_tiling()``, ...).

    The switches are applied to the loaded VAE now and again to every fresh load (staged runs), so
    they hold for the pipeline's lifetime like diffusers', whatever the residency.
    """

    def __init__(self, component: Component) -> None:
        super().__init__(
            component.name,
            module=component.peek(),
            loader=component.loader,
            residency=component.residency,
        )
        self._switches: dict[str, Callable[[Any], None]] = {}
        self.on_load.append(self._apply_switches)

    def _switch(self, key: str, apply: Callable[[Any], None] | None) -> None:
        if apply is None:
            self._switches.pop(key, None)
        else:
            self._switches[key] = apply
        module = self.peek()
        if module is not None:
            (apply or self._defaults[key])(module)

    _defaults: ClassVar[dict[str, Callable[[Any], None]]] = {
        "tiling": lambda m: m.disable_tiling(),
        "slicing": lambda m: m.disable_slicing(),
    }

    def _apply_switches(self, module: Any) -> None:
        for apply in self._switches.values():
            apply(module)

    @property
    def tiling(self) -> bool:
        return "tiling" in self._switches

    def enable_tiling(self, **kwargs: Any) -> None:
        """Decode (and encode) in overlapping spatial tiles (``CausalVAE3D.enable_tiling``)."""
        module = self.peek()
        if module is not None:
            module.enable_tiling(**kwargs)  # checks the arguments now
        self._switch("tiling", lambda m: m.enable_tiling(**kwargs))

    def disable_tiling(self) -> None:
        self._switch("tiling", None)

    def enable_slicing(self) -> None:
        """Decode one batch item at a time (``CausalVAE3D.enable_slicing``)."""
        self._switch("slicing", lambda m: m.enable_slicing())

    def disable_slicing(self) -> None:
        self._switch("slicing", None)


def as_component(name: str, value: Any) -> Component:
    if isinstance(value, Component):
        return value
    if value is None:
        raise invalid(name, None, "a model or a Component is required")
    return Component(name, module=value)


def first_param(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters())


class FolderLoaders:
    """Loads the three models of a folder in the pipeline's dtype (changed by ``pipe.to``)."""

    def __init__(self, folder: ModelFolder, task: Task, dtype: torch.dtype, device: torch.device):
        self.folder, self.task, self.dtype, self.device = folder, task, dtype, device

    def text_encoder(self) -> T5TextEncoder:
        return T5TextEncoder.from_pretrained(
            self.folder.component("tokenizer"),
            self.folder.component("text_encoder"),
            dtype=self.dtype,
            device=self.device,
        )

    def transformer(self) -> torch.nn.Module:
        from cogvx.expert_dit.transformer import ExpertDiT

        path = self.folder.component("transformer")
        return ExpertDiT.from_pretrained(path, torch_dtype=self.dtype, device=self.device).eval()

    def vae(self) -> torch.nn.Module:
        from cogvx.vae3d import CausalVAE3D

        return CausalVAE3D.from_pretrained(
            self.folder.component("vae"),
            torch_dtype=self.dtype,
            device=self.device,
            parts=self.task.vae_parts,
        ).eval()
