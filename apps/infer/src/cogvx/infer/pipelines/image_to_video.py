"""Image to video (diffusers ``CogVideoXImageToVideoPipeline``).

The image's VAE latents (scaled; CogVideoX 1.5 divides by the scale instead, the reference's
``invert_scale_latents``), zero-padded over the video's latent frames, are concatenated to the noisy
latents on channels at every step (docs/diffusion.md §Image-to-video).
"""

from __future__ import annotations

from typing import Any, Unpack

import torch

from cogvx.infer.pipelines.base import VideoPipeline
from cogvx.infer.pipelines.call import CallOptions, Generator, Request, VideoPipelineOutput
from cogvx.infer.pipelines.processing import preprocess_images
from cogvx.infer.validation import invalid

__all__ = ["ImageToVideoPipeline"]


class ImageToVideoPipeline(VideoPipeline):
    """Image to video: the first frame is given (diffusers ``CogVideoXImageToVideoPipeline``)."""

    task = "i2v"

    @torch.no_grad()
    def __call__(
        self,
        image: Any = None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        **options: Unpack[CallOptions],
    ) -> VideoPipelineOutput | tuple[Any]:
        """Generate videos from an image and text.

        ``image``: a PIL image (any mode; 16-bit scaled by its depth), a uint8/uint16/float
        ``[H, W, 3]`` array, a float ``[3, H, W]`` tensor in [0, 1], a ``[B, 3, H, W]`` tensor or a
        list (one image for all prompts, or one per prompt); resized to the video size (PIL:
        Lanczos). The other arguments are :meth:`TextToVideoPipeline.__call__`'s.
        """
        return self._generate({"image": image}, prompt, negative_prompt, **options)

    def check_task_inputs(self, inputs: dict[str, Any], request: Request) -> None:
        if inputs["image"] is None:
            raise invalid("image", None, "image-to-video needs an image (PIL, array or tensor)")
        shape = request.shape
        pixels = preprocess_images(inputs["image"], shape.height, shape.width)  # [B_img, 3, H, W]
        prompts = request.batch // request.num_videos_per_prompt
        if pixels.shape[0] not in (1, prompts):
            raise invalid(
                "image",
                f"<{pixels.shape[0]} images>",
                f"expected 1 image or one per prompt ({prompts})",
            )
        pixels = pixels.expand(prompts, -1, -1, -1)
        inputs["pixels"] = pixels.repeat_interleave(request.num_videos_per_prompt, dim=0)

    def prepare_conditioning(self, request: Request, generator: Generator) -> torch.Tensor:
        pixels = (
            request.inputs["pixels"].to(self.device, self.dtype).unsqueeze(2)
        )  # [B, 3, 1, H, W]
        image_latents = self._vae_encode(pixels, generator)  # [B, 1, C, h, w]
        if self.vae_info.invert_scale_latents:
            # CogVideoX 1.5 I2V was trained on latents divided by the scale (diffusers comment:
            # the team "forgot to multiply the scaling factor during training").
            image_latents = 1 / self.vae_info.scaling_factor * image_latents
        else:
            image_latents = self.vae_info.scaling_factor * image_latents
        b, _, c, h, w = image_latents.shape
        padding = image_latents.new_zeros((b, request.shape.padded_latent_frames - 1, c, h, w))
        return torch.cat([image_latents, padding], dim=1)  # [B, F', C, h, w]

    def transformer_input(
        self, latents: torch.Tensor, conditioning: torch.Tensor, do_cfg: bool
    ) -> torch.Tensor:
        image = torch.cat([conditioning] * 2) if do_cfg else conditioning
        return torch.cat([latents, image], dim=2)  # [B_cfg, F', 2C, h, w]
