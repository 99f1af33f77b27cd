"""A 2-process CPU DDP training job (gloo) for test_ddp.py: ``python ddp_job.py OUT FOLDER MANIFEST``.

Lightning's DDP strategy re-launches this script for rank 1. Each rank writes ``OUT/rank<r>.json``
(per step: the pack's dataset indices and the drawn timesteps; its timestep interval) and
``OUT/rank<r>.safetensors`` (its parameters after training).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from safetensors.torch import save_file

from cogvx.expert_dit import DiTConfig
from cogvx.train import DiTModule, VideoDataModule


class Record(L.Callback):
    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.steps.append(
            {"indices": list(batch.packed.indices), "timesteps": module.last_timesteps.tolist()}
        )


def main(out: str, folder: str, manifest: str) -> None:
    torch.set_num_threads(1)
    cfg = DiTConfig.from_dict(json.loads((Path(folder) / "transformer/config.json").read_text()))
    module = DiTModule(transformer=cfg, seed=0)
    data = VideoDataModule(
        manifest=manifest,
        model_folder=folder,
        short_side=32,
        max_frames=9,
        fps=8.0,
        max_text_length=cfg.max_text_seq_length,
        token_budget=30,
        seed=0,
    )
    record = Record()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(process_group_backend="gloo"),
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[record],
    )
    trainer.fit(module, data)
    rank = trainer.global_rank
    lo, hi = module.timesteps.interval(rank, trainer.world_size)
    Path(out, f"rank{rank}.json").write_text(
        json.dumps({"world_size": trainer.world_size, "interval": [lo, hi], "steps": record.steps})
    )
    state = {k: v.detach().contiguous() for k, v in module.dit.state_dict().items()}
    save_file(state, str(Path(out, f"rank{rank}.safetensors")))


if __name__ == "__main__":
    main(*sys.argv[1:4])
