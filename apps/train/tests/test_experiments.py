"""Every ``conf/`` config composes and instantiates; a CPU ``fast_dev_run`` of each entry point.

Real-size experiments are built without real weights: from-scratch ones on the meta device,
folder-based ones (fine-tuning, LoRA) on a tiny model folder from ``cogvx.testing``.
"""

from __future__ import annotations

import inspect

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cogvx.cli.usage import UsageError
from cogvx.expert_dit import DiTConfig
from cogvx.train.cli import _options, compose_config
from cogvx.train.config import TrainerSettings
from cogvx.train.run import build_callbacks, build_module, optim_config

REQUIRED = {
    "tiny_dit",
    "tiny_vae",
    "tiny_lora",
    "lora_2b",
    "lora_5b",
    "full_ft_5b",
    "i2v_5b",
    "vae_finetune",
}
PRESETS = {
    "dit_2b": DiTConfig.cogvideox_2b(),
    "dit_5b": DiTConfig.cogvideox_5b(),
    "dit_5b_i2v": DiTConfig.cogvideox_5b_i2v(),
    "dit_1_5_5b": DiTConfig.cogvideox_1_5_5b(),
    "dit_1_5_5b_i2v": DiTConfig.cogvideox_1_5_5b_i2v(),
    "dit_tiny": DiTConfig.tiny(),
}


def test_required_experiments_and_stages_exist():
    names = set(_options("experiment"))
    assert names >= REQUIRED
    assert {n for n in names if n.startswith("progressive_")} == {
        "progressive_1_256",
        "progressive_2_480",
        "progressive_3_768",
        "progressive_4_hq",
    }


def test_trainer_settings_are_lightning_trainer_arguments():
    params = inspect.signature(L.Trainer.__init__).parameters
    for name in vars(TrainerSettings()):
        assert name in params, name
        assert getattr(TrainerSettings(), name) == params[name].default or name in {
            "accelerator",  # same defaults except where the schema documents its own
        }, name


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_dit_presets_are_the_reference_configs(preset):
    cfg = compose_config([f"model={preset}", "data=video"])
    assert instantiate(cfg.model.transformer) == PRESETS[preset]


def _overrides(name: str, folders: dict[str, str]) -> list[str]:
    """What a user adds on the command line for ``name`` (model folders, manifests), tiny here."""
    out = [f"experiment={name}"]
    try:
        cfg = compose_config(out)
    except UsageError as e:  # a key the user must give (data.manifest=???) is refused at compose
        if "data.manifest=???" not in str(e):
            raise
        out.append("data.manifest=unused.jsonl")
        cfg = compose_config(out)
    if cfg.task == "dit" and cfg.model.transformer is None:
        out.append(f"model.model_folder={folders['i2v' if 'i2v' in name else 't2v']}")
    if cfg.task == "vae" and cfg.model.vae is None:
        out.append(f"model.vae_folder={folders['t2v']}/vae")
    if (
        cfg.data._target_.endswith("VideoDataModule")
        and "manifest" in cfg.data
        and cfg.data.manifest is None
    ):
        out.append("data.manifest=unused.jsonl")  # read in setup(), not when the module is built
        if cfg.model.get("model_folder") is None:
            out.append(f"data.model_folder={folders['t2v']}")
    if cfg.data._target_.endswith("ClipDataModule") and OmegaConf.is_missing(cfg.data, "manifest"):
        out.append("data.manifest=unused.jsonl")
    return out


@pytest.mark.parametrize("name", _options("experiment"))
def test_experiment_composes_and_instantiates(name, tiny_t2v_folder, tiny_i2v_folder, tmp_path):
    folders = {"t2v": str(tiny_t2v_folder), "i2v": str(tiny_i2v_folder)}
    cfg = compose_config(_overrides(name, folders))
    real_size = (
        cfg.task == "dit"
        and cfg.model.transformer is not None
        and cfg.model.transformer.num_layers > 8
    )
    if real_size:
        with torch.device("meta"):  # a 5B model: shapes only, no memory
            module = build_module(cfg)
        assert all(p.is_meta for p in module.parameters())
    else:
        module = build_module(cfg)
    assert isinstance(module, L.LightningModule)
    assert isinstance(instantiate(cfg.data, _convert_="object"), L.LightningDataModule)
    assert optim_config(cfg).max_steps == cfg.trainer.max_steps
    assert build_callbacks(cfg, tmp_path)
    strategy = cfg.trainer.strategy
    if OmegaConf.is_dict(strategy):  # e.g. FSDP with its wrap policy: the objects must build
        assert instantiate(strategy) is not None


def _fast_dev_run(cogvx_train, tmp_path, *overrides: str) -> None:
    run = tmp_path / "run"
    code = cogvx_train(
        *overrides,
        "trainer=cpu",
        "trainer.fast_dev_run=true",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run}",
    )
    assert code == 0
    assert (run / ".hydra" / "config.yaml").is_file()


def test_fast_dev_run_t2v(cogvx_train, tmp_path):
    _fast_dev_run(cogvx_train, tmp_path, "experiment=tiny_dit", f"data.root={tmp_path / 'data'}")


def test_fast_dev_run_lora(cogvx_train, tmp_path, tiny_t2v_folder):
    _fast_dev_run(
        cogvx_train,
        tmp_path,
        "experiment=tiny_lora",
        f"model.model_folder={tiny_t2v_folder}",
        f"data.root={tmp_path / 'data'}",
    )


def test_fast_dev_run_i2v(cogvx_train, tmp_path, tiny_i2v_folder):
    from cogvx.train.shapes import ShapesDataConfig, make_shapes_dataset

    manifest = make_shapes_dataset(
        tmp_path / "clips", ShapesDataConfig(num_clips=2), progress=False
    )
    _fast_dev_run(
        cogvx_train,
        tmp_path,
        "experiment=i2v_5b",  # the real experiment file, on a tiny I2V folder
        f"model.model_folder={tiny_i2v_folder}",
        f"data.manifest={manifest}",
        "data.short_side=64",
        "data.max_area=4096",
        "data.max_frames=9",
        "data.max_text_length=12",
        "data.token_budget=256",
        "model.gradient_checkpointing=false",
        "trainer.precision=32-true",
    )


def test_fast_dev_run_vae(cogvx_train, tmp_path):
    _fast_dev_run(cogvx_train, tmp_path, "experiment=tiny_vae", f"data.root={tmp_path / 'data'}")


def test_validation_videos_through_the_inference_pipeline(cogvx_train, tmp_path):
    run = tmp_path / "run"
    code = cogvx_train(
        "experiment=tiny_dit",
        f"data.root={tmp_path / 'data'}",
        "trainer.max_steps=2",
        "validation.every_n_steps=2",
        "validation.prompts=[a red circle moving left]",
        "validation.steps=2",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run}",
    )
    assert code == 0
    out = run / "validation" / "step=00000002"
    assert (out / "00.mp4").stat().st_size > 0
    assert (out / "00.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (run / "validation").iterdir()] == ["step=00000002"]  # temp folder gone


@pytest.mark.parametrize("name", ["tiny_dit", "tiny_vae", "shapes_dit"])
def test_top_level_seed_reseeds_the_model(name):
    """``seed=N`` reaches the model's init and per-step draws; ``model.seed`` overrides it; the
    data's seed (the shapes clips themselves) stays the data group's own."""
    extra = ["data.vae_folder=unused"] if name == "shapes_dit" else []
    base = compose_config([f"experiment={name}", *extra])
    reseeded = compose_config([f"experiment={name}", "seed=7", *extra])
    assert (base.model.seed, reseeded.model.seed) == (base.seed, 7)
    assert reseeded.data.seed == base.data.seed
    pinned = compose_config([f"experiment={name}", "seed=7", "model.seed=3", *extra])
    assert pinned.model.seed == 3
    module, other = build_module(reseeded), build_module(base)
    assert module.seed == 7
    if base.task == "dit":  # the transformer is initialised from model.seed
        first, second = next(module.parameters()), next(other.parameters())
        assert not torch.equal(first, second)
