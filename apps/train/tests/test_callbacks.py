"""Checkpoint writing, the NaN/inf policy and the RNG state, on the test-double module in-process."""

from __future__ import annotations

import os

import lightning as L
import pytest
import torch

from cogvx.train.callbacks import (
    AtomicCheckpointIO,
    NonFiniteLoss,
    NonFiniteLossError,
    RNGState,
    newest_checkpoint,
)
from cogvx.train.config import OptimConfig


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("interrupted mid-write")


def test_atomic_checkpoint_keeps_the_old_file_when_a_write_fails(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "step=00000001.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="interrupted mid-write"):
        io.save_checkpoint({"w": torch.zeros(3), "bad": _Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind


def test_newest_checkpoint_ignores_temporary_and_other_files(tmp_path):
    for name in (
        "step=00000002.ckpt",
        "step=00000010.ckpt",
        ".step=00000011.partial.ckpt",
        "x.ckpt",
    ):
        (tmp_path / name).write_bytes(b"")
    assert newest_checkpoint(tmp_path).name == "step=00000010.ckpt"
    assert newest_checkpoint(tmp_path / "missing") is None


def _fit(doubles, steps: int, **kwargs) -> torch.nn.Module:
    L.seed_everything(0, verbose=False)
    module = doubles.Regressor(optim=OptimConfig(lr=1e-2), **kwargs.pop("model", {}))
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )
    trainer.fit(module, datamodule=doubles.RegressionData())
    return module


def test_nan_policy_skip_leaves_weights_and_optimizer_untouched(doubles):
    before = _fit(doubles, 3)
    skipped = _fit(doubles, 4, model={"nan_at": 4}, callbacks=[NonFiniteLoss("skip")])
    assert all(
        torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), skipped.state_dict().values())
    )
    # and training goes on after the skipped step
    later = _fit(doubles, 5, model={"nan_at": 4}, callbacks=[NonFiniteLoss("skip")])
    assert not torch.equal(later.net[0].weight, before.net[0].weight)
    assert torch.isfinite(later.net[0].weight).all()


def test_nan_policy_stop_names_the_step(doubles):
    with pytest.raises(NonFiniteLossError, match=r"^step 3: loss is nan \(nan_policy=stop"):
        _fit(doubles, 5, model={"nan_at": 3}, callbacks=[NonFiniteLoss("stop")])


def test_nan_policy_stop_from_the_command_line(cogvx_train, tmp_path, capsys):
    run = tmp_path / "run"
    code = cogvx_train(
        "model=double",
        "data=double",
        "model.nan_at=3",
        "trainer.max_steps=5",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run}",
    )
    assert code == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith("cogvx train: error: step 3: loss is nan")
    )


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    callback = RNGState()
    torch.manual_seed(1)
    state = callback.state_dict()
    expected = (torch.rand(3), __import__("numpy").random.rand(3), __import__("random").random())
    torch.save({"rng": state}, tmp_path / "c.pt")
    RNGState.apply(torch.load(tmp_path / "c.pt", weights_only=True)["rng"])
    again = (torch.rand(3), __import__("numpy").random.rand(3), __import__("random").random())
    assert (
        torch.equal(expected[0], again[0])
        and (expected[1] == again[1]).all()
        and expected[2] == again[2]
    )
