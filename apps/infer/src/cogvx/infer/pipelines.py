"""Text-, image- and video-to-video CogVideoX pipelines.

They reproduce diffusers' ``CogVideoXPipeline``, ``CogVideoXImageToVideoPipeline`` and
``CogVideoXVideoToVideoPipeline`` (0.42.1) step for step, so the same weights, seed and arguments give
the same frames (docs/pipelines.md §API; checked in ``tests/test_parity.py``):

1. prompts -> T5 (padded to ``max_sequence_length``, no mask); with guidance the batch is
   ``[uncond; cond]`` and the unconditional text is T5(negative_prompt or "") (or zeros, as SAT);
2. initial latents ``[B, F', C, h, w]``: N(0, I) from the generator unless given (I2V: after the
   image latents are sampled; V2V: the encoded video noised to the first timestep);
3. the sampler loop (DDIM or DPM-Solver++ from ``scheduler_config.json``), CFG with the constant or
   dynamic scale; for CogVideoX 1.5 one leading latent frame pads ``F'`` to a multiple of
   ``patch_size_t`` and is dropped before decoding;
4. VAE decode of ``latents / scaling_factor`` -> frames ``(x / 2 + 0.5).clamp(0, 1)``.

Random numbers are drawn in the reference's order (VAE posterior samples, then the initial noise,
then the DPM sampler's per-step noise, all from the one ``generator``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from cogvx.expert_dit.config import DiTConfig
from cogvx.expert_dit.sampling import (
    GuidanceSchedule,
    apply_guidance,
    guidance_scale_at,
    make_sampler,
    randn,
)
from cogvx.expert_dit.schedule import SchedulerConfig
from cogvx.infer.lora import fuse_lora, load_lora, set_lora_scale, unfuse_lora, unload_lora
from cogvx.infer.model_folder import ModelFolder
from cogvx.infer.precision import check_finite, resolve_dtype
from cogvx.infer.shapes import ShapeRules, VideoShape
from cogvx.infer.staging import Component, Residency, StageReport
from cogvx.infer.text_encoder import T5TextEncoder

__all__ = [
    "GenerationResult",
    "ImageToVideoPipeline",
    "TextToVideoPipeline",
    "VAEInfo",
    "VideoToVideoPipeline",
    "build_pipeline",
    "folder_shape_rules",
]

logger = logging.getLogger(__name__)

OutputType = Literal["pt", "np", "pil", "latent"]
Unconditional = Literal["t5", "zeros"]
Generator = torch.Generator | Sequence[torch.Generator] | None


@dataclass(frozen=True)
class VAEInfo:
    """The VAE config values a pipeline needs before (or without) loading the VAE weights."""

    spatial_factor: int
    temporal_factor: int
    scaling_factor: float
    invert_scale_latents: bool
    latent_channels: int

    @classmethod
    def from_config(cls, config: Any) -> VAEInfo:
        """From a VAE config object or the ``vae/config.json`` dict."""

        def get(key: str, default: Any = None) -> Any:
            if isinstance(config, dict):
                return config.get(key, default)
            return getattr(config, key, default)

        return cls(
            spatial_factor=2 ** (len(get("block_out_channels")) - 1),
            temporal_factor=int(get("temporal_compression_ratio", 4)),
            scaling_factor=float(get("scaling_factor")),
            invert_scale_latents=bool(get("invert_scale_latents", False)),
            latent_channels=int(get("latent_channels", 16)),
        )


@dataclass
class GenerationResult:
    """Frames (in the requested ``output_type``), the stage report and the checked shape."""

    frames: Any
    report: StageReport
    shape: VideoShape


def _first_param(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters())


class _VideoPipeline:
    """What the three pipelines share: components, prompt encoding, the sampler loop, decoding."""

    task = "t2v"

    def __init__(
        self,
        *,
        text_encoder: T5TextEncoder | Component,
        transformer: torch.nn.Module | Component,
        vae: torch.nn.Module | Component,
        scheduler: SchedulerConfig,
        transformer_config: DiTConfig | None = None,
        vae_info: VAEInfo | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> None:
        self.text_encoder = _as_component("text_encoder", text_encoder)
        self.transformer = _as_component("transformer", transformer)
        self.vae = _as_component("vae", vae)
        if not isinstance(scheduler, SchedulerConfig):
            raise TypeError(f"scheduler must be a SchedulerConfig, got {type(scheduler).__name__}")
        self.scheduler = scheduler
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = resolve_dtype(dtype, self.device)
        if transformer_config is None:
            transformer_config = self.transformer.acquire().config
        if vae_info is None:
            vae_info = VAEInfo.from_config(self.vae.acquire().config)
        self.transformer_config = transformer_config
        self.vae_info = vae_info
        self.rules = ShapeRules.for_model(
            transformer_config, spatial_factor=vae_info.spatial_factor
        )
        # LoRA adapters as (path, adapter name, scale); re-applied when a staged transformer reloads.
        self.loras: list[_LoraSpec] = []
        self.lora_fused = False
        self.transformer.on_load.append(self._apply_loras)
        self.vae_options: dict[str, Any] = {}

    def set_vae_runtime(self, **options: Any) -> None:
        """VAE memory switches for later calls (``cogvx.vae3d.RuntimeOptions`` fields):
        ``tiling`` (True or a ``Tiling``), ``encode_frames``, ``decode_latent_frames``,
        ``batch_chunk``. Defaults are the reference's (no tiling, 8-frame encode chunks, 2-latent-frame
        decode chunks)."""
        allowed = {"tiling", "encode_frames", "decode_latent_frames", "batch_chunk"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"unknown VAE runtime option(s) {unknown}; valid: {sorted(allowed)}")
        self.vae_options.update(options)

    # ---- construction ----------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        sampler: Literal["ddim", "dpm"] | SchedulerConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        residency: Residency | str = Residency.RESIDENT,
    ):
        """Open a diffusers-layout model folder (``model_index.json`` + component subfolders).

        The sampler comes from ``scheduler/scheduler_config.json``; ``sampler="ddim"``/``"dpm"``
        switches the algorithm and keeps the schedule, a :class:`SchedulerConfig` replaces it.
        ``dtype`` (default: bf16 on accelerators that have it, fp32 on the CPU) is applied to all
        weights at load time. ``residency="staged"`` loads each model only for its stage.
        """
        from cogvx.expert_dit.transformer import ExpertDiT
        from cogvx.vae3d import CausalVAE3D

        folder = ModelFolder.open(path)
        if folder.task is not None and folder.task != cls.task:
            logger.info("folder %s is a %s model; opening it as %s", path, folder.task, cls.task)
        device_ = torch.device(device) if device is not None else torch.device("cpu")
        dtype_ = resolve_dtype(dtype, device_)
        residency = Residency(residency)
        load_device = device_ if residency is Residency.RESIDENT else torch.device("cpu")

        scheduler = SchedulerConfig.from_pretrained(folder.component("scheduler"))
        if isinstance(sampler, SchedulerConfig):
            scheduler = sampler
        elif sampler is not None:
            scheduler = scheduler.replace(sampler=sampler)
        transformer_config = DiTConfig.from_json_file(
            folder.component("transformer") / "config.json"
        )
        vae_config_path = folder.component("vae") / "config.json"
        if not vae_config_path.is_file():
            raise FileNotFoundError(f"VAE config not found: {vae_config_path}")
        vae_info = VAEInfo.from_config(json.loads(vae_config_path.read_text()))

        def load_text() -> T5TextEncoder:
            return T5TextEncoder.from_pretrained(
                folder.component("tokenizer"),
                folder.component("text_encoder"),
                dtype=dtype_,
                device=load_device,
            )

        def load_transformer() -> torch.nn.Module:
            model = ExpertDiT.from_pretrained(
                folder.component("transformer"), torch_dtype=dtype_, device=load_device
            )
            return model.eval()

        # Text-to-video only decodes: its VAE loads without the encoder (about 40% less memory).
        vae_parts = ("decoder",) if cls.task == "t2v" else ("encoder", "decoder")

        def load_vae() -> torch.nn.Module:
            model = CausalVAE3D.from_pretrained(
                folder.component("vae"), torch_dtype=dtype_, device=load_device, parts=vae_parts
            )
            return model.eval()

        def component(name: str, loader: Callable[[], Any]) -> Component:
            module = None if residency is Residency.STAGED else loader()
            return Component(name, module=module, loader=loader, residency=residency)

        return cls(
            text_encoder=component("text_encoder", load_text),
            transformer=component("transformer", load_transformer),
            vae=component("vae", load_vae),
            scheduler=scheduler,
            transformer_config=transformer_config,
            vae_info=vae_info,
            device=device_,
            dtype=dtype_,
        )

    # ---- LoRA ------------------------------------------------------------------------------------

    def load_lora_weights(
        self, path: str | os.PathLike[str], *, adapter_name: str = "default", scale: float = 1.0
    ) -> None:
        """Add a diffusers-layout LoRA (``pytorch_lora_weights.safetensors``) to the transformer."""
        if self.lora_fused:
            raise ValueError("unfuse the loaded LoRA weights before adding another adapter")
        spec = _LoraSpec(Path(path), adapter_name, float(scale))
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

    # ---- defaults --------------------------------------------------------------------------------

    @property
    def fps(self) -> int:
        """Playback rate of the family: 8 for CogVideoX 1.0, 16 for 1.5."""
        return self.rules.defaults().fps

    def default_size(self) -> tuple[int, int, int]:
        """(num_frames, height, width) used when the call leaves them out."""
        d = self.rules.defaults()
        return d.num_frames, d.height, d.width

    # ---- stages ----------------------------------------------------------------------------------

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        *,
        do_classifier_free_guidance: bool = True,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        max_sequence_length: int | None = None,
        unconditional: Unconditional = "t5",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(prompt_embeds, negative_prompt_embeds)`` in the pipeline dtype on its device.

        The unconditional branch is T5(``negative_prompt`` or "") like the reference pipelines, or
        all zeros with ``unconditional="zeros"`` (the original SAT sampling, docs/diffusion.md §Unconditional branch).
        """
        if unconditional not in ("t5", "zeros"):
            raise ValueError(f"unconditional={unconditional!r} is not one of 't5', 'zeros'")
        length = max_sequence_length or self.transformer_config.max_text_seq_length
        prompts = [prompt] if isinstance(prompt, str) else prompt
        need_t5 = prompt_embeds is None or (
            do_classifier_free_guidance and negative_prompt_embeds is None and unconditional == "t5"
        )
        encoder = self.text_encoder.acquire(self.device) if need_t5 else None
        try:
            if prompt_embeds is None:
                prompt_embeds = encoder.encode(
                    prompts, max_sequence_length=length, device=self.device, dtype=self.dtype
                )
            batch = prompt_embeds.shape[0]
            if do_classifier_free_guidance and negative_prompt_embeds is None:
                if unconditional == "zeros":
                    if negative_prompt is not None:
                        raise ValueError(
                            "negative_prompt cannot be used with unconditional='zeros'"
                        )
                    negative_prompt_embeds = torch.zeros_like(prompt_embeds)
                else:
                    negatives = negative_prompt or ""
                    if isinstance(negatives, str):
                        negatives = [negatives] * batch
                    if prompts is not None and type(prompts) is not type(negatives):
                        raise TypeError(
                            f"negative_prompt must be a str or a list like prompt, got "
                            f"{type(negative_prompt).__name__}"
                        )
                    if len(negatives) != batch:
                        raise ValueError(
                            f"negative_prompt has {len(negatives)} entries but prompt has {batch}"
                        )
                    negative_prompt_embeds = encoder.encode(
                        negatives, max_sequence_length=length, device=self.device, dtype=self.dtype
                    )
        finally:
            if encoder is not None:
                self.text_encoder.release()
        return prompt_embeds, negative_prompt_embeds

    def _text_stage(
        self,
        report: StageReport,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None,
        do_cfg: bool,
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        max_sequence_length: int | None,
        unconditional: Unconditional,
    ) -> torch.Tensor:
        """The timed text-encoding stage of every pipeline: the prompt embeddings, with the
        unconditional ones in front (``[uncond; cond]``, the reference's CFG batch order)."""
        with report.stage("text encoding", self.device):
            embeds, negative = self.encode_prompt(
                prompt,
                negative_prompt,
                do_classifier_free_guidance=do_cfg,
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_prompt_embeds,
                max_sequence_length=max_sequence_length,
                unconditional=unconditional,
            )
            return torch.cat([negative, embeds], dim=0) if do_cfg else embeds

    def _vae_runtime(self, vae: torch.nn.Module):
        runtime = getattr(vae, "runtime", None)
        if runtime is None or not self.vae_options:
            return contextlib.nullcontext()
        return runtime(**self.vae_options)

    def _vae_encode(self, pixels: torch.Tensor, generator: Generator) -> torch.Tensor:
        """Sample VAE latents of ``pixels [B, 3, F, H, W]`` one item at a time, as the reference
        does (item ``i`` uses ``generator[i]`` for a list); returns ``[B, F', C, h, w]``, unscaled."""
        vae = self.vae.acquire(self.device)
        try:
            vae_dtype = _first_param(vae).dtype
            out = []
            with self._vae_runtime(vae):
                for i in range(pixels.shape[0]):
                    g = generator[i] if isinstance(generator, Sequence) else generator
                    posterior = vae.encode(pixels[i : i + 1].to(self.device, vae_dtype))
                    out.append(posterior.sample(generator=g))
        finally:
            self.vae.release()
        return torch.cat(out, dim=0).to(self.dtype).permute(0, 2, 1, 3, 4)  # [B, F', C, h, w]

    def decode_latents(self, latents: torch.Tensor, *, progress: bool = True) -> torch.Tensor:
        """Transformer-layout latents ``[B, F', C, h, w]`` (scaled) -> frames ``[B, F, 3, H, W]`` in
        [0, 1], float32. One batch item at a time (the VAE normalises per item, so this equals the
        reference's batched decode), with a progress bar over the VAE's chunks and tiles."""
        vae = self.vae.acquire(self.device)
        batch = latents.shape[0]
        bar = tqdm(desc="decoding", unit="chunk", disable=not progress)
        try:
            vae_dtype = _first_param(vae).dtype
            frames = []
            for i in range(batch):

                def report(done: int, total: int, i: int = i) -> None:
                    bar.total = total * batch
                    bar.n = i * total + done
                    bar.refresh()

                z = latents[i : i + 1].permute(0, 2, 1, 3, 4)  # [1, C, F', h, w]
                z = (1 / self.vae_info.scaling_factor * z).to(vae_dtype)
                with self._vae_runtime(vae):
                    video = vae.decode(z, progress=report)  # [1, 3, F, H, W] in [-1, 1]
                check_finite(video, where="the decoded video", dtype=vae_dtype)
                frames.append((video / 2 + 0.5).clamp(0, 1).float().permute(0, 2, 1, 3, 4))
        finally:
            bar.close()
            self.vae.release()
        return torch.cat(frames, dim=0)

    def _denoise(
        self,
        latents: torch.Tensor,
        prompt_embeds: torch.Tensor,
        *,
        sampler,
        timesteps: torch.Tensor,
        guidance_scale: float,
        do_classifier_free_guidance: bool,
        guidance_schedule: GuidanceSchedule,
        num_steps_for_guidance: int,
        generator: Generator,
        image_latents: torch.Tensor | None = None,
        progress: bool = True,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        transformer = self.transformer.acquire(self.device)
        try:
            ofs = None
            if self.transformer_config.ofs_embed_dim:
                ofs = latents.new_full((1,), 2.0)  # the reference's constant (docs/diffusion.md §Image-to-video)
            old_x0 = None
            for i, t in enumerate(tqdm(timesteps, desc="denoising", disable=not progress)):
                model_input = torch.cat([latents] * 2) if do_classifier_free_guidance else latents
                if image_latents is not None:
                    image_input = (
                        torch.cat([image_latents] * 2)
                        if do_classifier_free_guidance
                        else image_latents
                    )
                    model_input = torch.cat([model_input, image_input], dim=2)
                timestep = t.expand(model_input.shape[0])
                with torch.no_grad():
                    v = transformer(model_input, prompt_embeds, timestep, ofs=ofs)
                v = v.float()
                check_finite(
                    v, where=f"the transformer output at step {i} (t={int(t)})", dtype=self.dtype
                )
                if do_classifier_free_guidance:
                    scale = guidance_scale_at(
                        guidance_scale,
                        timestep=t,
                        step_index=i,
                        num_inference_steps=num_steps_for_guidance,
                        schedule=guidance_schedule,
                    )
                    v = apply_guidance(v, scale)
                back = timesteps[i - 1] if i > 0 else None
                latents, old_x0 = sampler.step(
                    v, latents, t, timestep_back=back, old_pred_x0=old_x0, generator=generator
                )
                latents = latents.to(prompt_embeds.dtype)
                check_finite(
                    latents, where=f"the latents after step {i} (t={int(t)})", dtype=self.dtype
                )
                if callback is not None:
                    callback(i, int(t), latents)
        finally:
            self.transformer.release()
        return latents

    # ---- call plumbing ---------------------------------------------------------------------------

    def _resolve_shape(
        self,
        num_frames: int | None,
        height: int | None,
        width: int | None,
        snap: bool,
        strict_frames: bool,
    ) -> VideoShape:
        f0, h0, w0 = self.default_size()
        return self.rules.check(
            num_frames or f0, height or h0, width or w0, snap=snap, strict_frames=strict_frames
        )

    def _check_latents_arg(self, latents: torch.Tensor, expected: tuple[int, ...]) -> torch.Tensor:
        if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != expected:
            got = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents)
            raise ValueError(
                f"latents must have shape [B, F', C, h, w] = {expected} for this request "
                f"(transformer layout, unscaled N(0, I)), got {got}"
            )
        return latents.to(self.device)

    def _batch(self, prompt, prompt_embeds) -> int:
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass either prompt or prompt_embeds, not both")
        if prompt is None and prompt_embeds is None:
            raise ValueError("prompt (or prompt_embeds) is required")
        if prompt is None:
            return prompt_embeds.shape[0]
        if isinstance(prompt, str):
            return 1
        if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            return len(prompt)
        raise TypeError(f"prompt must be a str or a non-empty list of str, got {prompt!r}")

    def _finish(
        self, latents: torch.Tensor, shape: VideoShape, output_type: OutputType, progress: bool
    ) -> Any:
        if output_type == "latent":
            return latents
        latents = latents[:, shape.additional_frames :]
        frames = self.decode_latents(latents, progress=progress)
        return postprocess(frames, output_type)

    def save_video(
        self, frames: torch.Tensor, path: str | os.PathLike[str], *, fps: int | None = None
    ) -> list[Path]:
        """Write ``[B, F, 3, H, W]`` frames in [0, 1] as ``.mp4``/``.gif`` at the family fps; batch
        item ``i > 0`` goes to ``<stem>_<i><suffix>``. Returns the paths written."""
        return write_videos(frames, path, fps=fps or self.fps)


@dataclass(frozen=True)
class _LoraSpec:
    path: Path
    adapter_name: str
    scale: float


def _as_component(name: str, value: Any) -> Component:
    if isinstance(value, Component):
        return value
    if value is None:
        raise ValueError(f"{name} is required")
    return Component(name, module=value)


def postprocess(frames: torch.Tensor, output_type: OutputType) -> Any:
    """``[B, F, 3, H, W]`` float in [0, 1] -> ``pt`` (as is), ``np`` ``[B, F, H, W, 3]`` float32 or
    ``pil`` (a list per video of PIL images), as the reference ``postprocess_video``."""
    if output_type == "pt":
        return frames
    if output_type == "np":
        return frames.permute(0, 1, 3, 4, 2).cpu().numpy()
    if output_type == "pil":
        arrays = (frames.permute(0, 1, 3, 4, 2).cpu().numpy() * 255).round().astype(np.uint8)
        return [[Image.fromarray(f) for f in video] for video in arrays]
    raise ValueError(f"output_type={output_type!r} is not one of 'pt', 'np', 'pil', 'latent'")


def write_videos(frames: torch.Tensor, path: str | os.PathLike[str], *, fps: int) -> list[Path]:
    """Write each video of a ``[B, F, 3, H, W]`` batch in [0, 1] with :func:`cogvx.videoio.write_video`."""
    from cogvx.videoio import write_video

    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"output path {path} must end in .mp4 or .gif")
    written = []
    for i in range(frames.shape[0]):
        target = path if i == 0 else path.with_name(f"{path.stem}_{i}{path.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_video(target, frames[i].permute(0, 2, 3, 1).float().cpu().numpy(), fps)
        written.append(target)
    return written


# ---- input images and videos -------------------------------------------------------------------


def _to_chw_unit(image: Any) -> torch.Tensor:
    """One image -> float32 ``[3, H, W]`` in [0, 1]: PIL, uint8/float ``[H, W, 3]`` arrays, or
    ``[3, H, W]`` tensors in [0, 1]."""
    if isinstance(image, Image.Image):
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(
            2, 0, 1
        )
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"image arrays must be [H, W, 3], got {image.shape}")
        arr = (
            image.astype(np.float32) / 255.0
            if image.dtype == np.uint8
            else image.astype(np.float32)
        )
        return torch.from_numpy(arr).permute(2, 0, 1)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image tensors must be [3, H, W] in [0, 1], got {tuple(image.shape)}")
        return image.float()
    raise TypeError(f"unsupported image type {type(image).__name__}: use PIL, numpy or a tensor")


def _resize(image: Any, chw: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize like the reference image processor: PIL inputs with Lanczos, arrays and tensors
    with nearest-neighbour interpolation."""
    if chw.shape[1:] == (height, width):
        return chw
    if isinstance(image, Image.Image):
        resized = image.convert("RGB").resize((width, height), resample=Image.LANCZOS)
        return _to_chw_unit(resized)
    return torch.nn.functional.interpolate(chw[None], size=(height, width))[0]


def preprocess_images(images: Any, height: int, width: int) -> torch.Tensor:
    """An image or a list of images -> ``[B, 3, H, W]`` in [-1, 1]."""
    items = images if isinstance(images, list) else [images]
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        items = list(images)
    out = [_resize(im, _to_chw_unit(im), height, width) for im in items]
    return torch.stack(out) * 2 - 1


def preprocess_video(video: Any, height: int, width: int) -> torch.Tensor:
    """A video -> ``[1, 3, F, H, W]`` in [-1, 1]: a list of PIL frames, a uint8/float array
    ``[F, H, W, 3]`` or a tensor ``[F, 3, H, W]`` in [0, 1]."""
    if isinstance(video, (np.ndarray, torch.Tensor)) and video.ndim == 4:
        frames = list(video)
    elif isinstance(video, list) and video:
        frames = video
    else:
        raise TypeError(
            "video must be a list of PIL frames, an array [F, H, W, 3] or a tensor [F, 3, H, W]"
        )
    out = [_resize(f, _to_chw_unit(f), height, width) for f in frames]
    return (torch.stack(out, dim=1) * 2 - 1)[None]  # [1, 3, F, H, W]


# ---- the three pipelines -----------------------------------------------------------------------

_CALL_DOC = """
        Args (the reference pipeline's names):
            prompt: a prompt or a list of prompts (batch); or pass ``prompt_embeds``.
            negative_prompt: text for the unconditional branch (default "").
            num_frames, height, width: default per family (1.0: the config's 480x720x49; 1.5:
                768x1360x81). Checked against the model (:class:`ShapeRules`): an invalid value is an
                error naming the nearest valid one, unless ``snap=True``.
            num_inference_steps, guidance_scale: 50 and 6 by default; guidance is off at <= 1.
            use_dynamic_cfg: the reference's dynamic CFG (raw-timestep cosine, oscillating by
                design); ``guidance_schedule="dynamic_step_index"`` selects the smooth variant.
            generator: a torch.Generator (or one per batch item); random numbers are drawn in the
                reference's order.
            latents: initial noise ``[B, F', C, h, w]``, unscaled N(0, I) (``F'`` includes the 1.5
                padding frame).
            output_type: "pt" (default: float ``[B, F, 3, H, W]`` in [0, 1]), "np", "pil", "latent".
            unconditional: "t5" (T5 of the negative prompt, the reference) or "zeros" (SAT).
            return_report: return a :class:`GenerationResult` with per-stage time and memory.
"""


class TextToVideoPipeline(_VideoPipeline):
    """Text to video (diffusers ``CogVideoXPipeline``)."""

    task = "t2v"

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = False,
        generator: Generator = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: OutputType = "pt",
        max_sequence_length: int | None = None,
        *,
        guidance_schedule: GuidanceSchedule | str | None = None,
        unconditional: Unconditional = "t5",
        snap: bool = False,
        strict_frames: bool = True,
        progress: bool = True,
        return_report: bool = False,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ):
        batch = self._batch(prompt, prompt_embeds)
        shape = self._resolve_shape(num_frames, height, width, snap, strict_frames)
        schedule = _guidance_schedule(use_dynamic_cfg, guidance_schedule)
        do_cfg = guidance_scale > 1.0
        report = StageReport()

        embeds = self._text_stage(
            report,
            prompt,
            negative_prompt,
            do_cfg,
            prompt_embeds,
            negative_prompt_embeds,
            max_sequence_length,
            unconditional,
        )

        with report.stage("denoising", self.device):
            sampler = make_sampler(self.scheduler, num_inference_steps, device=self.device)
            latent_shape = (
                batch,
                shape.padded_latent_frames,
                self.transformer_config.in_channels,
                shape.height // self.vae_info.spatial_factor,
                shape.width // self.vae_info.spatial_factor,
            )
            if latents is None:
                latents = randn(
                    latent_shape, generator=generator, device=self.device, dtype=embeds.dtype
                )
            else:
                latents = self._check_latents_arg(latents, latent_shape)
            latents = latents * sampler.init_noise_sigma
            latents = self._denoise(
                latents,
                embeds,
                sampler=sampler,
                timesteps=sampler.timesteps,
                guidance_scale=guidance_scale,
                do_classifier_free_guidance=do_cfg,
                guidance_schedule=schedule,
                num_steps_for_guidance=num_inference_steps,
                generator=generator,
                progress=progress,
                callback=callback,
            )

        with report.stage("decoding", self.device):
            frames = self._finish(latents, shape, output_type, progress)
        return GenerationResult(frames, report, shape) if return_report else frames

    __call__.__doc__ = "Generate videos from text." + _CALL_DOC


class ImageToVideoPipeline(_VideoPipeline):
    """Image to video (diffusers ``CogVideoXImageToVideoPipeline``): the image's VAE latents, zero
    padded to the video's latent frames, are concatenated to the noisy latents on channels (docs/diffusion.md §Image-to-video).
    """

    task = "i2v"

    def _image_latents(
        self, image: Any, batch: int, shape: VideoShape, generator: Generator
    ) -> torch.Tensor:
        pixels = preprocess_images(image, shape.height, shape.width)
        if pixels.shape[0] == 1 and batch > 1:
            pixels = pixels.expand(batch, -1, -1, -1)
        if pixels.shape[0] != batch:
            raise ValueError(f"got {pixels.shape[0]} images for {batch} prompts")
        pixels = pixels.to(self.device, self.dtype).unsqueeze(2)  # [B, 3, 1, H, W]
        image_latents = self._vae_encode(pixels, generator)  # [B, 1, C, h, w]
        if self.vae_info.invert_scale_latents:
            # CogVideoX 1.5 I2V was trained on latents divided by the scale (diffusers comment:
            # the team "forgot to multiply the scaling factor during training").
            image_latents = 1 / self.vae_info.scaling_factor * image_latents
        else:
            image_latents = self.vae_info.scaling_factor * image_latents
        b, _, c, h, w = image_latents.shape
        padding = image_latents.new_zeros((b, shape.padded_latent_frames - 1, c, h, w))
        return torch.cat([image_latents, padding], dim=1)

    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = False,
        generator: Generator = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: OutputType = "pt",
        max_sequence_length: int | None = None,
        *,
        guidance_schedule: GuidanceSchedule | str | None = None,
        unconditional: Unconditional = "t5",
        snap: bool = False,
        strict_frames: bool = True,
        progress: bool = True,
        return_report: bool = False,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ):
        batch = self._batch(prompt, prompt_embeds)
        shape = self._resolve_shape(num_frames, height, width, snap, strict_frames)
        schedule = _guidance_schedule(use_dynamic_cfg, guidance_schedule)
        do_cfg = guidance_scale > 1.0
        report = StageReport()

        embeds = self._text_stage(
            report,
            prompt,
            negative_prompt,
            do_cfg,
            prompt_embeds,
            negative_prompt_embeds,
            max_sequence_length,
            unconditional,
        )

        with report.stage("image encoding", self.device):
            image_latents = self._image_latents(image, batch, shape, generator)

        with report.stage("denoising", self.device):
            sampler = make_sampler(self.scheduler, num_inference_steps, device=self.device)
            channels = self.transformer_config.in_channels // 2
            latent_shape = (
                batch,
                shape.padded_latent_frames,
                channels,
                shape.height // self.vae_info.spatial_factor,
                shape.width // self.vae_info.spatial_factor,
            )
            if latents is None:
                latents = randn(
                    latent_shape, generator=generator, device=self.device, dtype=embeds.dtype
                )
            else:
                latents = self._check_latents_arg(latents, latent_shape)
            latents = latents * sampler.init_noise_sigma
            latents = self._denoise(
                latents,
                embeds,
                sampler=sampler,
                timesteps=sampler.timesteps,
                guidance_scale=guidance_scale,
                do_classifier_free_guidance=do_cfg,
                guidance_schedule=schedule,
                num_steps_for_guidance=num_inference_steps,
                generator=generator,
                image_latents=image_latents,
                progress=progress,
                callback=callback,
            )

        with report.stage("decoding", self.device):
            frames = self._finish(latents, shape, output_type, progress)
        return GenerationResult(frames, report, shape) if return_report else frames

    __call__.__doc__ = "Generate videos from an image and text." + _CALL_DOC


class VideoToVideoPipeline(_VideoPipeline):
    """Video to video (diffusers ``CogVideoXVideoToVideoPipeline``, docs/diffusion.md §Video-to-video): the input video's
    latents are noised to the timestep ``strength`` of the way into the schedule and denoised from
    there."""

    task = "v2v"

    @torch.no_grad()
    def __call__(
        self,
        video: Any = None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        strength: float = 0.8,
        guidance_scale: float = 6.0,
        use_dynamic_cfg: bool = False,
        generator: Generator = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: OutputType = "pt",
        max_sequence_length: int | None = None,
        *,
        guidance_schedule: GuidanceSchedule | str | None = None,
        unconditional: Unconditional = "t5",
        snap: bool = False,
        strict_frames: bool = True,
        progress: bool = True,
        return_report: bool = False,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ):
        """Restyle ``video`` (a list of PIL frames, an array ``[F, H, W, 3]`` or a tensor
        ``[F, 3, H, W]`` in [0, 1]); ``num_frames`` is the video's. ``strength`` in [0, 1]: the
        fraction of the schedule that is re-run. ``latents``, if given, are the already-noised
        start latents (then ``video`` is not used), as in the reference."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength={strength} must be in [0, 1]")
        if (video is None) == (latents is None):
            raise ValueError("pass exactly one of video or latents")
        batch = self._batch(prompt, prompt_embeds)
        if latents is not None:
            num_frames = (latents.shape[1] - 1) * self.vae_info.temporal_factor + 1
        else:
            num_frames = len(video)
        if self.rules.patch_size_t and snap:
            raise ValueError("snap is not available for video-to-video: trim the input video")
        shape = self._resolve_shape(num_frames, height, width, snap, strict_frames)
        if shape.additional_frames:
            raise ValueError(
                f"video-to-video needs latent frames divisible by patch_size_t="
                f"{self.rules.patch_size_t}; {num_frames} frames give {shape.latent_frames}"
            )
        schedule = _guidance_schedule(use_dynamic_cfg, guidance_schedule)
        do_cfg = guidance_scale > 1.0
        report = StageReport()

        embeds = self._text_stage(
            report,
            prompt,
            negative_prompt,
            do_cfg,
            prompt_embeds,
            negative_prompt_embeds,
            max_sequence_length,
            unconditional,
        )

        sampler = make_sampler(self.scheduler, num_inference_steps, device=self.device)
        init_steps = min(int(num_inference_steps * strength), num_inference_steps)
        start = max(num_inference_steps - init_steps, 0)
        timesteps = sampler.timesteps[start:]
        steps_run = num_inference_steps - start
        if steps_run == 0:
            raise ValueError(
                f"strength={strength} with num_inference_steps={num_inference_steps} runs no step"
            )

        with report.stage("video encoding", self.device):
            latent_shape = (
                batch,
                shape.latent_frames,
                self.transformer_config.in_channels,
                shape.height // self.vae_info.spatial_factor,
                shape.width // self.vae_info.spatial_factor,
            )
            if latents is None:
                pixels = preprocess_video(video, shape.height, shape.width)
                pixels = pixels.expand(batch, -1, -1, -1, -1).to(self.device, self.dtype)
                init = self._vae_encode(pixels, generator) * self.vae_info.scaling_factor
                noise = randn(
                    latent_shape, generator=generator, device=self.device, dtype=embeds.dtype
                )
                latents = sampler.add_noise(init, noise, timesteps[:1].repeat(batch))
            else:
                latents = self._check_latents_arg(latents, latent_shape)
            latents = latents * sampler.init_noise_sigma

        with report.stage("denoising", self.device):
            latents = self._denoise(
                latents,
                embeds,
                sampler=sampler,
                timesteps=timesteps,
                guidance_scale=guidance_scale,
                do_classifier_free_guidance=do_cfg,
                guidance_schedule=schedule,
                num_steps_for_guidance=steps_run,
                generator=generator,
                progress=progress,
                callback=callback,
            )

        with report.stage("decoding", self.device):
            frames = self._finish(latents, shape, output_type, progress)
        return GenerationResult(frames, report, shape) if return_report else frames


def _guidance_schedule(
    use_dynamic_cfg: bool, guidance_schedule: GuidanceSchedule | str | None
) -> GuidanceSchedule:
    if guidance_schedule is not None:
        schedule = GuidanceSchedule(guidance_schedule)
        if use_dynamic_cfg and schedule is GuidanceSchedule.CONSTANT:
            raise ValueError("use_dynamic_cfg=True contradicts guidance_schedule='constant'")
        return schedule
    return GuidanceSchedule.DYNAMIC if use_dynamic_cfg else GuidanceSchedule.CONSTANT


_TASKS: dict[str, type[_VideoPipeline]] = {
    "t2v": TextToVideoPipeline,
    "i2v": ImageToVideoPipeline,
    "v2v": VideoToVideoPipeline,
}


def folder_shape_rules(model: str | os.PathLike[str]) -> ShapeRules:
    """The :class:`ShapeRules` of a model folder, read from its configs without loading weights."""
    folder = ModelFolder.open(model)
    dit_config = DiTConfig.from_json_file(folder.component("transformer") / "config.json")
    vae_config = folder.component("vae") / "config.json"
    if not vae_config.is_file():
        raise FileNotFoundError(f"VAE config not found: {vae_config}")
    info = VAEInfo.from_config(json.loads(vae_config.read_text()))
    return ShapeRules.for_model(dit_config, spatial_factor=info.spatial_factor)


def build_pipeline(
    model: str | os.PathLike[str],
    *,
    task: str | None = None,
    sampler: str | None = None,
    dtype: str | None = "auto",
    device: str | None = "auto",
    residency: str = "resident",
) -> _VideoPipeline:
    """Open ``model`` as the pipeline of ``task`` (``t2v``/``i2v``/``v2v``; default: the folder's own
    task from ``model_index.json``). ``device="auto"``: CUDA when available, else the CPU. This is the
    builder the Hydra configs instantiate."""
    if task is None:
        task = ModelFolder.open(model).task or "t2v"
    if task not in _TASKS:
        raise ValueError(f"task={task!r} is not one of {sorted(_TASKS)}")
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return _TASKS[task].from_pretrained(
        model, sampler=sampler, device=device, dtype=dtype, residency=residency
    )
