"""The three CogVideoX tasks, listed once.

The pipelines (:mod:`cogvx.infer.pipelines`), the model folder reader (:mod:`cogvx.infer.model_folder`)
and the ``cogvx generate`` command all read :data:`TASKS`; nothing else lists the tasks. Pure Python
(no torch), so the command line can offer the choices without importing the models.

What distinguishes the tasks (docs/pipelines.md, docs/diffusion.md "I2V conditioning", "V2V"):

- ``t2v``: noise -> video; the transformer sees the noisy latents only;
- ``i2v``: the image's VAE latents, zero-padded over the latent frames, are concatenated to the noisy
  latents on channels, so the transformer has twice the VAE's latent channels;
- ``v2v``: the input video's latents are noised part of the way into the schedule and denoised
  from there; the transformer is a text-to-video one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["TASKS", "Task", "get_task", "task_for_class_name", "tasks_for_channels"]


@dataclass(frozen=True)
class Task:
    """One task: its short name, the reference pipeline class that runs it, and what it needs."""

    name: str
    title: str
    reference_class: str  # the diffusers pipeline class name in model_index.json
    conditioning: Literal["image", "video"] | None
    #: transformer ``in_channels`` = this x the VAE's ``latent_channels``
    channel_multiplier: int
    #: the VAE parts the pipeline loads (text-to-video only decodes: ~40% less VAE memory)
    vae_parts: tuple[str, ...]


TASKS: Mapping[str, Task] = MappingProxyType(
    {
        "t2v": Task("t2v", "text-to-video", "CogVideoXPipeline", None, 1, ("decoder",)),
        "i2v": Task(
            "i2v", "image-to-video", "CogVideoXImageToVideoPipeline", "image", 2,
            ("encoder", "decoder"),
        ),
        "v2v": Task(
            "v2v", "video-to-video", "CogVideoXVideoToVideoPipeline", "video", 1,
            ("encoder", "decoder"),
        ),
    }
)  # fmt: skip


def get_task(name: str) -> Task:
    """The task called ``name``; a ValueError names the valid ones."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"task={name!r}: expected one of {', '.join(TASKS)}")
    return TASKS[name]


def task_for_class_name(class_name: str) -> Task | None:
    """The task of a reference pipeline class name (``model_index.json`` ``_class_name``)."""
    for task in TASKS.values():
        if task.reference_class == class_name:
            return task
    return None


def tasks_for_channels(in_channels: int, latent_channels: int) -> list[Task]:
    """The tasks a transformer with ``in_channels`` can run on a VAE with ``latent_channels``."""
    return [t for t in TASKS.values() if t.channel_multiplier * latent_channels == in_channels]
