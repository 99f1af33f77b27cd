"""The one sampling template of the three pipelines, with the per-task hooks.

:meth:`VideoPipeline._generate` is the loop of diffusers' ``CogVideoXPipeline.__call__`` (0.42.1),
step for step, so that the same weights, seed and arguments give the same frames (parity tests):

1. check every input (types, ranges, shapes, the memory estimate) before any work;
2. encode the prompts with T5 (padded to ``max_sequence_length``, no mask); with guidance the batch
   is ``[uncond; cond]``, the unconditional text T5(negative_prompt or "") (or zeros, as SAT);
3. the sampler's timesteps (DDIM or DPM-Solver++ from ``scheduler_config.json``);
4. the task's conditioning and initial latents ``[B, F', C, h, w]``
   (:meth:`prepare_conditioning`, :meth:`prepare_latents`: noise, the image latents of I2V, the
   noised video latents of V2V); for CogVideoX 1.5 one leading latent frame pads ``F'`` to a
   multiple of ``patch_size_t`` and is dropped before decoding;
5. the denoising loop: transformer, CFG (constant or dynamic scale), sampler step, the
   ``callback_on_step_end`` hook;
6. VAE decode of ``latents / scaling_factor`` -> frames ``(x / 2 + 0.5).clamp(0, 1)``.

Random numbers are drawn in the reference's order (VAE posterior samples, then the initial noise,
then the DPM sampler's per-step noise, all from the one ``generator``); docs/diffusion.md §Random
numbers. The task subclasses only supply steps 1 and 4 (and how the conditioning enters the
transformer input).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import torch
from tqdm.auto import tqdm

from cogvx.expert_dit.caching import CacheState, GuidancePlan, StepCaching
from cogvx.expert_dit.config import DiTConfig
from cogvx.expert_dit.sampling import (
    GuidanceSchedule,
    apply_guidance,
    guidance_scale_at,
    make_sampler,
    randn,
)
from cogvx.expert_dit.schedule import SchedulerConfig
from cogvx.infer.lora import LoraLoaderMixin
from cogvx.infer.model_folder import ModelFolder, VAEInfo
from cogvx.infer.parallel import current_parallel
from cogvx.infer.pipelines.call import (
    CALLBACK_TENSOR_INPUTS,
    Generator,
    OutputType,
    Request,
    Unconditional,
    VideoPipelineOutput,
)
from cogvx.infer.pipelines.components import (
    FolderLoaders,
    VAEComponent,
    as_component,
    first_param,
)
from cogvx.infer.pipelines.processing import postprocess, write_videos
from cogvx.infer.pipelines.step_cache import (
    AnyCaching,
    cached_prediction,
    resolve_caching,
    resolve_guidance_plan,
)
from cogvx.infer.precision import check_finite, resolve_dtype
from cogvx.infer.shapes import ShapeRules
from cogvx.infer.staging import Component, Residency, StageReport
from cogvx.infer.tasks import TASKS, Task
from cogvx.infer.text_encoder import T5TextEncoder
from cogvx.infer.validation import (
    check_bool,
    check_callback,
    check_choice,
    check_device,
    check_embeds,
    check_float,
    check_generator,
    check_int,
    check_latents,
    check_memory,
    check_output_type,
    check_prompts,
    describe,
    device_memory_limit,
    estimate_memory,
    invalid,
)

__all__ = ["VideoPipeline"]

logger = logging.getLogger(__name__)


def _guidance_schedule(
    use_dynamic_cfg: bool, guidance_schedule: GuidanceSchedule | str | None
) -> GuidanceSchedule:
    check_bool("use_dynamic_cfg", use_dynamic_cfg)
    if guidance_schedule is not None:
        valid = [s.value for s in GuidanceSchedule]
        schedule = GuidanceSchedule(check_choice("guidance_schedule", guidance_schedule, valid))
        if use_dynamic_cfg and schedule is GuidanceSchedule.CONSTANT:
            raise invalid(
                "guidance_schedule", guidance_schedule, "contradicts use_dynamic_cfg=True"
            )
        return schedule
    return GuidanceSchedule.DYNAMIC if use_dynamic_cfg else GuidanceSchedule.CONSTANT


class VideoPipeline(LoraLoaderMixin):
    """What the three pipelines share: components, construction, prompt encoding, the sampling
    template (:meth:`_generate`) and decoding. Subclasses set ``task`` and the hooks."""

    task: ClassVar[str] = "t2v"

    def __init__(
        self,
        *,
        text_encoder: T5TextEncoder | Component,
        transformer: torch.nn.Module | Component,
        vae: torch.nn.Module | Component,
        scheduler: SchedulerConfig,
        transformer_config: DiTConfig | None = None,
        vae_info: VAEInfo | None = None,
        text_encoder_config: dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        torch_dtype: torch.dtype | str | None = None,
    ) -> None:
        self.text_encoder = as_component("text_encoder", text_encoder)
        self.transformer = as_component("transformer", transformer)
        self.vae = VAEComponent(as_component("vae", vae))
        if not isinstance(scheduler, SchedulerConfig):
            raise invalid("scheduler", describe(scheduler), "expected a SchedulerConfig", TypeError)
        self.scheduler = scheduler
        self.device = check_device(device)
        self.dtype = resolve_dtype(torch_dtype, self.device, name="torch_dtype")
        if transformer_config is None:
            transformer_config = self.transformer.acquire().config
        if vae_info is None:
            vae_info = VAEInfo.from_configs(self.vae.acquire().config, transformer_config)
        if text_encoder_config is None and self.text_encoder.peek() is not None:
            text_encoder_config = self.text_encoder.peek().model.config.to_dict()
        self.transformer_config = transformer_config
        self.vae_info = vae_info
        self.text_encoder_config = text_encoder_config or {}
        self.rules = ShapeRules.for_model(
            transformer_config, spatial_factor=vae_info.spatial_factor
        )
        self._init_lora()
        self.vae_options: dict[str, Any] = {}
        self._loaders: FolderLoaders | None = None
        self._progress_config: dict[str, Any] = {}
        #: Memory limit for the pre-allocation check (bytes; None: the device's total memory).
        self.memory_limit: int | None = None
        #: Per-stage peak RSS in the report (writes /proc/self/clear_refs; see StageReport).
        self.probe_memory = False
        self._guidance_scale = 1.0
        self._num_timesteps = 0

    @property
    def task_info(self) -> Task:
        return TASKS[self.task]

    # ---- construction ----------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *,
        torch_dtype: torch.dtype | str | None = None,
        device: torch.device | str | None = None,
        sampler: Literal["ddim", "dpm"] | SchedulerConfig | None = None,
        residency: Residency | str = Residency.RESIDENT,
        cache_dir: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = True,
    ):
        """Open a diffusers-layout model folder, or a repository id from the local Hugging Face
        cache (``THUDM/CogVideoX-2b``; never downloaded).

        The folder is checked against this pipeline's task before any weight is loaded. The sampler
        comes from ``scheduler/scheduler_config.json``; ``sampler="ddim"``/``"dpm"`` switches the
        algorithm and keeps the schedule, a :class:`SchedulerConfig` replaces it. ``torch_dtype``
        (default: bf16 on accelerators that have it, fp32 on the CPU) is applied to all weights at
        load time. ``residency="staged"`` loads each model only for its stage, ``"offload"`` keeps
        them in CPU memory between stages (:meth:`enable_model_cpu_offload`).
        """
        if local_files_only is not True:
            raise invalid(
                "local_files_only", local_files_only, "cogvx never downloads: only True is valid"
            )
        if sampler is not None and not isinstance(sampler, SchedulerConfig):
            check_choice("sampler", sampler, ("ddim", "dpm"))
        residency = Residency(
            check_choice("residency", str(residency), [r.value for r in Residency])
        )
        device_ = check_device(device)
        dtype_ = resolve_dtype(torch_dtype, device_, name="torch_dtype")
        folder = ModelFolder.open(
            pretrained_model_name_or_path, cache_dir=cache_dir, revision=revision
        )
        task = folder.check(cls.task)
        if folder.task is not None and folder.task != cls.task:
            logger.info(
                "folder %s is a %s model; opening it as %s", folder.root, folder.task, cls.task
            )

        scheduler = SchedulerConfig.from_pretrained(folder.component("scheduler"))
        if isinstance(sampler, SchedulerConfig):
            scheduler = sampler
        elif sampler is not None:
            scheduler = scheduler.replace(sampler=sampler)
        load_device = device_ if residency is Residency.RESIDENT else torch.device("cpu")
        loaders = FolderLoaders(folder, task, dtype_, load_device)

        def component(name: str, loader: Callable[[], Any]) -> Component:
            module = None if residency is Residency.STAGED else loader()
            return Component(name, module=module, loader=loader, residency=residency)

        pipe = cls(
            text_encoder=component("text_encoder", loaders.text_encoder),
            transformer=component("transformer", loaders.transformer),
            vae=component("vae", loaders.vae),
            scheduler=scheduler,
            transformer_config=folder.transformer_config,
            vae_info=folder.vae_info,
            text_encoder_config=folder.text_encoder_config,
            device=device_,
            torch_dtype=dtype_,
        )
        pipe._loaders = loaders
        return pipe

    def _components(self) -> tuple[Component, Component, Component]:
        return (self.text_encoder, self.transformer, self.vae)

    def to(self, *args: Any, device: Any = None, dtype: Any = None):
        """Move (and/or cast) the pipeline: ``pipe.to("cuda")``, ``pipe.to(torch.bfloat16)``,
        ``pipe.to("cuda", torch.float16)``, ``pipe.to(device=..., dtype=...)``. Models loaded later
        (staged residency) follow. Returns the pipeline."""
        for arg in args:
            if isinstance(arg, torch.dtype):
                if dtype is not None:
                    raise invalid("dtype", arg, "given twice")
                dtype = arg
            elif isinstance(arg, (str, torch.device)):
                if device is not None:
                    raise invalid("device", arg, "given twice")
                device = arg
            else:
                raise invalid("to", arg, "expected a device and/or a torch.dtype", TypeError)
        new_device = check_device(device) if device is not None else self.device
        new_dtype = resolve_dtype(dtype, new_device) if dtype is not None else self.dtype
        if dtype is None and device is not None:
            resolve_dtype(self.dtype, new_device)  # e.g. bf16 on a device without it
        self.device, self.dtype = new_device, new_dtype
        if self._loaders is not None:
            self._loaders.dtype = new_dtype
        for comp in self._components():
            module = comp.peek()
            if module is None:
                continue
            if comp.residency is Residency.RESIDENT:
                module.to(device=new_device, dtype=new_dtype)
            else:
                module.to(dtype=new_dtype)
        if self._loaders is not None and self.transformer.residency is Residency.RESIDENT:
            self._loaders.device = new_device
        return self

    def enable_model_cpu_offload(
        self, gpu_id: int | None = None, device: torch.device | str | None = None
    ) -> None:
        """diffusers' model CPU offload: every model stays in CPU memory and moves to the
        accelerator for its stage only (``Residency.OFFLOAD``). ``device`` defaults to
        ``cuda:<gpu_id>``; ``device="cpu"`` is allowed (nothing moves)."""
        if device is None:
            if not torch.cuda.is_available():
                raise RuntimeError(
                    "enable_model_cpu_offload: no CUDA device; pass device='cpu' to compute on the "
                    "CPU (nothing is offloaded then)"
                )
            gpu = check_int("gpu_id", gpu_id, minimum=0, optional=True) or 0
            device = f"cuda:{gpu}"
        target = check_device(device)
        resolve_dtype(self.dtype, target)
        for comp in self._components():
            if comp.loader is None:
                module = comp.peek()
                comp.loader = lambda module=module: module
            comp.set_residency(Residency.OFFLOAD)
        if self._loaders is not None:
            self._loaders.device = torch.device("cpu")
        self.device = target

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """tqdm options of the progress bars (``disable=True``, ``desc``, ``leave``, ...)."""
        self._progress_config = dict(kwargs)

    def set_vae_runtime(self, **options: Any) -> None:
        """VAE memory switches for later calls (``cogvx.vae3d.RuntimeOptions`` fields):
        ``tiling`` (True or a ``Tiling``), ``encode_frames``, ``decode_latent_frames``,
        ``batch_chunk``. Defaults are the reference's (no tiling, 8-frame encode chunks,
        2-latent-frame decode chunks)."""
        allowed = ("tiling", "encode_frames", "decode_latent_frames", "batch_chunk")
        for key in options:
            check_choice("option", key, allowed)
        self.vae_options.update(options)

    def _bar(self, iterable: Any = None, *, desc: str, progress: bool | None, **kw: Any) -> tqdm:
        config = {"desc": desc, **kw, **self._progress_config}
        if progress is not None:
            config["disable"] = not progress
        return tqdm(iterable, **config)

    # ---- defaults and reference-style properties -------------------------------------------------

    @property
    def fps(self) -> int:
        """Playback rate of the family: 8 for CogVideoX 1.0, 16 for 1.5."""
        return self.rules.defaults().fps

    def default_size(self) -> tuple[int, int, int]:
        """(num_frames, height, width) used when the call leaves them out."""
        d = self.rules.defaults()
        return d.num_frames, d.height, d.width

    @property
    def guidance_scale(self) -> float:
        """The guidance scale of the current (or last) denoising step."""
        return self._guidance_scale

    @property
    def num_timesteps(self) -> int:
        """The number of denoising steps of the current (or last) call."""
        return self._num_timesteps

    # ---- stages ----------------------------------------------------------------------------------

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        *,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        max_sequence_length: int | None = None,
        unconditional: Unconditional = "t5",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(prompt_embeds, negative_prompt_embeds)`` in the pipeline dtype on its device, each
        prompt's repeated ``num_videos_per_prompt`` times.

        The unconditional branch is T5(``negative_prompt`` or "") like the reference pipelines, or
        all zeros with ``unconditional="zeros"`` (the original SAT sampling; docs/diffusion.md
        §Unconditional branch).
        """
        check_choice("unconditional", unconditional, ("t5", "zeros"))
        if unconditional == "zeros" and negative_prompt is not None:
            raise invalid("negative_prompt", negative_prompt, "not used with unconditional='zeros'")
        length = max_sequence_length
        if length is None:
            length = self.transformer_config.max_text_seq_length
        prompts = check_prompts(prompt, negative_prompt, has_embeds=prompt_embeds is not None)
        need_t5 = prompt_embeds is None or (
            do_classifier_free_guidance and negative_prompt_embeds is None and unconditional == "t5"
        )
        encoder = self.text_encoder.acquire(self.device) if need_t5 else None
        try:
            if prompt_embeds is None:
                prompt_embeds = encoder.encode(
                    prompts, max_sequence_length=length, device=self.device, dtype=self.dtype
                )
            prompt_embeds = prompt_embeds.to(self.device, self.dtype)
            if do_classifier_free_guidance and negative_prompt_embeds is None:
                if unconditional == "zeros":
                    negative_prompt_embeds = torch.zeros_like(prompt_embeds)
                else:
                    negatives = "" if negative_prompt is None else negative_prompt
                    if isinstance(negatives, str):
                        negatives = [negatives] * prompt_embeds.shape[0]
                    negative_prompt_embeds = encoder.encode(
                        negatives, max_sequence_length=length, device=self.device, dtype=self.dtype
                    )
        finally:
            if encoder is not None:
                self.text_encoder.release()
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.to(self.device, self.dtype)
        n = num_videos_per_prompt
        if n > 1:
            # [p0, p1] -> [p0, p0, p1, p1], the reference's repeat(1, n, 1).view(B * n, L, D)
            prompt_embeds = prompt_embeds.repeat_interleave(n, dim=0)
            if negative_prompt_embeds is not None:
                negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(n, dim=0)
        return prompt_embeds, negative_prompt_embeds

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
            vae_dtype = first_param(vae).dtype
            out = []
            with self._vae_runtime(vae):
                for i in range(pixels.shape[0]):
                    g = generator[i] if isinstance(generator, Sequence) else generator
                    posterior = vae.encode(pixels[i : i + 1].to(self.device, vae_dtype))
                    out.append(posterior.sample(generator=g))
        finally:
            self.vae.release()
        return torch.cat(out, dim=0).to(self.dtype).permute(0, 2, 1, 3, 4)  # [B, F', C, h, w]

    def decode_latents(
        self, latents: torch.Tensor, *, progress: bool | None = None
    ) -> torch.Tensor:
        """Transformer-layout latents ``[B, F', C, h, w]`` (scaled) -> frames ``[B, F, 3, H, W]`` in
        [0, 1], float32. One batch item at a time (the VAE normalises per item, so this equals the
        reference's batched decode), with a progress bar over the VAE's chunks and tiles."""
        vae = self.vae.acquire(self.device)
        batch = latents.shape[0]
        bar = self._bar(desc="decoding", unit="chunk", progress=progress)
        try:
            vae_dtype = first_param(vae).dtype
            frames = []
            for i in range(batch):

                def report(done: int, total: int, i: int = i) -> None:
                    bar.total = total * batch
                    bar.n = i * total + done
                    bar.refresh()

                z = latents[i : i + 1].permute(0, 2, 1, 3, 4)  # [1, C, F', h, w]
                z = (1 / self.vae_info.scaling_factor * z).to(vae_dtype)
                with self._vae_runtime(vae):
                    parallel = current_parallel()
                    video = (  # [1, 3, F, H, W] in [-1, 1]
                        vae.decode(z, progress=report)
                        if parallel is None
                        else parallel.decode(vae, z, progress=report)
                    )
                check_finite(video, where="the decoded video", dtype=vae_dtype)
                frames.append((video / 2 + 0.5).clamp(0, 1).float().permute(0, 2, 1, 3, 4))
        finally:
            bar.close()
            self.vae.release()
        return torch.cat(frames, dim=0)

    def save_video(
        self, frames: torch.Tensor, path: str | os.PathLike[str], *, fps: float | None = None
    ) -> list:
        """Write ``[B, F, 3, H, W]`` frames in [0, 1] as ``.mp4``/``.gif`` at the family fps; batch
        item ``i > 0`` goes to ``<stem>_<i><suffix>``. Returns the paths written."""
        fps = check_float("fps", fps, minimum=0, exclusive_minimum=True, optional=True)
        return write_videos(frames, path, fps=self.fps if fps is None else fps)

    # ---- task hooks ------------------------------------------------------------------------------

    def resolve_num_frames(self, inputs: dict[str, Any], num_frames: int | None) -> int | None:
        """The frame count of the request (V2V: the input video's)."""
        return num_frames

    def check_task_inputs(self, inputs: dict[str, Any], request: Request) -> None:
        """Check (and preprocess, in place) the task's own inputs before any work."""

    def timesteps(self, sampler: Any, request: Request) -> torch.Tensor:
        """The timesteps the loop runs (V2V: the last ``strength`` of the schedule)."""
        return sampler.timesteps

    def prepare_conditioning(self, request: Request, generator: Generator) -> Any:
        """What the task adds to every transformer input (I2V: the image latents)."""
        return None

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
        """The initial latents ``[B, F', C, h, w]``: N(0, I) from the generator unless given."""
        if latents is None:
            latents = randn(
                request.latent_shape, generator=generator, device=self.device, dtype=dtype
            )
        return latents.to(self.device) * sampler.init_noise_sigma

    def transformer_input(
        self, latents: torch.Tensor, conditioning: Any, do_cfg: bool
    ) -> torch.Tensor:
        """The transformer input of one step from the (CFG-doubled) latents."""
        return latents

    # ---- the template ----------------------------------------------------------------------------

    def _check_memory(self, request: Request, max_sequence_length: int) -> None:
        shape, config = request.shape, self.transformer_config
        pt = config.patch_size_t or 1
        p = config.patch_size
        f = self.vae_info.spatial_factor
        video_tokens = (
            (shape.padded_latent_frames // pt) * (shape.height // f // p) * (shape.width // f // p)
        )
        t5 = self.text_encoder_config
        estimate = estimate_memory(
            batch=request.batch,
            max_sequence_length=max_sequence_length,
            t5_heads=int(t5.get("num_heads", 64)),
            t5_d_model=int(t5.get("d_model", config.text_embed_dim)),
            transformer_tokens=max_sequence_length + video_tokens,
            transformer_width=config.num_attention_heads * config.attention_head_dim,
            do_cfg=request.do_cfg,
            pixel_frames_per_chunk=2 * self.vae_info.temporal_factor,
            height=shape.height,
            width=shape.width,
            vae_channels=self.vae_info.base_channels,
            element_size=torch.finfo(self.dtype).bits // 8,
            tiled=self.vae.tiling or bool(self.vae_options.get("tiling")),
        )
        limit = (
            self.memory_limit if self.memory_limit is not None else device_memory_limit(self.device)
        )
        check_memory(
            estimate,
            limit,
            device=self.device,
            text_parameter="max_sequence_length",
            text_value=max_sequence_length,
            size_parameter="height, width, num_frames",
            size_value=(shape.height, shape.width, shape.num_frames),
        )

    def _generate(
        self,
        task_inputs: dict[str, Any],
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        *,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        use_dynamic_cfg: bool = False,
        num_videos_per_prompt: int | None = None,
        generator: Generator = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: OutputType = "pt",
        return_dict: bool = True,
        max_sequence_length: int | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        guidance_schedule: GuidanceSchedule | str | None = None,
        unconditional: Unconditional = "t5",
        snap: bool = False,
        strict_frames: bool = True,
        progress: bool | None = None,
        cache: AnyCaching = None,
        guidance_plan: GuidancePlan | None = None,
    ) -> VideoPipelineOutput | tuple[Any]:
        # 1. Check every input before any work (docs/reliability.md §Python APIs).
        caching = resolve_caching(cache)
        plan = resolve_guidance_plan(guidance_plan)
        steps = check_int("num_inference_steps", num_inference_steps, minimum=1, optional=True)
        steps = 50 if steps is None else steps
        scale = check_float("guidance_scale", guidance_scale, minimum=0, optional=True)
        scale = 6.0 if scale is None else scale
        n = check_int("num_videos_per_prompt", num_videos_per_prompt, minimum=1, optional=True) or 1
        length = check_int("max_sequence_length", max_sequence_length, minimum=1, optional=True)
        for name, value in (("height", height), ("width", width), ("num_frames", num_frames)):
            check_int(name, value, minimum=1, optional=True)
        check_output_type(output_type)
        check_bool("return_dict", return_dict)
        check_bool("snap", snap)
        check_bool("strict_frames", strict_frames)
        if progress is not None:
            check_bool("progress", progress)
        check_choice("unconditional", unconditional, ("t5", "zeros"))
        schedule = _guidance_schedule(use_dynamic_cfg, guidance_schedule)
        callback, tensor_names = check_callback(
            callback_on_step_end, callback_on_step_end_tensor_inputs, CALLBACK_TENSOR_INPUTS
        )
        prompts = check_prompts(prompt, negative_prompt, has_embeds=prompt_embeds is not None)
        if unconditional == "zeros" and negative_prompt is not None:
            raise invalid("negative_prompt", negative_prompt, "not used with unconditional='zeros'")
        if length is None:
            length = (
                prompt_embeds.shape[1]
                if isinstance(prompt_embeds, torch.Tensor) and prompt_embeds.ndim == 3
                else self.transformer_config.max_text_seq_length
            )
        text_width = self.transformer_config.text_embed_dim
        check_embeds("prompt_embeds", prompt_embeds, width=text_width, length=length)
        check_embeds(
            "negative_prompt_embeds",
            negative_prompt_embeds,
            width=text_width,
            like=prompt_embeds,
            length=length,
        )
        if (
            self.rules.fixed_size is not None
            and length != self.transformer_config.max_text_seq_length
        ):
            raise invalid(
                "max_sequence_length",
                length,
                f"this model's learned position table needs exactly "
                f"{self.transformer_config.max_text_seq_length} text tokens",
            )
        prompt_count = len(prompts) if prompts is not None else prompt_embeds.shape[0]
        batch = prompt_count * n
        check_generator(generator, batch)
        do_cfg = scale > 1.0
        f0, h0, w0 = self.default_size()
        num_frames = self.resolve_num_frames(task_inputs, num_frames)
        shape = self.rules.check(
            f0 if num_frames is None else num_frames,
            h0 if height is None else height,
            w0 if width is None else width,
            snap=snap,
            strict_frames=strict_frames,
        )
        factor = self.vae_info.spatial_factor
        channels = self.transformer_config.in_channels // self.task_info.channel_multiplier
        request = Request(
            prompts=prompts,
            batch=batch,
            num_videos_per_prompt=n,
            shape=shape,
            num_inference_steps=steps,
            do_cfg=do_cfg,
            latent_shape=(
                batch,
                shape.padded_latent_frames,
                channels,
                shape.height // factor,
                shape.width // factor,
            ),
            inputs=task_inputs,
        )
        self.check_task_inputs(task_inputs, request)
        check_latents(latents, request.latent_shape, self._latents_meaning)
        self._check_memory(request, length)
        parallel = current_parallel()
        if parallel is not None:  # degrees that do not divide heads/tokens/rows (docs/pipelines.md)
            parallel.check_request(
                self.transformer_config,
                request,
                cached=caching is not None or plan is not None,
                tiled=self.vae.tiling or bool(self.vae_options.get("tiling")),
            )
        report = StageReport(probe_rss=self.probe_memory)

        # 2. Encode the prompts: [uncond; cond] with guidance (the reference's CFG batch order).
        with report.stage("text encoding", self.device):
            embeds, negative = self.encode_prompt(
                prompts,
                negative_prompt,
                do_classifier_free_guidance=do_cfg,
                num_videos_per_prompt=n,
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_prompt_embeds,
                max_sequence_length=length,
                unconditional=unconditional,
            )
            if do_cfg:
                embeds = torch.cat([negative, embeds], dim=0)

        # 3. The sampler and its timesteps.
        sampler = make_sampler(self.scheduler, steps, device=self.device)
        timesteps = self.timesteps(sampler, request)
        self._num_timesteps = len(timesteps)

        # 4. The task's conditioning and the initial latents (random numbers in reference order).
        stage = self.task_info.conditioning
        with report.stage(f"{stage} encoding", self.device) if stage else contextlib.nullcontext():
            conditioning = self.prepare_conditioning(request, generator)
            latents = self.prepare_latents(
                request,
                latents,
                sampler=sampler,
                timesteps=timesteps,
                generator=generator,
                dtype=embeds.dtype,
            )

        # 5. The denoising loop.
        with report.stage("denoising", self.device):
            latents = self._denoise(
                latents,
                embeds,
                conditioning,
                sampler=sampler,
                timesteps=timesteps,
                guidance_scale=scale,
                do_cfg=do_cfg,
                schedule=schedule,
                generator=generator,
                callback=callback,
                callback_names=tensor_names,
                progress=progress,
                caching=caching,
                guidance_plan=plan,
                report=report,
            )

        # 6. Decode (dropping the 1.5 padding frame) and convert.
        if output_type == "latent":
            frames: Any = latents
        else:
            with report.stage("decoding", self.device):
                video = self.decode_latents(
                    latents[:, shape.additional_frames :], progress=progress
                )
                frames = postprocess(video, output_type)
        if not return_dict:
            return (frames,)
        return VideoPipelineOutput(frames, report, shape)

    #: What a given ``latents`` argument means (for the error message).
    _latents_meaning = "transformer layout, unscaled N(0, I) noise"

    def _denoise(
        self,
        latents: torch.Tensor,
        embeds: torch.Tensor,
        conditioning: Any,
        *,
        sampler: Any,
        timesteps: torch.Tensor,
        guidance_scale: float,
        do_cfg: bool,
        schedule: GuidanceSchedule,
        generator: Generator,
        callback: Callable[..., dict[str, Any]] | None,
        callback_names: tuple[str, ...],
        progress: bool | None,
        caching: StepCaching | None = None,
        guidance_plan: GuidancePlan | None = None,
        report: StageReport | None = None,
    ) -> torch.Tensor:
        transformer = self.transformer.acquire(self.device)
        cached = caching is not None or guidance_plan is not None
        cache_state = CacheState()
        try:
            ofs = None
            if self.transformer_config.ofs_embed_dim:
                ofs = latents.new_full((1,), 2.0)  # the reference's constant (docs/diffusion.md)
            old_x0 = None
            steps = len(timesteps)
            for i, t in enumerate(self._bar(timesteps, desc="denoising", progress=progress)):
                if cached:  # step caching / cheaper guidance (docs/pipelines.md §Step caching)
                    v, cache_state, self._guidance_scale = cached_prediction(
                        transformer,
                        latents,
                        embeds,
                        t,
                        step=i,
                        num_steps=steps,
                        do_cfg=do_cfg,
                        scale_at=lambda i=i, t=t: guidance_scale_at(
                            guidance_scale,
                            timestep=t,
                            step_index=i,
                            num_inference_steps=steps,
                            schedule=schedule,
                        ),
                        transformer_input=lambda x, doubled: self.transformer_input(
                            x, conditioning, doubled
                        ),
                        caching=caching,
                        plan=guidance_plan,
                        state=cache_state,
                        ofs=ofs,
                    )
                    check_finite(
                        v,
                        where=f"the transformer output at step {i} (t={int(t)})",
                        dtype=self.dtype,
                    )
                else:
                    model_input = torch.cat([latents] * 2) if do_cfg else latents
                    model_input = self.transformer_input(model_input, conditioning, do_cfg)
                    timestep = t.expand(model_input.shape[0])
                    parallel = current_parallel()
                    if parallel is None:
                        v = transformer(model_input, embeds, timestep, ofs=ofs).float()
                    else:  # guidance- and sequence-parallel (cogvx.infer.parallel)
                        v = parallel.predict(transformer, model_input, embeds, timestep, ofs=ofs)
                        v = v.float()
                    check_finite(
                        v,
                        where=f"the transformer output at step {i} (t={int(t)})",
                        dtype=self.dtype,
                    )
                    if do_cfg:
                        self._guidance_scale = guidance_scale_at(
                            guidance_scale,
                            timestep=t,
                            step_index=i,
                            num_inference_steps=steps,
                            schedule=schedule,
                        )
                        v = apply_guidance(v, self._guidance_scale)
                back = timesteps[i - 1] if i > 0 else None
                latents, old_x0 = sampler.step(
                    v, latents, t, timestep_back=back, old_pred_x0=old_x0, generator=generator
                )
                latents = latents.to(embeds.dtype)
                check_finite(
                    latents, where=f"the latents after step {i} (t={int(t)})", dtype=self.dtype
                )
                if callback is not None:
                    latents, embeds = self._step_callback(
                        callback, callback_names, i, t, latents, embeds, do_cfg
                    )
        finally:
            self.transformer.release()
            if cached and report is not None:
                report.cache = cache_state.report()
        return latents

    def _step_callback(
        self,
        callback: Callable[..., dict[str, Any]],
        names: tuple[str, ...],
        step: int,
        t: torch.Tensor,
        latents: torch.Tensor,
        embeds: torch.Tensor,
        do_cfg: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """diffusers' ``callback_on_step_end(pipe, step, timestep, callback_kwargs)``: the returned
        tensors replace the loop's. ``prompt_embeds`` is the transformer's text batch (with guidance
        ``[uncond; cond]``, as in the reference); ``negative_prompt_embeds`` its unconditional half
        (None without guidance), which a returned tensor replaces (the reference drops it)."""
        half = embeds.shape[0] // 2
        current = {
            "latents": latents,
            "prompt_embeds": embeds,
            "negative_prompt_embeds": embeds[:half] if do_cfg else None,
        }
        out = callback(self, step, t, {k: current[k] for k in names})
        if not isinstance(out, dict):
            raise invalid(
                "callback_on_step_end",
                callback,
                f"must return a dict, returned {type(out).__name__}",
                TypeError,
            )
        unknown = [k for k in out if k not in names]
        if unknown:
            raise invalid(
                "callback_on_step_end",
                callback,
                f"returned key(s) {unknown} not in callback_on_step_end_tensor_inputs={list(names)}",
            )
        for key, value in out.items():
            old = current[key]
            if value is old:
                continue
            if not isinstance(value, torch.Tensor) or old is None or value.shape != old.shape:
                shape = None if old is None else tuple(old.shape)
                raise invalid(
                    "callback_on_step_end",
                    callback,
                    f"returned {key} must be a tensor of shape {shape} at step {step}",
                )
        latents = out.get("latents", latents).to(latents.dtype)
        embeds = out.get("prompt_embeds", embeds).to(embeds.dtype)
        if (
            "negative_prompt_embeds" in out
            and out["negative_prompt_embeds"] is not current["negative_prompt_embeds"]
        ):
            embeds = torch.cat(
                [out["negative_prompt_embeds"].to(embeds.dtype), embeds[half:]], dim=0
            )
        return latents, embeds
