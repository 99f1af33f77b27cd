"""Text to video (diffusers ``CogVideoXPipeline``): noise -> video, no task hooks."""

from __future__ import annotations

from typing import Any, Unpack

import torch

from cogvx.infer.pipelines.base import VideoPipeline
from cogvx.infer.pipelines.call import CallOptions, VideoPipelineOutput

__all__ = ["TextToVideoPipeline"]


class TextToVideoPipeline(VideoPipeline):
    """Text to video (diffusers ``CogVideoXPipeline``): the base template as is."""

    task = "t2v"

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        **options: Unpack[CallOptions],
    ) -> VideoPipelineOutput | tuple[Any]:
        """Generate videos from text.

        Args (the reference pipeline's names; all but the first two are keyword-only):
            prompt: a prompt or a list of prompts (batch); or pass ``prompt_embeds``.
            negative_prompt: text for the unconditional branch (default "").
            num_frames, height, width: None = the family default (1.0: the config's 480x720x49;
                1.5: 768x1360x81); checked against the model (:class:`ShapeRules`): an invalid
                value is an error naming the nearest valid one, unless ``snap=True``.
            num_inference_steps (50), guidance_scale (6.0; guidance is off at <= 1); None = default.
            use_dynamic_cfg: the reference's dynamic CFG; ``guidance_schedule=
                "dynamic_step_index"`` selects the smooth variant (docs/diffusion.md §Dynamic CFG).
            num_videos_per_prompt: videos per prompt (each prompt's embedding repeated).
            generator: a torch.Generator, or one per video; random numbers are drawn in the
                reference's order.
            latents: initial noise ``[B, F', C, h, w]``, unscaled N(0, I) (``F'`` includes the 1.5
                padding frame).
            prompt_embeds, negative_prompt_embeds: ``[B, L, text_embed_dim]`` instead of text.
            output_type: "pt" (default: float ``[B, F, 3, H, W]`` in [0, 1]), "np", "pil", "latent".
            return_dict: False returns ``(frames,)``.
            max_sequence_length: T5 tokens (None: the transformer's ``max_text_seq_length``).
            callback_on_step_end, callback_on_step_end_tensor_inputs: diffusers' step callback
                ``f(pipe, step, timestep, callback_kwargs) -> dict``; returned tensors replace the
                loop's (names among ``latents``, ``prompt_embeds``, ``negative_prompt_embeds``).
            unconditional: "t5" (T5 of the negative prompt, the reference) or "zeros" (SAT).
            snap, strict_frames: see :meth:`ShapeRules.check`.
            progress: show progress bars (None: per :meth:`set_progress_bar_config`).

        Returns a :class:`VideoPipelineOutput` (``.frames``, ``.report``, ``.shape``).
        """
        return self._generate({}, prompt, negative_prompt, **options)
