"""One training run: a composed config and a run folder in, a fitted Lightning Trainer out.

The run folder (Hydra's ``hydra.run.dir`` or one multirun job folder) holds::

    .hydra/config.yaml       the composed config (written by Hydra)
    logs/metrics.csv         per-step signals (logs/ TensorBoard events with logging.logger=tensorboard)
    checkpoints/step=NNNNNNNN.ckpt, checkpoints/last.ckpt -> newest
    loss.png                 the loss plot (end of run; ``cogvx train plot RUN_DIR`` any time)
    validation/step=NNNNNNNN/*.mp4, *.png    fixed-seed validation videos (validation.every_n_steps)

``resume=auto`` continues the newest checkpoint of the run folder (a fresh start when it has none);
``resume=PATH`` continues a given ``.ckpt``. A run folder that already holds checkpoints is never
trained over from scratch: without ``resume`` the run refuses to start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from cogvx.train.callbacks import (
    AtomicCheckpointIO,
    NonFiniteLoss,
    RNGState,
    StepCheckpoint,
    TrainingSignals,
    newest_checkpoint,
)
from cogvx.train.config import OptimConfig, TrainerSettings
from cogvx.train.logs import RunCSVLogger
from cogvx.train.plot import plot_run

__all__ = [
    "RunResult",
    "build_callbacks",
    "build_module",
    "build_trainer",
    "check_token_geometry",
    "resolve_resume",
    "train",
]


@dataclass(frozen=True)
class RunResult:
    """What a finished run leaves: its folder, the newest checkpoint, the step reached, the plot."""

    run_dir: Path
    checkpoint: Path | None
    global_step: int
    plot: Path | None


def resolve_resume(resume: str, checkpoint_dir: Path) -> Path | None:
    """The checkpoint ``resume`` names: ``never`` -> None, ``auto`` -> the newest one, or a path."""
    existing = newest_checkpoint(checkpoint_dir)
    if resume == "never":
        if existing is not None:
            raise ValueError(
                f"resume=never: the run folder already has checkpoints ({existing}); pass resume=auto "
                f"to continue it, or a new hydra.run.dir"
            )
        return None
    if resume == "auto":
        return existing
    path = Path(resume)
    if path.is_dir():
        found = newest_checkpoint(path / "checkpoints") or newest_checkpoint(path)
        if found is None:
            raise ValueError(
                f"resume={resume!r}: no step=*.ckpt in that folder or its checkpoints/"
            )
        return found
    if not path.is_file():
        raise ValueError(
            f"resume={resume!r}: valid: never | auto | an existing .ckpt file or run folder"
        )
    return path


def optim_config(cfg: DictConfig) -> OptimConfig:
    """``cfg.optim`` as the :class:`OptimConfig` handed to the module (decay length = max_steps)."""
    optim: OptimConfig = OmegaConf.to_object(cfg.optim)
    optim.betas = tuple(optim.betas)
    if optim.max_steps < 0:
        optim.max_steps = int(cfg.trainer.max_steps)
    return optim


def build_module(cfg: DictConfig) -> L.LightningModule:
    """Instantiate ``cfg.model`` with ``optim=`` :func:`optim_config` (the module's optimizer settings)."""
    factory = instantiate(cfg.model, _partial_=True, _convert_="object")
    module = factory(optim=optim_config(cfg))
    if not isinstance(module, L.LightningModule):
        raise TypeError(
            f"model._target_={cfg.model._target_}: builds {type(module).__name__}, not a LightningModule"
        )
    return module


def build_callbacks(cfg: DictConfig, run_dir: Path) -> list[L.Callback]:
    """Checkpointing, RNG state, the NaN policy, signals and (when enabled) validation videos."""
    ck = cfg.checkpoint
    callbacks: list[L.Callback] = [
        StepCheckpoint(
            run_dir / "checkpoints",
            every_n_steps=ck.every_n_steps,
            keep=ck.keep,
            save_last=ck.save_last,
        ),
        RNGState(),
        NonFiniteLoss(cfg.nan_policy),
        TrainingSignals(),
    ]
    v = cfg.validation
    if v.every_n_steps:
        from cogvx.train.validation import ValidationVideos

        callbacks.append(
            ValidationVideos(
                run_dir / "validation",
                every_n_steps=v.every_n_steps,
                prompts=list(v.prompts),
                seed=v.seed,
                num_frames=v.num_frames,
                height=v.height,
                width=v.width,
                steps=v.steps,
                guidance_scale=v.guidance_scale,
                fps=v.fps,
            )
        )
    return callbacks


def _loggers(cfg: DictConfig, run_dir: Path) -> list[Logger]:
    """The CSV log (always: the loss plot and resume checks read it), plus TensorBoard by option."""
    loggers: list[Logger] = [RunCSVLogger(run_dir)]
    if cfg.logging.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=run_dir, name="logs", version="tensorboard"))
    return loggers


def build_trainer(cfg: DictConfig, run_dir: Path) -> L.Trainer:
    """A ``lightning.Trainer`` from ``cfg.trainer`` plus the run's callbacks, logger and checkpoint I/O."""
    settings: TrainerSettings = OmegaConf.to_object(cfg.trainer)
    kwargs: dict[str, Any] = dict(vars(settings))
    strategy = cfg.trainer.strategy
    if isinstance(strategy, DictConfig):
        kwargs["strategy"] = instantiate(strategy)
    if kwargs["log_every_n_steps"] is None:
        kwargs["log_every_n_steps"] = cfg.logging.every_n_steps
    return L.Trainer(
        **kwargs,
        default_root_dir=run_dir,
        callbacks=build_callbacks(cfg, run_dir),
        logger=_loggers(cfg, run_dir),
        enable_checkpointing=False,  # StepCheckpoint writes the checkpoints
        plugins=[AtomicCheckpointIO()],
    )


def check_token_geometry(module: L.LightningModule, data: L.LightningDataModule) -> None:
    """Refuse, before any data is encoded, a data module that patchifies latents differently from
    the transformer it feeds (``data.patch_size`` / ``data.patch_size_t`` against the model's);
    otherwise the first step fails deep inside the packed forward."""
    from cogvx.train.data import VideoDataModule
    from cogvx.train.dit import DiTModule

    if not (isinstance(module, DiTModule) and isinstance(data, VideoDataModule)):
        return  # not a transformer run (the VAE trainer has no token geometry)
    for key in ("patch_size", "patch_size_t"):
        want, got = getattr(module.config, key), getattr(data, key)
        if want != got:
            raise ValueError(
                f"data.{key}={got!r} but the transformer has {key}={want!r}: set "
                f"data.{key}={want!r} (latents are patchified in the data module)"
            )


def train(cfg: DictConfig, run_dir: str | os.PathLike[str]) -> RunResult:
    """Fit ``cfg.model`` on ``cfg.data`` in ``run_dir`` (resuming per ``cfg.resume``)."""
    run_dir = Path(run_dir)
    checkpoint_dir = run_dir / "checkpoints"
    ckpt_path = resolve_resume(cfg.resume, checkpoint_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg)
    data = instantiate(cfg.data, _convert_="object")
    check_token_geometry(module, data)
    trainer = build_trainer(cfg, run_dir)
    trainer.fit(module, datamodule=data, ckpt_path=str(ckpt_path) if ckpt_path else None)
    plot = None
    if cfg.logging.plot and trainer.is_global_zero and not cfg.trainer.fast_dev_run:
        plot = plot_run(run_dir)
    return RunResult(
        run_dir=run_dir,
        checkpoint=newest_checkpoint(checkpoint_dir),
        global_step=trainer.global_step,
        plot=plot,
    )
