"""The demo's model: its pipelines loaded once, one request -> one run folder (no gradio).

A :class:`DemoModel` opens a model folder as every task its transformer runs, sharing one set of
weights: a 1x-channel transformer runs text-to-video and video-to-video (the video-to-video
pipeline loads the VAE encoder too, and the text-to-video pipeline reuses its components); a
2x-channel one runs image-to-video (docs/pipelines.md). :meth:`DemoModel.run` checks a
:class:`GenerationRequest` against the model's choices (:mod:`cogvx.demo.choices`), runs the
pipeline with a per-step callback, and writes the video, its GIF, a contact sheet and the run's
``generation.json`` with :func:`cogvx.infer.outputs.write_run_outputs` into a new folder under the
output folder, each file written to a temporary name and renamed into place.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cogvx.demo.choices import ModelChoices, format_size, model_choices
from cogvx.demo.uploads import UploadLimits, load_image, load_video

if TYPE_CHECKING:
    from cogvx.demo.worker import Job

__all__ = [
    "MAX_SEED",
    "MAX_STEPS",
    "DemoModel",
    "GenerationRequest",
    "GenerationResult",
    "RequestError",
    "random_seed",
]

MAX_SEED = 2**32 - 1  # shown in a number box; torch.Generator.manual_seed takes any of them
MAX_STEPS = 200


class RequestError(ValueError):
    """A request the demo refuses before any work; ``str(e)`` names the field and what is valid."""


def random_seed() -> int:
    """A fresh seed in ``[0, MAX_SEED]`` (shown on the page, so it can be reused)."""
    return random.SystemRandom().randint(0, MAX_SEED)


@dataclass(frozen=True)
class GenerationRequest:
    """One request from the page. ``image``/``video``: uploaded file paths (i2v / v2v)."""

    task: str
    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 25
    guidance_scale: float = 6.0
    dynamic_cfg: bool = False
    num_frames: int | None = None
    size: str | None = None  # "HxW", one of the model's choices
    strength: float = 0.8
    image: str | None = None
    video: str | None = None
    upsample: bool = False


@dataclass(frozen=True)
class GenerationResult:
    """The files of one run and its ``generation.json`` entry."""

    folder: Path
    video: Path
    gif: Path | None
    sheet: Path
    record_file: Path
    record: dict[str, Any]

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.video, self.gif, self.record_file) if p is not None]


def _sibling(cls: type, pipe: Any) -> Any:
    """A pipeline of another task over ``pipe``'s loaded components (no second load)."""
    return cls(
        text_encoder=pipe.text_encoder,
        transformer=pipe.transformer,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        transformer_config=pipe.transformer_config,
        vae_info=pipe.vae_info,
        text_encoder_config=pipe.text_encoder_config,
        device=pipe.device,
        torch_dtype=pipe.dtype,
    )


class DemoModel:
    """A model folder loaded for the demo, writing runs under ``output_dir``.

    ``upsampler``: a :class:`cogvx.captioner.PromptUpsampler` (or any callable taking a list of
    prompts and returning results with a ``.prompt``), used when a request asks for it.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        output_dir: str | os.PathLike[str],
        *,
        device: str = "auto",
        dtype: str = "auto",
        shipped: bool = False,
        max_frames: int | None = None,
        limits: UploadLimits | None = None,
        upsampler: Any = None,
    ) -> None:
        from cogvx.infer.pipelines import (
            TextToVideoPipeline,
            build_pipeline,
        )

        self.choices: ModelChoices = model_choices(model, max_frames=max_frames, shipped=shipped)
        self.output_dir = Path(output_dir).resolve()
        self.limits = limits if limits is not None else UploadLimits()
        self.upsampler = upsampler
        tasks = self.choices.task_names
        self.pipelines: dict[str, Any] = {}
        if "v2v" in tasks:  # loads the VAE encoder and decoder; t2v shares them
            v2v = build_pipeline(model, task="v2v", device=device, dtype=dtype)
            self.pipelines["v2v"] = v2v
            if "t2v" in tasks:
                self.pipelines["t2v"] = _sibling(TextToVideoPipeline, v2v)
        else:
            for task in tasks:
                self.pipelines[task] = build_pipeline(model, task=task, device=device, dtype=dtype)
        self._count = 0
        self._count_lock = threading.Lock()

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this model runs, in :data:`cogvx.infer.tasks.TASKS` order."""
        from cogvx.infer.tasks import TASKS

        return tuple(t for t in TASKS if t in self.pipelines)

    # ---- checking a request ----------------------------------------------------------------------

    def check(self, request: GenerationRequest) -> tuple[int, int, int]:
        """Refuse a bad request (:class:`RequestError`); returns ``(num_frames, height, width)``."""
        c = self.choices
        if request.task not in self.pipelines:
            raise RequestError(f"task={request.task!r}: this model runs {', '.join(self.tasks)}")
        if not isinstance(request.prompt, str) or not request.prompt.strip():
            raise RequestError("prompt: required (type what the video should show)")
        seed = request.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise RequestError(f"seed={seed!r}: an integer in [0, {MAX_SEED}]")
        steps = request.steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise RequestError(f"steps={steps!r}: an integer in [1, {MAX_STEPS}]")
        g = request.guidance_scale
        if not isinstance(g, (int, float)) or not 0 <= g <= 50:  # NaN fails both comparisons
            raise RequestError(f"guidance={g!r}: a number in [0, 50]")
        frames = c.default_frames if request.num_frames is None else request.num_frames
        if frames not in c.frames:
            raise RequestError(f"frames={frames!r}: one of {', '.join(map(str, c.frames))}")
        size = c.default_size if request.size is None else None
        for hw in c.sizes:
            if request.size == format_size(*hw):
                size = hw
        if size is None:
            valid = ", ".join(format_size(*hw) for hw in c.sizes)
            raise RequestError(f"size={request.size!r}: one of {valid}")
        if request.task == "v2v" and not 0 < request.strength <= 1:
            raise RequestError(f"strength={request.strength!r}: a number in (0, 1]")
        wanted = {"i2v": "image", "v2v": "video"}.get(request.task)
        for kind in ("image", "video"):
            given = getattr(request, kind)
            if kind == wanted and not given:
                raise RequestError(f"{kind}: required for {request.task} (upload one)")
        if request.upsample and self.upsampler is None:
            raise RequestError("upsample: no prompt upsampler is configured for this demo")
        return frames, size[0], size[1]

    # ---- running one --------------------------------------------------------------------------

    def _new_folder(self) -> Path:
        """A new run folder ``<output_dir>/<time>-<n>`` (never an existing one)."""
        with self._count_lock:
            while True:
                self._count += 1
                folder = self.output_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{self._count:04d}"
                if not folder.exists():
                    return folder

    def run(self, request: GenerationRequest, job: Job | None = None) -> GenerationResult:
        """Check, generate and write one run (``job`` receives the per-step progress)."""
        import torch

        from cogvx.infer.outputs import plan_outputs, versions, write_run_outputs

        num_frames, height, width = self.check(request)
        pipe = self.pipelines[request.task]
        kwargs: dict[str, Any] = {}
        if request.task == "i2v":
            from PIL import Image

            kwargs["image"] = Image.fromarray(load_image(request.image, self.limits))
        elif request.task == "v2v":
            from PIL import Image

            frames = load_video(request.video, self.limits, num_frames)
            kwargs["video"] = [Image.fromarray(f) for f in frames]
            kwargs["strength"] = float(request.strength)
        if request.task != "v2v":
            kwargs["num_frames"] = num_frames

        prompt = request.prompt.strip()
        original = None
        if request.upsample:
            if job is not None:
                job.stage("upsampling the prompt")
            [result] = self.upsampler([prompt])
            original, prompt = prompt, result.prompt
        negative = request.negative_prompt.strip() or None
        steps = request.steps

        def on_step(_pipe: Any, i: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if job is not None:
                job.step(i + 1, steps)
            return tensors

        folder = self._new_folder()
        planned = plan_outputs(folder / "video.mp4", overwrite=False, parameter="output")
        out = pipe(
            prompt=prompt,
            negative_prompt=negative,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=float(request.guidance_scale),
            use_dynamic_cfg=bool(request.dynamic_cfg),
            generator=torch.Generator().manual_seed(request.seed),
            callback_on_step_end=on_step,
            output_type="np",
            progress=False,
            **kwargs,
        )
        if job is not None:
            job.stage("writing the video")
        video = (np.asarray(out.frames)[0] * 255.0).round().clip(0, 255).astype(np.uint8)
        shape = out.shape
        record = {
            "prompt": prompt,
            "original_prompt": original,
            "negative_prompt": negative,
            "seed": request.seed,
            "steps": steps,
            "guidance_scale": float(request.guidance_scale),
            "guidance_schedule": "dynamic" if request.dynamic_cfg else "constant",
            "sampler": pipe.scheduler.sampler,
            "task": request.task,
            "model": str(self.choices.root.resolve()),
            "num_frames": shape.num_frames,
            "height": shape.height,
            "width": shape.width,
            "fps": self.choices.fps,
            "dtype": str(pipe.dtype).removeprefix("torch."),
            "image": Path(request.image).name if request.task == "i2v" else None,
            "video_input": Path(request.video).name if request.task == "v2v" else None,
            "strength": float(request.strength) if request.task == "v2v" else None,
            "app": "cogvx demo",
            "versions": versions(),
        }
        folder.mkdir(parents=True, exist_ok=False)
        write_run_outputs(planned, video, self.choices.fps, record)
        from cogvx.infer.outputs import read_records

        entry = read_records(planned.record)[planned.video.name]
        return GenerationResult(
            folder, planned.video, planned.preview, planned.sheet, planned.record, entry
        )
