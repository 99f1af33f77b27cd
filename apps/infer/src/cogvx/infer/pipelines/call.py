"""What a pipeline call takes and returns: the shared keywords, the checked request, the output.

Names follow diffusers (``CogVideoXPipelineOutput``, ``_callback_tensor_inputs``) so that scripts
written for diffusers carry over (docs/pipelines.md §API).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import torch

from cogvx.expert_dit.sampling import GuidanceSchedule
from cogvx.infer.shapes import VideoShape
from cogvx.infer.staging import StageReport

__all__ = [
    "CALLBACK_TENSOR_INPUTS",
    "CallOptions",
    "Generator",
    "OutputType",
    "Request",
    "Unconditional",
    "VideoPipelineOutput",
]

OutputType = Literal["pt", "np", "pil", "latent"]
Unconditional = Literal["t5", "zeros"]
Generator = torch.Generator | Sequence[torch.Generator] | None

#: What ``callback_on_step_end`` may read and replace (diffusers ``_callback_tensor_inputs``).
CALLBACK_TENSOR_INPUTS = ("latents", "prompt_embeds", "negative_prompt_embeds")


@dataclass
class VideoPipelineOutput:
    """What a pipeline call returns (diffusers ``CogVideoXPipelineOutput`` plus two fields).

    ``frames``: the videos in the requested ``output_type``; ``report``: time and memory per stage;
    ``shape``: the checked request (frames, size, latent frames). ``out[0]`` is ``frames``.
    """

    frames: Any
    report: StageReport = field(default_factory=StageReport)
    shape: VideoShape | None = None

    def __getitem__(self, index: int) -> Any:
        return self.to_tuple()[index]

    def to_tuple(self) -> tuple[Any]:
        return (self.frames,)


class CallOptions(TypedDict, total=False):
    """The keywords every task's ``__call__`` accepts (see :meth:`VideoPipeline._generate`)."""

    height: int | None
    width: int | None
    num_frames: int | None
    num_inference_steps: int | None
    guidance_scale: float | None
    use_dynamic_cfg: bool
    num_videos_per_prompt: int | None
    generator: Generator
    latents: torch.Tensor | None
    prompt_embeds: torch.Tensor | None
    negative_prompt_embeds: torch.Tensor | None
    output_type: OutputType
    return_dict: bool
    max_sequence_length: int | None
    callback_on_step_end: Callable[..., dict[str, Any]] | None
    callback_on_step_end_tensor_inputs: list[str] | None
    guidance_schedule: GuidanceSchedule | str | None
    unconditional: Unconditional
    snap: bool
    strict_frames: bool
    progress: bool | None
    cache: Any  # None | StepCaching | TeaCache | FirstBlockCache | PyramidBroadcast
    guidance_plan: Any  # None | GuidancePlan (cogvx.expert_dit.caching)


@dataclass
class Request:
    """A checked call: what the hooks need from it."""

    prompts: list[str] | None
    batch: int  # prompts x num_videos_per_prompt
    num_videos_per_prompt: int
    shape: VideoShape
    num_inference_steps: int
    do_cfg: bool
    latent_shape: tuple[int, int, int, int, int]  # [B, F', C, h, w] of the sampler's latents
    inputs: dict[str, Any]  # the task's own inputs, preprocessed by check_task_inputs
