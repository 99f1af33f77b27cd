"""Fixed-seed validation videos every N steps, rendered by the inference pipeline.

Every ``every_n_steps`` optimizer steps (rank 0) the transformer being trained is exported as a
model folder (``DiTModule.export_model_folder``: EMA weights when the module validates with them,
the data module's frozen VAE / text encoder / tokenizer), opened with
:func:`cogvx.infer.build_pipeline` and run on the fixed prompts with one seed, so successive steps
are comparable. Each prompt gives ``validation/step=NNNNNNNN/NN.mp4`` and a contact-sheet
``NN.png`` (evenly spaced frames side by side). The exported folder is temporary.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from cogvx.videoio import write_image, write_video

__all__ = ["ValidationVideos"]


class ValidationVideos(L.Callback):
    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        every_n_steps: int,
        prompts: list[str],
        seed: int = 0,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        steps: int = 20,
        guidance_scale: float = 6.0,
        fps: int = 8,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(
                f"validation.every_n_steps={every_n_steps}: must be >= 1 (0 turns validation off)"
            )
        if not prompts:
            raise ValueError(
                "validation.prompts=[]: give at least one prompt, e.g. validation.prompts='[a red circle]'"
            )
        self.out_dir = Path(out_dir)
        self.every_n_steps = every_n_steps
        self.prompts = list(prompts)
        self.seed = seed
        self.call: dict[str, Any] = dict(
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
        )
        self.fps = fps

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and trainer.is_global_zero:
            self.render(trainer, pl_module, step)

    def render(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> Path:
        """Write this step's videos and contact sheets; returns their folder."""
        from cogvx.infer import build_pipeline
        from cogvx.infer.outputs import contact_sheet

        folders = getattr(trainer.datamodule, "folders", None)
        if not hasattr(pl_module, "export_model_folder") or not folders:
            raise ValueError(
                "validation.every_n_steps needs a transformer module (model=dit_*) trained on a "
                "cogvx.train.VideoDataModule (its frozen encoders make the model folder)"
            )
        out = self.out_dir / f"step={step:08d}"
        out.mkdir(parents=True, exist_ok=True)
        call = {k: v for k, v in self.call.items() if v is not None}
        was_training = pl_module.training
        with tempfile.TemporaryDirectory(dir=self.out_dir, prefix=".model-") as tmp:
            folder = pl_module.export_model_folder(
                Path(tmp) / "model", **{f"{k}_folder": v for k, v in folders.items()}
            )
            pipe = build_pipeline(folder, dtype="fp32", device=str(pl_module.device))
            for i, prompt in enumerate(self.prompts):
                generator = torch.Generator().manual_seed(self.seed)
                result = pipe(
                    prompt=prompt, generator=generator, output_type="np", progress=False, **call
                )
                frames = (np.clip(result.frames[0], 0, 1) * 255).round().astype(np.uint8)
                write_video(out / f"{i:02d}.mp4", frames, self.fps)
                write_image(out / f"{i:02d}.png", contact_sheet(frames))
            del pipe
        pl_module.train(was_training)
        return out
