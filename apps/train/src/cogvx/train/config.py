"""Dataclass schema of the ``cogvx train`` configuration, and its compose-time checks.

``conf/train.yaml`` starts from :class:`TrainConfig` (registered in Hydra's ConfigStore as
``train_schema``), so the fixed sections (``trainer``, ``optim``, ``checkpoint``, ``logging``,
``validation``) and the top-level keys are typed: a mistyped key or a wrong type fails when the
config is composed. ``model`` and ``data`` are group options whose node carries a ``_target_``
(the LightningModule and LightningDataModule classes); their schema is the target's constructor
signature, checked by :func:`check_config` right after composition: a key the constructor does
not take, or a value of the wrong type, fails there, before anything is built. The same walk
catches ``+new.key`` overrides, which Hydra accepts even in struct mode.

Experiments are small delta files (``conf/experiment/*.yaml``, ``# @package _global_``) over
``train.yaml``; see apps/train/README.md.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_object
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cogvx.cli.usage import UsageError

__all__ = [
    "CheckpointSettings",
    "LoggingSettings",
    "OptimConfig",
    "TrainConfig",
    "TrainerSettings",
    "ValidationSettings",
    "check_config",
    "register_configs",
    "register_schema",
    "schema_for",
]

TASKS = ("dit", "vae")
NAN_POLICIES = ("skip", "stop")
LOGGERS = ("csv", "tensorboard")


@dataclass
class TrainerSettings:
    """Arguments of ``lightning.Trainer`` (same names, same meaning); ``trainer/*.yaml`` set them.

    ``callbacks``, ``logger``, ``plugins`` and ``default_root_dir`` are not here: the run
    assembles them (:func:`cogvx.train.run.build_trainer`). ``strategy`` is a Lightning strategy
    name (``ddp``, ``fsdp``, ...) or a node with ``_target_`` (e.g.
    ``lightning.pytorch.strategies.FSDPStrategy``) for strategies that need arguments.
    """

    accelerator: str = "auto"
    strategy: Any = "auto"
    devices: Any = "auto"  # "auto" | int | list of device ids
    num_nodes: int = 1
    precision: Any = None  # "32-true" | "bf16-mixed" | "16-mixed" | ... (None: Lightning's default)
    max_steps: int = -1
    max_epochs: int | None = None
    min_steps: int | None = None
    max_time: str | None = None  # "DD:HH:MM:SS"
    limit_train_batches: float | None = None
    limit_val_batches: float | None = None
    val_check_interval: float | None = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = None
    enable_progress_bar: bool | None = None
    enable_model_summary: bool | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str | None = None
    deterministic: Any = None  # bool | "warn"
    benchmark: bool | None = None
    fast_dev_run: Any = False  # bool | int
    overfit_batches: float = 0.0
    detect_anomaly: bool = False
    use_distributed_sampler: bool = True
    reload_dataloaders_every_n_epochs: int = 0
    profiler: str | None = None
    sync_batchnorm: bool = False
    inference_mode: bool = True


@dataclass
class OptimConfig:
    """AdamW with linear warmup and cosine (or constant) decay; passed to the module as ``optim``.

    Defaults are the CogVideoX recipe (docs/training.md): betas (0.9, 0.95), weight decay 1e-4.
    ``max_steps`` (the length of the decay) defaults to ``trainer.max_steps``.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-4
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | constant
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    max_steps: int = -1  # length of the decay; -1: trainer.max_steps


@dataclass
class CheckpointSettings:
    """Lightning ``.ckpt`` files in ``<run>/checkpoints``, written atomically, with a ``last`` link."""

    every_n_steps: int = 0  # 0: only at the end of training
    keep: int = 2  # newest checkpoints kept (0: all)
    save_last: bool = True


@dataclass
class LoggingSettings:
    logger: str = "csv"  # csv | tensorboard
    every_n_steps: int = 1
    plot: bool = True  # loss plot PNG in the run folder at the end of training
    timestep_buckets: int = 10


@dataclass
class ValidationSettings:
    """Fixed-seed validation videos through the inference pipeline every ``every_n_steps``."""

    every_n_steps: int = 0  # 0: off
    prompts: list[str] = field(default_factory=list)
    seed: int = 0
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    steps: int = 20
    guidance_scale: float = 6.0
    fps: int = 8


@dataclass
class TrainConfig:
    """The whole ``cogvx train`` config (``conf/train.yaml``)."""

    task: str = "dit"  # dit | vae: which family the model/ option trains
    model: Any = None  # a model/ option: LightningModule constructor arguments + _target_
    data: Any = None  # a data/ option: LightningDataModule constructor arguments + _target_
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    seed: int = 0
    resume: str = "never"  # never | auto (newest checkpoint of the run folder) | a .ckpt path
    nan_policy: str = "stop"  # stop | skip: what a NaN/inf loss does


def register_schema(group: str, name: str, target: Callable, *, run_seed: bool = False) -> None:
    """Store :func:`schema_for` ``(target)`` as ``schema/<group>/<name>`` in the ConfigStore.

    A group option extends it from its defaults list (``- /schema/model/dit@_here_``), so the
    option's node holds every constructor argument with its default, typed. With ``run_seed`` the
    target's ``seed`` argument defaults to the run's top-level ``seed`` (``${seed}``), so
    ``cogvx train ... seed=1`` reseeds it; an explicit ``model.seed=N`` still wins.
    """
    node: Any = schema_for(target)
    if run_seed:
        if "seed" not in {f.name for f in dataclasses.fields(node)}:
            raise ValueError(f"run_seed=True but {_path_of(target)} takes no seed argument")
        node = OmegaConf.structured(node)
        node.seed = "${seed}"
    ConfigStore.instance().store(group=f"schema/{group}", name=name, node=node)


def register_configs() -> None:
    """Register :class:`TrainConfig` (``train_schema``) and the module schemas (idempotent).

    ``schema/model/dit`` is :class:`cogvx.train.DiTModule`'s constructor, ``schema/data/video``
    :class:`cogvx.train.VideoDataModule`'s. The models' ``seed`` (initialisation and per-step
    draws) follows the top-level ``seed``; the data modules' does not: for the shapes data it
    picks the clips themselves, which a rerun with another seed should not silently change.
    """
    from cogvx.train.data import VideoDataModule
    from cogvx.train.dit import DiTModule

    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    register_schema("model", "dit", DiTModule, run_seed=True)
    register_schema("data", "video", VideoDataModule)
    from cogvx.train.shapes import ShapesClipDataModule, ShapesDiTModule, ShapesVideoDataModule
    from cogvx.train.vae import ClipDataModule, VAEModule

    register_schema("model", "vae", VAEModule, run_seed=True)
    register_schema("model", "shapes_dit", ShapesDiTModule, run_seed=True)
    register_schema("data", "shapes_clips", ShapesClipDataModule)
    register_schema("data", "shapes", ShapesVideoDataModule)
    register_schema("data", "clips", ClipDataModule)


# ---------------------------------------------------------------------------------- schemas
_SCALARS = (int, float, bool, str)
_RUNTIME_ARGS = ("optim",)  # given by the run to every module, never in model/


def _plain_type(hint: Any) -> Any:
    """The OmegaConf-typable form of a constructor annotation, or ``Any`` when there is none.

    OmegaConf types scalars, ``X | None``, lists/tuples/dicts of those, and dataclasses; unions of
    numbers become ``float``; anything else (tensors, modules, callables) stays untyped.
    """
    if hint in _SCALARS or hint is Any:
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            inner = _plain_type(rest[0])
        elif set(rest) <= {int, float}:
            inner = float
        else:
            return Any
        return inner if inner is Any or not optional else inner | None
    if origin in (list, tuple, typing.Sequence, typing.Tuple):  # noqa: UP006
        items = [_plain_type(a) for a in args if a is not Ellipsis]
        item = items[0] if items and all(i == items[0] for i in items) else Any
        return list[item] if item in _SCALARS else list[Any]
    if origin in (dict, typing.Mapping, Mapping):
        return dict[str, Any]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return schema_for(hint)
    return Any


_SCHEMAS: dict[Callable, type] = {}


def schema_for(target: Callable, *, exclude: tuple[str, ...] = _RUNTIME_ARGS) -> type:
    """A mutable dataclass mirroring ``target``'s constructor: one field per parameter.

    Field types come from the annotations (:func:`_plain_type`), defaults from the signature
    (required parameters are ``MISSING``). A parameter annotated with a dataclass (e.g.
    ``config: DiTConfig``) gets that dataclass's own schema, so ``model.config.num_layers=4`` is
    checked too. ``_target_`` is the first field.
    """
    if target in _SCHEMAS:
        return _SCHEMAS[target]
    init = target.__init__ if isinstance(target, type) else target
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # annotations naming types that are not importable: leave them untyped
        hints = {}
    specs: list[tuple[str, Any, Any]] = [("_target_", str, field(default=_path_of(target)))]
    for name, p in inspect.signature(target).parameters.items():
        if name in exclude or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = _plain_type(hints.get(name, Any))
        if p.default is inspect.Parameter.empty:
            default = field(default=MISSING)
        elif isinstance(p.default, _SCALARS) or p.default is None:
            default = field(default=p.default)
            if (
                p.default is None
                and kind is not Any
                and typing.get_origin(kind) is not types.UnionType
            ):
                kind = kind | None
        elif isinstance(p.default, (tuple, list)):
            default = field(default_factory=lambda v=p.default: list(v))
        else:  # an object default (e.g. a dataclass instance): the yaml must spell it out
            default = field(default=None)
            kind = Any
        specs.append((name, kind, default))
    schema = dataclasses.make_dataclass(f"{target.__name__}Schema", specs)
    _SCHEMAS[target] = schema
    return schema


def _path_of(target: Callable) -> str:
    return f"{target.__module__}.{target.__qualname__}"


# ---------------------------------------------------------------------------------- checks
def _fail(key: str, value: Any, reason: str) -> UsageError:
    return UsageError(key, value, reason)


def _check_keys(node: DictConfig, schema: type, path: str) -> None:
    names = [f.name for f in dataclasses.fields(schema)]
    for key in node:
        if key not in names:
            valid = ", ".join(n for n in names if n != "_target_")
            raise _fail(
                f"{path}{key}", node._get_node(key)._value(), f"unknown key (valid: {valid})"
            )


def _check_target_node(node: DictConfig, path: str) -> None:
    target = node.get("_target_")
    try:
        obj = get_object(target)
    except Exception as e:
        raise _fail(f"{path}_target_", target, f"cannot import it ({e})") from None
    if not callable(obj):
        raise _fail(f"{path}_target_", target, "is not a class or function")
    schema = schema_for(obj)
    _check_keys(node, schema, path)
    typed = OmegaConf.structured(schema)
    try:
        OmegaConf.merge(typed, node)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or path.rstrip(".")
        value = OmegaConf.select(node, key[len(path) :], throw_on_missing=False) if key else None
        reason = str(e).splitlines()[0]
        raise _fail(f"{path}{key[len(path) :]}" if key else path, value, reason) from None
    missing = [f.name for f in dataclasses.fields(schema) if f.name not in node]
    required = [n for n in missing if OmegaConf.is_missing(typed, n)]
    if required:
        raise UsageError(
            path.rstrip("."),
            None,
            f"missing required argument(s) of {target}: {', '.join(required)}",
        )


def _walk(node: Any, path: str) -> None:
    if isinstance(node, DictConfig):
        if node._is_missing() or node._is_none():
            return
        schema = OmegaConf.get_type(node)
        if "_target_" in node:
            _check_target_node(node, path)
        elif dataclasses.is_dataclass(schema):
            _check_keys(node, schema, path)
        for key in node:
            child = node._get_node(key)
            _walk(child, f"{path}{key}.")
    elif isinstance(node, ListConfig) and not node._is_missing() and not node._is_none():
        for i, child in enumerate(node._iter_ex(resolve=False)):
            _walk(child, f"{path}{i}.")


def check_config(cfg: DictConfig) -> None:
    """Check a composed config against its schemas; raises ``cogvx.cli.UsageError`` (one line).

    Typed sections reject keys their dataclass lacks (``+trainer.foo=1`` is caught here); nodes
    with a ``_target_`` are checked against the target's constructor (:func:`schema_for`); the
    enumerated top-level settings must take one of their valid values.
    """
    for key, valid in (("task", TASKS), ("nan_policy", NAN_POLICIES), ("logging.logger", LOGGERS)):
        value = OmegaConf.select(cfg, key)
        if value not in valid:
            raise _fail(key, value, f"valid: {' | '.join(valid)}")
    if cfg.optim.schedule not in ("cosine", "constant"):
        raise _fail("optim.schedule", cfg.optim.schedule, "valid: cosine | constant")
    for key in ("model", "data"):
        if cfg.get(key) is None:
            raise UsageError(
                key, None, f"no {key}/ option chosen (pick one, e.g. experiment=tiny_dit)"
            )
    _walk(cfg, "")
