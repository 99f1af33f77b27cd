"""Test doubles for the module-agnostic parts of ``cogvx train`` (CLI, checkpoints, resume, NaN policy).

:class:`Regressor` is a small LightningModule that learns a fixed linear map; it uses the global
torch RNG (dropout) and a per-step generator (input noise, "timesteps"), and logs the signals the
real modules log (``train/loss``, ``train/loss_bucket_i``, ``train/samples``, ``train/real_tokens``).
:class:`RegressionData` deals batches from a seeded per-epoch permutation and resumes at the
trainer's position (its ``state_dict``), as the real data module must.

Run as a script it is ``cogvx train`` with these two registered as ``model=double`` and
``data=double`` (the SIGKILL test runs it in a subprocess).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
import torch
from hydra.core.config_store import ConfigStore
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from cogvx.train.config import schema_for

__all__ = ["RegressionData", "Regressor", "register"]

IN, OUT = 8, 4


class Regressor(L.LightningModule):
    def __init__(
        self,
        hidden: int = 32,
        dropout: float = 0.1,
        nan_at: int | None = None,
        step_sleep: float = 0.0,
        seed: int = 0,
        optim: Any = None,
    ):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(IN, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, OUT)
        )
        self.nan_at = nan_at
        self.step_sleep = step_sleep  # seconds per step, so a test can kill the run mid-way
        self.seed = seed
        self.optim = optim

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        time.sleep(self.step_sleep)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.global_step)
        x = x + 0.01 * torch.randn(x.shape, generator=gen)
        per_sample = (self.net(x) - y).pow(2).mean(dim=1)
        loss = per_sample.mean()
        if self.nan_at is not None and self.global_step + 1 == self.nan_at:
            loss = loss * float("nan")
        buckets = torch.randint(0, 10, (len(x),), generator=gen)
        for b in range(
            10
        ):  # every bucket every step (NaN when empty): Lightning repeats stale keys
            hit = per_sample[buckets == b]
            self.log(
                f"train/loss_bucket_{b}",
                hit.mean().detach() if len(hit) else float("nan"),
                on_step=True,
            )
        self.log("train/loss", loss, on_step=True, prog_bar=True)
        self.log("train/samples", float(len(x)), on_step=True)
        self.log("train/real_tokens", float(x.numel()), on_step=True)
        return loss

    def configure_optimizers(self) -> Any:
        o = self.optim
        return torch.optim.AdamW(
            self.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, eps=o.eps
        )


class _Pairs(Dataset):
    def __init__(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, IN, generator=g)
        self.y = self.x @ torch.randn(IN, OUT, generator=g) / IN**0.5

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class _Batches(Sampler[list[int]]):
    """A seeded permutation per epoch, resumable at any batch of the run.

    ``data.position`` is the run-wide index of the next batch: each ``iter`` (one epoch of the
    Lightning loop) continues from it, so the k-th epoch draws permutation ``seed + k`` whether
    or not the run was resumed (the loader reads ahead, but an epoch's last batch leaves the
    position at the next epoch's start).
    """

    def __init__(self, data: RegressionData):
        self.data = data

    def __len__(self) -> int:
        return self.data.count // self.data.batch_size

    def __iter__(self):
        n = len(self)
        epoch, skip = divmod(self.data.position, n)
        perm = torch.randperm(
            self.data.count, generator=torch.Generator().manual_seed(self.data.seed + epoch)
        )
        for b in range(skip, n):
            self.data.position = epoch * n + b + 1
            yield perm[b * self.data.batch_size : (b + 1) * self.data.batch_size].tolist()


class RegressionData(L.LightningDataModule):
    def __init__(self, count: int = 64, batch_size: int = 4, seed: int = 0):
        super().__init__()
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.position = 0  # run-wide index of the next batch (see _Batches)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Pairs(self.count, self.seed), batch_sampler=_Batches(self))

    def state_dict(self) -> dict[str, Any]:
        # batches consumed = optimizer steps (no accumulation here); the loader is one batch ahead
        return {"consumed": self.trainer.global_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["consumed"])


def register() -> None:
    """``model=double`` and ``data=double`` as ConfigStore options (with their constructor schemas)."""
    cs = ConfigStore.instance()
    cs.store(group="model", name="double", node=schema_for(Regressor))
    cs.store(group="data", name="double", node=schema_for(RegressionData))


if __name__ == "__main__":
    import doubles  # the importable copy, so _target_ paths say doubles.Regressor

    from cogvx.cli.main import main
    from cogvx.train.cli import main as train_main

    doubles.register()
    sys.exit(main(["train", *sys.argv[1:]], commands={"train": train_main}))
