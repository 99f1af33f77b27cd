"""Hydra for ``cogvx`` subcommands: strict composition, one-line errors, real multirun.

Shared by ``cogvx generate`` and ``cogvx train`` (needs the ``hydra`` extra: ``cogvx-cli[hydra]``).

- :func:`compose` composes a config module's primary config with overrides and then checks the
  result against a dataclass schema in struct mode: a key the schema lacks (also one added with
  ``+key=...``), a wrong type, an unknown config-group option and a missing required value all fail
  here, before any work, as a :class:`~cogvx.cli.usage.UsageError` naming the key, the value and the
  cause (``sampling.steps=abc: Value 'abc' of type 'str' could not be converted to Integer``), never
  Hydra's bare "Error merging override".
- :func:`sweep_jobs` expands sweep overrides (``seed=1,2,3``, ``range(3)``) into the per-job
  override lists exactly as Hydra's basic sweeper does, so a caller can check every job first.
- :func:`run` runs a task function once in Hydra's run mode (``hydra.run.dir``, ``.hydra/config.yaml``);
  :func:`multirun` runs a task function through Hydra's own sweeper and launcher (``-m``): one job
  folder per combination under ``hydra.sweep.dir`` with its ``.hydra/config.yaml``; the launcher is
  chosen by config (``hydra/launcher=basic`` by default; joblib or submitit when installed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hydra import compose as _hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from cogvx.cli.usage import UsageError

__all__ = ["compose", "multirun", "run", "sweep_jobs", "usage_error"]


@contextlib.contextmanager
def _initialized(
    config_module: str, job_name: str, schema: type | None, schema_name: str | None
) -> Iterator[GlobalHydra]:
    if schema is not None and schema_name is not None:
        ConfigStore.instance().store(name=schema_name, node=schema)
    GlobalHydra.instance().clear()
    with initialize_config_module(
        config_module=config_module, job_name=job_name, version_base=None
    ):
        yield GlobalHydra.instance()


def _override_values(overrides: Sequence[str]) -> dict[str, str]:
    """``key -> value text`` of ``key=value`` / ``+key=value`` / ``++key=value`` overrides."""
    out = {}
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if sep:
            out[key.split("@")[0]] = value
    return out


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def usage_error(
    exc: BaseException, overrides: Sequence[str] = (), schema: type | None = None
) -> UsageError:
    """Turn a Hydra or OmegaConf error into one :class:`UsageError` that names the key and cause.

    Walks ``exc`` and its causes for the innermost OmegaConf error (which carries the full key) or a
    missing config-group option (which carries the valid options).
    """
    values = _override_values(overrides)
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for err in chain:
        if isinstance(err, MissingConfigException):
            missing = (err.missing_cfg_file or "").strip("/")
            group, _, option = missing.rpartition("/")
            options = ", ".join(err.options or [])
            valid = f"choose from {options}" if options else "no such config"
            return UsageError(group or missing, option or None, valid)
        if isinstance(err, OverrideParseException) and err.override:
            key, sep, value = str(err.override).lstrip("+~").partition("=")
            cause = _first_line(str(err))
            return UsageError(key, value if sep else None, f"not a valid override ({cause})")
    for err in reversed(chain):
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            key = str(err.full_key)
            value = values.get(key)
            unknown = isinstance(err, (ConfigKeyError, ConfigAttributeError))
            if value is None and unknown:
                value = next((v for k, v in values.items() if k.startswith(key)), None)
            cause = _first_line(getattr(err, "msg", "") or str(err))
            if unknown and schema is not None:
                cause = f"{cause}; {_valid_keys(schema, key)}"
            return UsageError(key, value, cause)
    for err in chain:
        if isinstance(err, (OmegaConfBaseException, HydraException)):
            text = "; ".join(dict.fromkeys(_first_line(str(c)) for c in chain if str(c) != "None"))
            bad = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") in text), None)
            return UsageError(bad or "override", None, text)
    return UsageError("config", None, _first_line(str(exc)) or type(exc).__name__)


def _valid_keys(schema: type, full_key: str) -> str:
    parent_path = full_key.rpartition(".")[0]
    node = OmegaConf.structured(schema)
    parent = OmegaConf.select(node, parent_path) if parent_path else node
    if isinstance(parent, DictConfig):
        keys = ", ".join(str(k) for k in parent if not str(k).startswith("_"))
        where = parent_path or "the top level"
        return f"valid keys under {where}: {keys}"
    return "not in the schema"


def _schema_child(schema_node: DictConfig, key: str) -> Any:
    """The schema node under ``key``; an ``Optional[Dataclass] = None`` field becomes the dataclass."""
    child = schema_node._get_node(key)
    if isinstance(child, DictConfig) and child._is_none():
        ref = child._metadata.ref_type
        if dataclasses.is_dataclass(ref):
            return OmegaConf.structured(ref)
    return child


def _unknown_keys(node: Any, schema_node: Any, prefix: str = "") -> str | None:
    """The first key of ``node`` that the structured ``schema_node`` lacks (``+key`` included;
    free-form ``dict``/``Any`` nodes accept anything)."""
    if not isinstance(node, DictConfig) or not isinstance(schema_node, DictConfig):
        return None
    if node._is_none() or not dataclasses.is_dataclass(OmegaConf.get_type(schema_node)):
        return None
    known = set(schema_node.keys())  # `in` on a DictConfig is False for ??? values
    for key in node:
        full = f"{prefix}{key}"
        if key not in known:
            return full
        found = _unknown_keys(node._get_node(key), _schema_child(schema_node, str(key)), f"{full}.")
        if found:
            return found
    return None


def _check(cfg: DictConfig, schema: type | None, overrides: Sequence[str]) -> None:
    if schema is not None:
        base = OmegaConf.structured(schema)
        unknown = _unknown_keys(cfg, base)
        if unknown is not None:
            value = _override_values(overrides).get(unknown)
            parent = unknown.rpartition(".")[0]
            where = f"'{parent}'" if parent else "the config"
            raise UsageError(
                unknown, value, f"{where} has no such key; {_valid_keys(schema, unknown)}"
            )
        try:
            OmegaConf.merge(base, cfg)
        except OmegaConfBaseException as e:
            raise usage_error(e, overrides, schema) from e
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UsageError(missing[0], "???", "required (no default); set it on the command line")


def compose(
    config_module: str,
    config_name: str,
    overrides: Sequence[str] = (),
    *,
    schema: type | None = None,
    schema_name: str | None = None,
    job_name: str = "cogvx",
    return_hydra_config: bool = False,
) -> DictConfig:
    """Compose ``config_name`` from the package ``config_module`` with ``overrides``, strictly.

    ``schema`` (a dataclass) is registered in the ConfigStore as ``schema_name`` (the primary config's
    defaults list names it) and the composed config is merged into it in struct mode, so anything the
    schema lacks or mistypes raises :class:`UsageError`. Missing required values (``???``) too.
    """
    overrides = list(overrides)
    with _initialized(config_module, job_name, schema, schema_name):
        try:
            cfg = _hydra_compose(
                config_name=config_name,
                overrides=overrides,
                return_hydra_config=return_hydra_config,
            )
        except (HydraException, OmegaConfBaseException) as e:
            raise usage_error(e, overrides, schema) from e
    body = cfg
    if return_hydra_config:
        body = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    _check(body, schema, overrides)
    return cfg


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Hydra configures the process's logging for its jobs (``hydra/job_logging``); put the root
    logger back afterwards so an embedding program (or a test) keeps its own handlers and its
    later log lines do not go to streams Hydra captured."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    disabled = {
        name: lg.disabled
        for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    try:
        yield
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
        for name, flag in disabled.items():
            logger = logging.Logger.manager.loggerDict.get(name)
            if isinstance(logger, logging.Logger):
                logger.disabled = flag


def sweep_jobs(overrides: Sequence[str]) -> list[list[str]]:
    """The per-job override lists of a sweep, in Hydra's basic-sweeper order (cartesian product)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise usage_error(e, overrides) from e
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [job for batch in batches for job in batch]


def multirun(
    config_module: str,
    config_name: str,
    overrides: Sequence[str],
    task_function: Callable[[DictConfig], Any],
    *,
    schema: type | None = None,
    schema_name: str | None = None,
    job_name: str = "cogvx",
) -> list[Any]:
    """Run ``task_function`` once per sweep job through Hydra's configured sweeper and launcher.

    Each job's config is checked against ``schema`` before the task runs; returns the jobs' return
    values in order (a job's exception propagates, as Hydra's basic sweeper raises it).
    """
    overrides = list(overrides)

    def task(cfg: DictConfig) -> Any:
        _check(cfg, schema, overrides)
        return task_function(cfg)

    with _initialized(config_module, job_name, schema, schema_name) as gh, _logging_restored():
        assert gh.hydra is not None
        try:
            results = gh.hydra.multirun(
                config_name=config_name, task_function=task, overrides=overrides
            )
        except (HydraException, OmegaConfBaseException) as e:
            raise usage_error(e, overrides, schema) from e
    return [r.return_value for batch in results or [] for r in batch]


def run(
    config_module: str,
    config_name: str,
    overrides: Sequence[str],
    task_function: Callable[[DictConfig], Any],
    *,
    schema: type | None = None,
    schema_name: str | None = None,
    job_name: str = "cogvx",
) -> Any:
    """Run ``task_function`` once through Hydra's run mode (the single-run twin of :func:`multirun`).

    The job gets its folder ``hydra.run.dir`` with ``.hydra/config.yaml`` and Hydra's job logging;
    its config is checked against ``schema`` first; returns the task's return value (its exception
    propagates).
    """
    overrides = list(overrides)

    def task(cfg: DictConfig) -> Any:
        _check(cfg, schema, overrides)
        return task_function(cfg)

    with _initialized(config_module, job_name, schema, schema_name) as gh:
        assert gh.hydra is not None
        try:
            result = gh.hydra.run(config_name=config_name, task_function=task, overrides=overrides)
        except (HydraException, OmegaConfBaseException) as e:
            raise usage_error(e, overrides, schema) from e
    return result.return_value
