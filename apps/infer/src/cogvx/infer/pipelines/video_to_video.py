"""Video to video (diffusers ``CogVideoXVideoToVideoPipeline``).

The input video's latents are noised to the timestep ``strength`` of the way into the schedule and
denoised from there (docs/diffusion.md §Video-to-video); the frame count is the video's.
"""

from __future__ import annotations

from typing import Any, Unpack

import torch

from cogvx.expert_dit.sampling import randn
from cogvx.infer.pipelines.base import VideoPipeline
from cogvx.infer.pipelines.call import CallOptions, Generator, Request, VideoPipelineOutput
from cogvx.infer.pipelines.processing import preprocess_video
from cogvx.infer.validation import check_float, describe, invalid

__all__ = ["VideoToVideoPipeline"]


class VideoToVideoPipeline(VideoPipeline):
    """Restyle a video (diffusers ``CogVideoXVideoToVideoPipeline``)."""

    task = "v2v"
    _latents_meaning = "the already-noised start latents, transformer layout"

    @torch.no_grad()
    def __call__(
        self,
        video: Any = None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        strength: float | None = None,
        **options: Unpack[CallOptions],
    ) -> VideoPipelineOutput | tuple[Any]:
        """Restyle ``video`` (a list of frames (PIL, arrays, ``[3, H, W]`` tensors), an array
        ``[F, H, W, 3]`` or a tensor ``[F, 3, H, W]`` in [0, 1]); the frame count is the video's.
        ``strength`` in (0, 1] (None: 0.8): the fraction of the schedule that is re-run.
        ``latents``, if given, are the already-noised start latents (then ``video`` is not used),
        as in the reference. The other arguments are :meth:`TextToVideoPipeline.__call__`'s
        (without ``num_frames``)."""
        strength = check_float(
            "strength", strength, minimum=0, exclusive_minimum=True, maximum=1, optional=True
        )
        latents = options.get("latents")
        if (video is None) == (latents is None):
            raise invalid("video", describe(video), "pass exactly one of video or latents")
        inputs = {"video": video, "strength": 0.8 if strength is None else strength}
        if isinstance(latents, torch.Tensor) and latents.ndim == 5:
            inputs["latent_frames"] = latents.shape[1]
        return self._generate(inputs, prompt, negative_prompt, **options)

    def resolve_num_frames(self, inputs: dict[str, Any], num_frames: int | None) -> int | None:
        if num_frames is not None:
            raise invalid(
                "num_frames", num_frames, "video-to-video takes the input video's frame count"
            )
        video = inputs["video"]
        if video is None:  # the start latents decide
            frames = inputs.get("latent_frames")
            return None if frames is None else (frames - 1) * self.vae_info.temporal_factor + 1
        if not isinstance(video, (list, torch.Tensor)) and not hasattr(video, "ndim"):
            raise invalid(
                "video",
                describe(video),
                "expected a list of frames, an array or a tensor",
                TypeError,
            )
        if len(video) == 0:
            raise invalid("video", video, "an empty video has no frames")
        return len(video)

    def check_task_inputs(self, inputs: dict[str, Any], request: Request) -> None:
        shape = request.shape
        if shape.additional_frames:
            raise invalid(
                "video",
                f"<{shape.num_frames} frames>",
                f"video-to-video needs latent frames divisible by patch_size_t="
                f"{self.rules.patch_size_t}; {shape.num_frames} frames give {shape.latent_frames}",
            )
        steps = request.num_inference_steps
        runs = min(int(steps * inputs["strength"]), steps)
        if runs == 0:
            raise invalid(
                "strength",
                inputs["strength"],
                f"with num_inference_steps={steps} no step runs; expected >= {1 / steps:g}",
            )
        if inputs["video"] is not None:
            pixels = preprocess_video(inputs["video"], shape.height, shape.width)  # [1, 3, F, H, W]
            inputs["pixels"] = pixels.expand(request.batch, -1, -1, -1, -1)

    def timesteps(self, sampler: Any, request: Request) -> torch.Tensor:
        steps = request.num_inference_steps
        runs = min(int(steps * request.inputs["strength"]), steps)
        return sampler.timesteps[steps - runs :]

    def prepare_latents(
        self,
        request: Request,
        latents: torch.Tensor | None,
        *,
        sampler: Any,
        timesteps: torch.Tensor,
        generator: Generator,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        if latents is None:
            if "pixels" not in request.inputs:
                raise invalid("video", None, "pass a video (or the noised start latents)")
            pixels = request.inputs["pixels"].to(self.device, self.dtype)
            init = self._vae_encode(pixels, generator) * self.vae_info.scaling_factor
            noise = randn(
                request.latent_shape, generator=generator, device=self.device, dtype=dtype
            )
            latents = sampler.add_noise(init, noise, timesteps[:1].repeat(request.batch))
        return latents.to(self.device) * sampler.init_noise_sigma
