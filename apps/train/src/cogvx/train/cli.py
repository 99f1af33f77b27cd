"""``cogvx train``: Lightning training from Hydra configs, single runs and ``-m`` sweeps.

    cogvx train experiment=tiny_dit
    cogvx train experiment=tiny_dit trainer.max_steps=50 optim.lr=3e-4 seed=1
    cogvx train -m experiment=tiny_dit optim.lr=1e-4,3e-4          # one job folder per value
    cogvx train experiment=lora_5b model.model_folder=/models/CogVideoX-5b data.manifest=data/m.jsonl
    cogvx train experiment=tiny_dit hydra.run.dir=outputs/mine resume=auto   # continue a run folder
    cogvx train plot outputs/train/2026-12-01/10-00-00              # loss.png of a run folder

Every ``key=value`` argument is a Hydra override composed over ``cogvx/train/conf/train.yaml``
(groups ``model/``, ``data/``, ``trainer/``, ``optim/``, ``experiment/``). Every job of a sweep is
composed and checked before the first one starts, so a typo, an unknown key, a ``+new.key`` the
schema lacks or a wrong type fails at once with one line naming the key and the reason. Hydra's
own options go through: ``hydra.run.dir=...``, ``hydra.sweep.dir=...``, ``hydra/launcher=joblib``
(with the hydra-joblib-launcher plugin installed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cogvx.cli.usage import UsageError

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Hydra, OmegaConf and the schema (which imports the module classes' signatures) are imported
# inside the functions that use them, so ``cogvx train --help`` starts in well under a second.

__all__ = ["compose_config", "main"]

CONFIG_MODULE = "cogvx.train.conf"
CONFIG_NAME = "train"
SCHEMA_NAME = "train_schema"

USAGE = """\
usage: cogvx train [-m] [key=value ...]
       cogvx train plot RUN_DIR [--output PNG]

Train a CogVideoX transformer or VAE (Lightning) from Hydra configs.

  -m, --multirun   sweep: one job per combination of comma-separated values, each in its own folder
  key=value        Hydra overrides: experiment=tiny_dit trainer.max_steps=100 optim.lr=3e-4 seed=1
                   data.* model.* trainer.* (Lightning Trainer arguments) checkpoint.* logging.*
                   validation.* resume=never|auto|PATH nan_policy=stop|skip hydra.run.dir=DIR

experiments: {experiments}
"""


def _options(group: str) -> list[str]:
    from importlib.resources import files

    folder = files(CONFIG_MODULE).joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose ``train.yaml`` with ``overrides`` and check it (:func:`cogvx.train.config.check_config`)."""
    from cogvx.cli.hydra import compose
    from cogvx.train.config import TrainConfig, check_config, register_configs

    register_configs()
    cfg = compose(
        CONFIG_MODULE,
        CONFIG_NAME,
        overrides,
        schema=TrainConfig,
        schema_name=SCHEMA_NAME,
        job_name="train",
    )
    check_config(cfg)
    return cfg


def _task(cfg: DictConfig) -> int:
    from hydra.core.hydra_config import HydraConfig

    from cogvx.train.config import check_config
    from cogvx.train.run import train

    check_config(cfg)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    result = train(cfg, run_dir)
    print(f"{run_dir}: {result.global_step} steps, checkpoint {result.checkpoint}", file=sys.stderr)
    if result.plot is not None:
        print(result.plot, file=sys.stderr)
    return result.global_step


def _plot_main(args: list[str]) -> int:
    import argparse

    from cogvx.cli.usage import ArgumentParser
    from cogvx.train.plot import plot_run

    p: argparse.ArgumentParser = ArgumentParser(
        prog="cogvx train plot", description="Loss plot of a run folder."
    )
    p.add_argument("run_dir", help="a cogvx train run folder (holds logs/metrics.csv)")
    p.add_argument("--output", "-o", help="PNG path (default: RUN_DIR/loss.png)")
    ns = p.parse_args(args)
    if not Path(ns.run_dir).is_dir():
        raise UsageError("RUN_DIR", ns.run_dir, "not a folder")
    print(plot_run(ns.run_dir, ns.output))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "plot":
        return _plot_main(args[1:])
    if any(a in ("-h", "--help") for a in args):
        print(USAGE.format(experiments=", ".join(_options("experiment"))))
        return 0
    sweep = any(a in ("-m", "--multirun") for a in args)
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    flags = [a for a in overrides if a.startswith("-")]
    if flags:
        raise UsageError(
            flags[0],
            None,
            "unknown option (valid: -m/--multirun, key=value overrides, plot RUN_DIR)",
        )
    from cogvx.cli.hydra import multirun, run, sweep_jobs
    from cogvx.train.config import TrainConfig, register_configs

    register_configs()
    jobs = sweep_jobs(overrides) if sweep else [overrides]
    for job in jobs:  # every job composes and passes the checks before any of them runs
        compose_config(job)
    common = dict(schema=TrainConfig, schema_name=SCHEMA_NAME, job_name="train")
    if sweep:
        multirun(CONFIG_MODULE, CONFIG_NAME, overrides, _task, **common)
    else:
        run(CONFIG_MODULE, CONFIG_NAME, overrides, _task, **common)
    return 0
