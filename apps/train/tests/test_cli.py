"""``cogvx train`` end to end on the test-double module: run folders, multirun, resume, plot, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cogvx.train.logs import read_metrics

COMMON = (
    "model=double",
    "data=double",
    "optim.lr=1e-2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
)


def _config(run: Path) -> dict:
    return yaml.safe_load((run / ".hydra" / "config.yaml").read_text())


def test_single_run_writes_one_folder_and_learns(cogvx_train, tmp_path):
    run = tmp_path / "run"
    code = cogvx_train(
        *COMMON, "trainer.max_steps=40", "checkpoint.every_n_steps=10", f"hydra.run.dir={run}"
    )
    assert code == 0
    assert _config(run)["trainer"]["max_steps"] == 40
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt", "step=00000030.ckpt", "step=00000040.ckpt"]  # keep=2
    assert os.readlink(run / "checkpoints" / "last.ckpt") == "step=00000040.ckpt"
    assert (run / "loss.png").stat().st_size > 1000
    metrics = read_metrics(run)
    loss = metrics["train/loss"]
    assert sorted(loss) == list(range(1, 41))
    first, last = sum(loss[s] for s in range(1, 6)) / 5, sum(loss[s] for s in range(36, 41)) / 5
    assert last < 0.5 * first, (
        first,
        last,
    )  # the regression learns: mean loss of the last 5 steps halves
    for key in ("train/lr", "train/samples_per_s", "train/tokens_per_s", "train/peak_mem_gb"):
        assert len(metrics[key]) >= 39, key
    assert any(k.startswith("train/loss_bucket_") for k in metrics)


def test_multirun_one_folder_per_job(cogvx_train, tmp_path):
    sweep = tmp_path / "sweep"
    code = cogvx_train(
        "-m", *COMMON, "trainer.max_steps=3", "optim.lr=1e-3,3e-3", f"hydra.sweep.dir={sweep}"
    )
    assert code == 0
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == ["0", "1"]
    assert [_config(j)["optim"]["lr"] for j in jobs] == [1e-3, 3e-3]
    for j in jobs:
        assert (j / "checkpoints" / "step=00000003.ckpt").is_file()
        assert sorted(read_metrics(j)["train/loss"]) == [1, 2, 3]
    assert (sweep / "multirun.yaml").is_file()


def test_resume_auto_continues_and_never_refuses(cogvx_train, tmp_path, capsys):
    run = tmp_path / "run"
    assert cogvx_train(*COMMON, "trainer.max_steps=4", f"hydra.run.dir={run}") == 0
    # a second plain run into the same folder would train over its checkpoints: refused
    assert cogvx_train(*COMMON, "trainer.max_steps=8", f"hydra.run.dir={run}") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "cogvx train: error: resume=never: the run folder already has checkpoints"
    )
    assert cogvx_train(*COMMON, "trainer.max_steps=8", "resume=auto", f"hydra.run.dir={run}") == 0
    assert (run / "checkpoints" / "step=00000008.ckpt").is_file()
    assert sorted(read_metrics(run)["train/loss"]) == list(range(1, 9))


def test_plot_command(cogvx_train, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        cogvx_train(*COMMON, "trainer.max_steps=3", "logging.plot=false", f"hydra.run.dir={run}")
        == 0
    )
    assert not (run / "loss.png").exists()
    capsys.readouterr()
    assert cogvx_train("plot", str(run)) == 0
    assert capsys.readouterr().out.strip() == str(run / "loss.png")
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cogvx_train("plot", str(tmp_path / "nope")) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hiden=3", "model.hiden=3: "),
        (
            "+model.hiden=3",
            "model.hiden=3: unknown key (valid: hidden, dropout, nan_at, step_sleep, seed)",
        ),
        ("+trainer.max_stepz=3", "trainer.max_stepz=3: "),
        ("+new.key=1", "new"),
        (
            "trainer.max_steps=ten",
            "trainer.max_steps=ten: Value 'ten' of type 'str' could not be converted to Integer",
        ),
        ("model.hidden=1.5", "model.hidden=1.5: "),
        ("optim=nope", "optim=nope: choose from"),
        ("nan_policy=ignore", "nan_policy=ignore: valid: skip | stop"),
        ("seed=1,2", "seed=1,2: "),  # a sweep without -m
    ],
)
def test_compose_errors_are_one_line(cogvx_train, tmp_path, capsys, override, message):
    code = cogvx_train(*COMMON, override, f"hydra.run.dir={tmp_path / 'run'}")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"cogvx train: error: {message}"), err
    assert not (tmp_path / "run").exists()  # nothing ran


def test_sweep_checks_every_job_before_the_first(cogvx_train, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    code = cogvx_train(
        "-m", *COMMON, "trainer.max_steps=2", "model.hidden=8,oops", f"hydra.sweep.dir={sweep}"
    )
    assert code == 2
    assert "model.hidden=oops" in capsys.readouterr().err
    assert not sweep.exists()


def test_train_help_imports_no_heavy_module():
    """``cogvx train --help`` lists the experiments without importing torch, Lightning or Hydra."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cogvx.cli.main import main\n"
        "assert main(['train', '--help']) == 0\n"
        "heavy = ('torch', 'lightning', 'peft', 'transformers', 'hydra', 'omegaconf')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: cogvx train" in out.stdout and "tiny_dit" in out.stdout
    assert out.stderr.strip() == "[]"
