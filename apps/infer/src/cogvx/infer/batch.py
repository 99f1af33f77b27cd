"""Batch generation from a prompt file with a Lightning predict loop across the available devices.

The prompt file is plain text (one prompt per line; blank lines and ``#`` comments skipped) or JSON
Lines (``{"prompt": ..., "seed": ..., "negative_prompt": ...}``, ``.jsonl``). Prompt ``i`` is written
to ``<output dir>/<i:04d>.<format>`` with seed ``seed`` from its record or ``base seed + i``, so a
rerun, or a run on another number of devices, writes the same videos. Each device process builds
its own pipeline on its own device; Lightning's distributed sampler splits the prompts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["GenerationModule", "PromptRecord", "read_prompt_file", "run_batch"]


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


class GenerationModule(L.LightningModule):
    """``predict_step`` generates and writes one prompt's video; returns the path written.

    ``build`` makes the pipeline for a device (called once per process, on its device);
    ``call_kwargs`` are the pipeline call's fixed arguments (size, steps, guidance, ...).
    """

    def __init__(
        self,
        build: Callable[[torch.device], Any],
        call_kwargs: dict[str, Any],
        output_dir: Path,
        *,
        suffix: str = ".mp4",
        fps: int | None = None,
    ) -> None:
        super().__init__()
        self.build = build
        self.call_kwargs = call_kwargs
        self.output_dir = Path(output_dir)
        self.suffix = suffix
        self.fps = fps
        self.pipe = None

    def on_predict_start(self) -> None:
        self.pipe = self.build(self.device)

    def predict_step(self, batch: list[dict[str, Any]], batch_idx: int) -> list[str]:
        written = []
        for item in batch:
            record = PromptRecord(**item)
            generator = torch.Generator().manual_seed(record.seed)
            kwargs = dict(self.call_kwargs)
            if record.negative_prompt is not None:
                kwargs["negative_prompt"] = record.negative_prompt
            frames = self.pipe(prompt=record.prompt, generator=generator, **kwargs).frames
            target = self.output_dir / f"{record.index:04d}{self.suffix}"
            written += [str(p) for p in self.pipe.save_video(frames, target, fps=self.fps)]
        return written


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
) -> list[str]:
    """Generate every record with a Lightning predict loop; returns the paths written (this rank)."""
    module = GenerationModule(build, call_kwargs, Path(output_dir), suffix=suffix, fps=fps)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    )
    loader = DataLoader(_Prompts(records), batch_size=1, collate_fn=list, shuffle=False)
    results = trainer.predict(module, dataloaders=loader, return_predictions=True) or []
    return [path for batch in results for path in batch]
