"""Batch generation from a prompt file with a Lightning predict loop across the available devices.

The prompt file is plain text (one prompt per line; blank lines and ``#`` comments skipped) or JSON
Lines (``{"prompt": ..., "seed": ..., "negative_prompt": ...}``, ``.jsonl``). Prompt ``i`` is written
to ``<output dir>/<i:04d>.<format>`` with seed ``seed`` from its record or ``base seed + i``, so a
rerun, or a run on another number of devices, writes the same videos. Each device process builds
its own pipeline on its own device; Lightning's distributed sampler splits the prompts.

Resume and interruption (docs/reliability.md): beside each video, ``<i:04d>.json`` records its
prompt, seed and settings, written *before* the video; a video counts as complete when it exists
and its record matches this run, and is skipped on a rerun. A video whose record is missing or
differs is an earlier, different output: refused unless ``overwrite``. Every file is written to a
dot-file ``.<i:04d>.*.partial.<ext>`` and renamed, so a killed run leaves no file a collector lists
as a video; the next run removes those stale partials of its own outputs first. Ctrl-C stops after
reporting which videos finished (exit 130 through the dispatcher).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from cogvx.cli.usage import UsageError

__all__ = [
    "BatchPlan",
    "GenerationModule",
    "PromptRecord",
    "plan_batch",
    "read_prompt_file",
    "run_batch",
]


@dataclass(frozen=True)
class PromptRecord:
    index: int
    prompt: str
    seed: int
    negative_prompt: str | None = None


def read_prompt_file(path: str | os.PathLike[str], *, base_seed: int = 0) -> list[PromptRecord]:
    """Read a prompt file (see the module docstring); errors name the line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"prompt file not found: {p}")
    records: list[PromptRecord] = []
    jsonl = p.suffix.lower() == ".jsonl"
    for lineno, line in enumerate(p.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or (not jsonl and text.startswith("#")):
            continue
        index = len(records)
        if jsonl:
            try:
                item = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{lineno}: not valid JSON: {e}") from e
            if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
                raise ValueError(f'{p}:{lineno}: expected an object with a "prompt" string')
            unknown = sorted(set(item) - {"prompt", "seed", "negative_prompt"})
            if unknown:
                raise ValueError(f"{p}:{lineno}: unknown key(s) {unknown}")
            seed = item.get("seed", base_seed + index)
            if not isinstance(seed, int):
                raise ValueError(f"{p}:{lineno}: seed must be an integer, got {seed!r}")
            records.append(PromptRecord(index, item["prompt"], seed, item.get("negative_prompt")))
        else:
            records.append(PromptRecord(index, text, base_seed + index))
    if not records:
        raise ValueError(f"prompt file {p} has no prompts")
    return records


class _Prompts(Dataset):
    def __init__(self, records: list[PromptRecord]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        # A plain dict: Lightning rebuilds batch containers when moving them to the device.
        return dataclasses.asdict(self.records[i])


@dataclass(frozen=True)
class BatchPlan:
    """Which records still need generating, which are complete, and the stale partials removed."""

    todo: list[PromptRecord]
    done: list[Path]
    removed_partials: list[Path]


def _record_of(record: PromptRecord, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": record.prompt,
        "negative_prompt": record.negative_prompt,
        "seed": record.seed,
        **settings,
    }


def _target(output_dir: Path, record: PromptRecord, suffix: str) -> tuple[Path, Path]:
    stem = f"{record.index:04d}"
    return output_dir / f"{stem}{suffix}", output_dir / f"{stem}.json"


def plan_batch(
    records: list[PromptRecord],
    output_dir: str | os.PathLike[str],
    *,
    suffix: str = ".mp4",
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> BatchPlan:
    """Remove this batch's stale partial files and split the records into complete and to-do.

    Raises :class:`UsageError` (before any work) when a video exists from a different run.
    """
    out = Path(output_dir)
    settings = settings or {}
    removed: list[Path] = []
    todo: list[PromptRecord] = []
    done: list[Path] = []
    for record in records:
        video, meta = _target(out, record, suffix)
        for stale in out.glob(f".{video.stem}.*.partial*") if out.is_dir() else []:
            stale.unlink(missing_ok=True)
            removed.append(stale)
        if not video.exists():
            todo.append(record)
            continue
        try:
            earlier = json.loads(meta.read_text())
        except (OSError, ValueError):
            earlier = None
        if earlier == _record_of(record, settings):
            done.append(video)
        elif overwrite:
            todo.append(record)
        else:
            why = (
                "has no record" if earlier is None else "was made with another prompt/seed/settings"
            )
            raise UsageError(
                "--output",
                str(out),
                f"{video} exists and {why}; pass --overwrite or choose another folder",
            )
    return BatchPlan(todo, done, removed)


class GenerationModule(L.LightningModule):
    """``predict_step`` generates and writes one prompt's video; returns the path written.

    ``build`` makes the pipeline for a device (called once per process, on its device);
    ``call_kwargs`` are the pipeline call's fixed arguments (size, steps, guidance, ...);
    ``settings`` go into each video's JSON record (the resume key, with prompt and seed).
    """

    def __init__(
        self,
        build: Callable[[torch.device], Any],
        call_kwargs: dict[str, Any],
        output_dir: Path,
        *,
        suffix: str = ".mp4",
        fps: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.build = build
        self.call_kwargs = call_kwargs
        self.output_dir = Path(output_dir)
        self.suffix = suffix
        self.fps = fps
        self.settings = settings or {}
        self.pipe = None
        self.written: list[Path] = []
        self.pending: tuple[Path, tuple[int, int, int] | None] | None = None

    def on_predict_start(self) -> None:
        self.pipe = self.build(self.device)

    def predict_step(self, batch: list[dict[str, Any]], batch_idx: int) -> list[str]:
        import numpy as np

        from cogvx.infer.outputs import write_record
        from cogvx.videoio import write_video

        written = []
        for item in batch:
            record = PromptRecord(**item)
            generator = torch.Generator().manual_seed(record.seed)
            kwargs = dict(self.call_kwargs)
            if record.negative_prompt is not None:
                kwargs["negative_prompt"] = record.negative_prompt
            result = self.pipe(
                prompt=record.prompt,
                generator=generator,
                output_type="np",
                progress=False,
                **kwargs,
            )
            frames = np.asarray(getattr(result, "frames", result))[0]
            frames = (frames * 255.0).round().clip(0, 255).astype(np.uint8)
            video, meta = _target(self.output_dir, record, self.suffix)
            write_record(meta, _record_of(record, self.settings))  # first: see the module doc
            fps = self.fps if self.fps is not None else self.pipe.fps
            # A Ctrl-C can land between the atomic rename inside write_video and the append:
            # `pending` lets the interrupt report count a video that did reach the disk.
            self.pending = (video, _file_identity(video))
            write_video(video, frames, fps)
            self.written.append(video)
            self.pending = None
            written.append(str(video))
        return written

    def finish_pending(self) -> None:
        """After an interrupt: count the video being written if its file was replaced."""
        if self.pending is not None:
            video, before = self.pending
            if video not in self.written and _file_identity(video) not in (None, before):
                self.written.append(video)
            self.pending = None


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of ``path``, or None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def run_batch(
    records: list[PromptRecord],
    build: Callable[[torch.device], Any],
    call_kwargs: dict[str, Any],
    output_dir: str | os.PathLike[str],
    *,
    suffix: str = ".mp4",
    fps: int | None = None,
    accelerator: str = "auto",
    devices: str | int = "auto",
    progress: bool = True,
    settings: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Generate every record not already complete with a Lightning predict loop; returns the paths
    written by this rank. Complete outputs are skipped and reported on stderr; on Ctrl-C the
    finished videos are reported and ``KeyboardInterrupt`` is raised."""
    out = Path(output_dir)
    plan = plan_batch(records, out, suffix=suffix, settings=settings, overwrite=overwrite)
    if plan.removed_partials:
        print(
            f"removed {len(plan.removed_partials)} stale partial file(s) in {out}", file=sys.stderr
        )
    if plan.done:
        print(f"skipping {len(plan.done)} complete video(s) in {out}", file=sys.stderr)
    if not plan.todo:
        return []
    out.mkdir(parents=True, exist_ok=True)
    module = GenerationModule(build, call_kwargs, out, suffix=suffix, fps=fps, settings=settings)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    loader = DataLoader(_Prompts(plan.todo), batch_size=1, collate_fn=list, shuffle=False)
    try:
        trainer.predict(module, dataloaders=loader, return_predictions=False)
    except SystemExit:
        # Lightning turns Ctrl-C into sys.exit(1) after ignoring SIGINT; restore both.
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        module.finish_pending()
        done = len(plan.done) + len(module.written)
        print(
            f"interrupted: {done} of {len(records)} video(s) complete in {out} "
            f"({len(module.written)} new this run); rerun the same command to resume",
            file=sys.stderr,
        )
        for p in module.written:
            print(p, flush=True)
        raise KeyboardInterrupt from None
    return [str(p) for p in module.written]
