"""Where the three models live during a run, and what each stage cost.

A pipeline runs three stages in order: text encoding (T5), denoising (transformer), decoding (VAE).
:class:`Residency` says where the weights are kept between them:

- ``resident``: all three loaded on the compute device for the pipeline's lifetime (fastest);
- ``offload``: all three kept in CPU memory, each moved to the compute device for its stage and back
  after it (saves accelerator memory; the same idea as diffusers' model CPU offload);
- ``staged``: each model is loaded from disk when its stage starts and freed when it ends, so the
  peak is the largest stage rather than the sum: a 5B model runs where its parts together do not fit
  (docs/pipelines.md §Staging and offload). Costs a load per stage and call.

:class:`StageReport` records wall time and peak memory (process RSS, and accelerator memory when
there is one) per stage. Per-stage peak RSS is opt-in (``StageReport(probe_rss=True)``): it resets
Linux's high-water mark (``/proc/self/clear_refs``); otherwise, and elsewhere, the column is the
lifetime peak.
"""

from __future__ import annotations

import contextlib
import gc
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

__all__ = [
    "Component",
    "Residency",
    "StageReport",
    "StageStats",
    "peak_rss",
    "stage_peak_rss",
]

T = TypeVar("T")


class Residency(StrEnum):
    """Where model weights are kept between stages (see the module docstring)."""

    RESIDENT = "resident"
    OFFLOAD = "offload"
    STAGED = "staged"


class Component(Generic[T]):
    """One model of a pipeline: loaded now, or loaded on demand by ``loader`` (staged residency).

    ``acquire(device)`` returns the model on ``device``; ``release()`` ends its stage: a staged model
    is dropped (and garbage-collected), an offloaded one goes back to the CPU, a resident one stays.
    ``on_load`` runs on every fresh load (e.g. to re-apply LoRA weights to a reloaded transformer).
    """

    def __init__(
        self,
        name: str,
        *,
        module: T | None = None,
        loader: Callable[[], T] | None = None,
        residency: Residency = Residency.RESIDENT,
    ) -> None:
        if module is None and loader is None:
            raise ValueError(f"component {name!r} needs a module or a loader")
        if residency is Residency.STAGED and loader is None:
            raise ValueError(f"component {name!r} cannot be staged without a loader")
        self.name = name
        self.loader = loader
        self.residency = Residency(residency)
        self.on_load: list[Callable[[T], None]] = []
        self._module = module if residency is not Residency.STAGED else None

    def set_residency(self, residency: Residency | str) -> None:
        """Change where the model lives between stages from now on (a loaded module that becomes
        staged is dropped; one that becomes offloaded goes to the CPU)."""
        residency = Residency(residency)
        if residency is Residency.STAGED and self.loader is None:
            raise ValueError(f"component {self.name!r} cannot be staged without a loader")
        self.residency = residency
        if self._module is not None and residency is not Residency.RESIDENT:
            self.release()

    def peek(self) -> T | None:
        """The module if it is loaded now, without loading it."""
        return self._module

    def acquire(self, device: torch.device | None = None) -> T:
        if self._module is None:
            assert self.loader is not None
            module = self.loader()
            for hook in self.on_load:
                hook(module)
            self._module = module
        if device is not None and self.residency is not Residency.RESIDENT:
            self._module.to(device)  # type: ignore[union-attr]
        return self._module

    def release(self) -> None:
        if self._module is None:
            return
        if self.residency is Residency.STAGED:
            self._module = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        elif self.residency is Residency.OFFLOAD:
            self._module.to("cpu")  # type: ignore[union-attr]
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


# ---- memory and time ---------------------------------------------------------------------------


# Resetting the kernel's high-water mark also resets ``ru_maxrss``; the largest mark seen before
# each reset is kept here so that :func:`peak_rss` stays the process-lifetime peak.
_PEAK_BEFORE_RESETS = 0


def _read_status(key: str) -> int | None:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return None


def stage_peak_rss() -> int:
    """Peak RSS in bytes since the last stage started (the lifetime peak where not resettable)."""
    hwm = _read_status("VmHWM:")
    if hwm is not None:
        return hwm
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def peak_rss() -> int:
    """Peak RSS of this process in bytes over its whole life (stage resets included)."""
    return max(_PEAK_BEFORE_RESETS, stage_peak_rss())


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where not possible."""
    global _PEAK_BEFORE_RESETS
    _PEAK_BEFORE_RESETS = peak_rss()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class StageStats:
    name: str
    seconds: float
    peak_rss_bytes: int
    peak_accelerator_bytes: int | None = None
    rss_is_lifetime_peak: bool = False


@dataclass
class StageReport:
    """Per-stage time and peak memory of one pipeline call (text encoding, denoising, decoding).

    ``probe_rss=True`` resets the kernel's RSS high-water mark at each stage start (it writes
    ``/proc/self/clear_refs``), so each stage reports its own peak; by default nothing is written
    and the peak RSS column is the process's peak so far (``rss_is_lifetime_peak``).
    """

    stages: list[StageStats] = field(default_factory=list)
    probe_rss: bool = False
    #: Per-step caching decisions of the denoising loop (a ``cogvx.expert_dit.caching.CacheReport``)
    #: when the call used step caching or a guidance plan; None otherwise.
    cache: Any = None

    @contextlib.contextmanager
    def stage(self, name: str, device: torch.device | None = None) -> Iterator[None]:
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        reset = _reset_peak_rss() if self.probe_rss else False
        start = time.perf_counter()
        try:
            yield
        finally:
            if cuda:
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            accel = torch.cuda.max_memory_allocated(device) if cuda else None
            self.stages.append(StageStats(name, seconds, stage_peak_rss(), accel, not reset))

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def format(self) -> str:
        """A small aligned table for the terminal."""
        lines = [f"{'stage':<14}{'time':>10}{'peak RSS':>12}{'peak GPU':>12}"]
        for s in self.stages:
            gpu = f"{s.peak_accelerator_bytes / 2**30:.2f} GiB" if s.peak_accelerator_bytes else "-"
            lines.append(
                f"{s.name:<14}{s.seconds:>9.2f}s{s.peak_rss_bytes / 2**30:>8.2f} GiB{gpu:>12}"
            )
        lines.append(f"{'total':<14}{self.total_seconds:>9.2f}s")
        if self.cache is not None:
            lines.append(self.cache.format())
        return "\n".join(lines)
