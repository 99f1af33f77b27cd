"""Lightning callbacks and the checkpoint writer of a ``cogvx train`` run.

- :class:`AtomicCheckpointIO`: ``torch.save`` into a temporary file beside the target, then one
  ``os.replace`` (``cogvx.videoio.atomic_output``): a kill mid-write leaves the old checkpoint set
  intact, never a truncated ``.ckpt`` (Lightning's own writer buffers the whole checkpoint in memory
  and moves it from the system temp folder).
- :class:`StepCheckpoint`: ``checkpoints/step=00000020.ckpt`` every N optimizer steps and at the end,
  a ``last.ckpt`` symbolic link swapped atomically, the newest ``keep`` files kept.
- :func:`newest_checkpoint`: what ``resume=auto`` continues from.
- :class:`RNGState`: the global Python/NumPy/torch generators saved in every checkpoint and restored
  on resume, so a resumed run draws the same numbers as an uninterrupted one.
- :class:`NonFiniteLoss`: a NaN/inf loss stops the run or skips its optimizer step (``nan_policy``),
  naming the step.
- :class:`TrainingSignals`: learning rate, samples/s, real tokens/s and peak memory per step, next to
  the module's own loss, per-timestep-bucket losses and grad norm (docs/training.md).
"""

from __future__ import annotations

import os
import random
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from cogvx.videoio import atomic_output

__all__ = [
    "AtomicCheckpointIO",
    "NonFiniteLoss",
    "NonFiniteLossError",
    "RNGState",
    "StepCheckpoint",
    "TrainingSignals",
    "checkpoint_step",
    "newest_checkpoint",
]

_CKPT = re.compile(r"^step=(\d+)\.ckpt$")
LAST = "last.ckpt"
PENDING_SUFFIX = ".pending"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes each ``.ckpt`` atomically (temp file + rename)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike[str], storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                f"storage_options={storage_options!r}: not supported (local files only)"
            )
        with atomic_output(path) as tmp:
            torch.save(checkpoint, tmp)


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """The optimizer step in a ``step=NNNNNNNN.ckpt`` name, or ``None`` for any other name."""
    m = _CKPT.match(Path(path).name)
    return int(m.group(1)) if m else None


def newest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """The ``step=*.ckpt`` file with the highest step in ``folder`` (``None`` if there is none).

    Temporary files of an interrupted write start with a dot and never match.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(checkpoint_step(p), p) for p in folder.iterdir() if checkpoint_step(p) is not None]
    return max(found)[1] if found else None


def _link_atomically(link: Path, target_name: str) -> None:
    """Point ``link`` at ``target_name`` (same folder): a new link under a temporary name, renamed."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


class StepCheckpoint(L.Callback):
    """Save ``<dirpath>/step=NNNNNNNN.ckpt`` every ``every_n_steps`` optimizer steps and at the end.

    ``every_n_steps=0`` saves only when training ends. After each save ``last.ckpt`` links to the
    newest file and all but the newest ``keep`` are deleted (``keep=0`` keeps every file).

    A checkpoint is captured after its step (``on_train_batch_end``) but published -- renamed from
    a hidden ``.step=NNNNNNNN.ckpt.pending`` to its name -- only after the loggers are flushed at
    the start of the next step (or when training ends or stops on an exception). Lightning logs a
    step's metrics after ``on_train_batch_end``, so a checkpoint published at once could be on disk
    while its own step's log row was not: a kill in between lost that row for good, since the
    resumed run starts after it. Now a kill before the publish resumes from the previous
    checkpoint and logs those steps again.
    """

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        every_n_steps: int = 0,
        keep: int = 2,
        save_last: bool = True,
    ):
        if every_n_steps < 0:
            raise ValueError(
                f"checkpoint.every_n_steps={every_n_steps}: must be >= 0 (0: only at the end)"
            )
        if keep < 0:
            raise ValueError(f"checkpoint.keep={keep}: must be >= 0 (0: keep all)")
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.keep = keep
        self.save_last = save_last
        self._saved_step: int | None = None
        self._pending: tuple[Path, Path] | None = None

    def _save(self, trainer: L.Trainer, *, publish: bool) -> None:
        step = trainer.global_step
        if step == self._saved_step or trainer.sanity_checking:
            return
        self._publish(trainer)
        path = self.dirpath / f"step={step:08d}.ckpt"
        staged = path.with_name(f".{path.name}{PENDING_SUFFIX}")
        trainer.save_checkpoint(staged)
        self._saved_step = step
        self._pending = (staged, path)
        if publish:
            self._publish(trainer)

    def _publish(self, trainer: L.Trainer, *, barrier: bool = True) -> None:
        """Flush the loggers, then give the captured checkpoint its name (atomic rename)."""
        if self._pending is None:
            return
        staged, path = self._pending
        self._pending = None
        for logger in trainer.loggers:
            logger.save()
        if trainer.is_global_zero:
            os.replace(staged, path)
            if self.save_last:
                _link_atomically(self.dirpath / LAST, path.name)
            self._prune()
        if barrier:
            trainer.strategy.barrier("cogvx_checkpoint")

    def _prune(self) -> None:
        if self.keep == 0:
            return
        found = sorted(
            (checkpoint_step(p), p)
            for p in self.dirpath.iterdir()
            if checkpoint_step(p) is not None
        )
        for _, old in found[: -self.keep]:
            old.unlink(missing_ok=True)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Captured but never published by a killed run: the resume started before them.
        if trainer.is_global_zero and self.dirpath.is_dir():
            for stale in self.dirpath.glob(f".step=*.ckpt{PENDING_SUFFIX}"):
                stale.unlink(missing_ok=True)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._publish(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0:
            self._save(trainer, publish=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, publish=True)
        self._publish(trainer)  # the last step's own checkpoint, when it was due anyway

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # The captured state is complete (a step that ended); Ctrl-C or a stop keeps it. No
        # barrier: the other ranks may not be here.
        self._publish(trainer, barrier=False)


class RNGState(L.Callback):
    """Save the global RNG states (Python, NumPy, torch CPU and CUDA) in the checkpoint; restore them.

    The states are captured when the checkpoint is written (after a step) and put back just before
    the next training step of the resumed run, not when the checkpoint is loaded: creating the
    resumed run's data-loader iterator draws from the global generator (its base seed), which the
    uninterrupted run did at the start of the epoch. Stored as tensors and plain numbers only, so
    the checkpoint loads with ``torch.load``'s ``weights_only=True`` (Lightning's default).
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state: dict[str, Any] = {
            "python": random.getstate(),
            "numpy": {
                "kind": kind,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_batch_start(self, *args: Any) -> None:
        if self._pending is not None:
            self.apply(self._pending)
            self._pending = None

    @staticmethod
    def apply(state: dict[str, Any]) -> None:
        """Set the global generators to a :meth:`state_dict`."""
        random.setstate(state["python"])
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class NonFiniteLossError(RuntimeError):
    """The loss was NaN or inf and ``nan_policy=stop``."""


class NonFiniteLoss(L.Callback):
    """Watch the loss (and the gradients) of each step: ``policy="stop"`` raises, ``"skip"`` skips.

    Skipping drops every gradient before the optimizer step (``grad = None``), so AdamW leaves the
    weights and its moments untouched for that step; the learning-rate schedule still advances.
    The number of skipped steps is logged as ``train/nonfinite_skipped``.
    """

    def __init__(self, policy: str = "stop"):
        if policy not in ("stop", "skip"):
            raise ValueError(f"nan_policy={policy!r}: valid: stop | skip")
        self.policy = policy
        self.skipped = 0
        self._bad: str | None = None

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        value = loss.detach()
        self._bad = (
            None if bool(torch.isfinite(value).all()) else f"loss is {value.float().sum().item()}"
        )

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        bad = self._bad
        if bad is None:
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            if grads and not bool(
                torch.isfinite(torch.stack([g.detach().float().norm() for g in grads])).all()
            ):
                bad = "gradients are not finite"
        self._bad = None
        if bad is None:
            return
        step = trainer.global_step + 1
        if self.policy == "stop":
            raise NonFiniteLossError(
                f"step {step}: {bad} (nan_policy=stop; nan_policy=skip skips such steps); "
                f"the last checkpoint is before this step"
            )
        self.skipped += 1
        print(f"cogvx train: step {step}: {bad}; skipped (nan_policy=skip)", file=sys.stderr)
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None
        pl_module.log("train/nonfinite_skipped", float(self.skipped), on_step=True, on_epoch=False)

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = int(state_dict["skipped"])


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory of this process: CUDA max allocated on a GPU, peak RSS (VmHWM) on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


class TrainingSignals(L.Callback):
    """Per-step learning rate, samples/s, real tokens/s and peak memory, logged beside the loss.

    Throughput divides the module's ``train/samples`` and ``train/real_tokens`` (real: padding
    excluded) by the wall time between two step ends; the first step (compilation, warm-up) is
    not reported.
    """

    def __init__(self) -> None:
        self._last: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self._last is None:
            self._last = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        now = time.perf_counter()
        elapsed = now - self._last if self._last is not None else None
        self._last = now
        logs: dict[str, float] = {}
        if trainer.optimizers:
            logs["train/lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        metrics = trainer.callback_metrics
        if elapsed and elapsed > 0:
            for key, name in (
                ("train/samples", "train/samples_per_s"),
                ("train/real_tokens", "train/tokens_per_s"),
            ):
                if key in metrics:
                    logs[name] = float(metrics[key]) / elapsed
            logs["train/step_s"] = elapsed
        logs["train/peak_mem_gb"] = peak_memory_bytes(pl_module.device) / 2**30
        pl_module.log_dict(logs, on_step=True, on_epoch=False)
