"""Reading and checking a diffusers-layout CogVideoX model folder, before any weight is loaded.

A released model folder holds ``model_index.json`` and one subfolder per component
(docs/pipelines.md §Model folders)::

    model_index.json      {"_class_name": "CogVideoXPipeline", "scheduler": [...], ...}
    scheduler/scheduler_config.json
    text_encoder/config.json + model*.safetensors
    tokenizer/spiece.model (or tokenizer.json) + tokenizer_config.json ...
    transformer/config.json + diffusion_pytorch_model*.safetensors
    vae/config.json + diffusion_pytorch_model*.safetensors

:meth:`ModelFolder.check` reads only the configs and the safetensors headers: a missing or malformed
file is named with its path, and the folder is checked against the task (an image-to-video
transformer has twice the VAE's latent channels). A repository id (``THUDM/CogVideoX-2b``) is looked
up in the local Hugging Face cache only (:func:`resolve_model_path`); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogvx.infer.tasks import TASKS, Task, get_task, task_for_class_name, tasks_for_channels
from cogvx.infer.validation import check_safetensors_file

if TYPE_CHECKING:
    from cogvx.expert_dit.config import DiTConfig
    from cogvx.infer.shapes import ShapeRules

__all__ = ["COMPONENTS", "ModelFolder", "VAEInfo", "resolve_model_path"]

MODEL_INDEX = "model_index.json"
COMPONENTS = ("tokenizer", "text_encoder", "transformer", "vae", "scheduler")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "spiece.model")


@dataclass(frozen=True)
class VAEInfo:
    """The VAE config values a pipeline needs before (or without) loading the VAE weights."""

    spatial_factor: int
    temporal_factor: int
    scaling_factor: float
    invert_scale_latents: bool
    latent_channels: int
    base_channels: int  # the widest full-resolution activation (block_out_channels[0])

    @classmethod
    def from_configs(cls, vae_config: Any, dit_config: Any) -> VAEInfo:
        """From the VAE config (object or ``vae/config.json`` dict) and the transformer's; the
        compression factors come from the one geometry source,
        :meth:`cogvx.expert_dit.geometry.ModelGeometry.from_configs`."""
        from cogvx.expert_dit.geometry import ModelGeometry

        def get(key: str, default: Any = None) -> Any:
            if isinstance(vae_config, dict):
                return vae_config.get(key, default)
            return getattr(vae_config, key, default)

        geometry = ModelGeometry.from_configs(dit_config, vae_config)
        scaling = get("scaling_factor")
        if scaling is None:
            raise ValueError("scaling_factor=None: the VAE config needs a scaling_factor")
        return cls(
            spatial_factor=geometry.spatial_compression,
            temporal_factor=geometry.temporal_compression,
            scaling_factor=float(scaling),
            invert_scale_latents=bool(get("invert_scale_latents", False)),
            latent_channels=int(get("latent_channels", 16)),
            base_channels=int(get("block_out_channels")[0]),
        )


def resolve_model_path(
    model: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
) -> Path:
    """A local folder as is; a repository id ``owner/name`` from the local Hugging Face cache
    (``huggingface_hub.snapshot_download(local_files_only=True)``: ``HF_HUB_CACHE`` /
    ``HF_HOME`` or ``cache_dir``). Never downloads; when absent, one line says where it looked."""
    path = Path(model)
    if path.is_dir():
        return path
    text = str(model)
    if not _REPO_ID.match(text) or path.exists():
        raise FileNotFoundError(f"model={text!r}: model folder not found")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.utils import HFValidationError, LocalEntryNotFoundError

    where = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    try:
        snapshot = snapshot_download(
            text, revision=revision, cache_dir=cache_dir, local_files_only=True
        )
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, OSError):
        raise FileNotFoundError(
            f"model={text!r}: not a local folder, and not in the Hugging Face cache {where} "
            f"(looked for {where / ('models--' + text.replace('/', '--'))}); nothing is downloaded: "
            f"fetch it first (huggingface-cli download {text}) or pass a folder"
        ) from None
    return Path(snapshot)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _weights(folder: Path, stem: str) -> list[Path]:
    """The safetensors files of one component (single file or the shards of an index)."""
    single = folder / f"{stem}.safetensors"
    index = folder / f"{stem}.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: no weight_map")
        shards = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [str(s) for s in shards if not s.is_file()]
        if missing:
            raise FileNotFoundError(f"{index} lists missing shard(s): {', '.join(missing)}")
        return shards
    others = sorted(p.name for p in folder.glob("*.bin")) + sorted(
        p.name for p in folder.glob("*.pt")
    )
    extra = f" (found {', '.join(others)}: only safetensors are loaded)" if others else ""
    raise FileNotFoundError(f"{single}: no weights (nor {index.name}){extra}")


@dataclass(frozen=True)
class ModelFolder:
    """A model folder: its root and ``model_index.json`` content; configs are read on demand."""

    root: Path
    index: dict[str, Any]

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        revision: str | None = None,
    ) -> ModelFolder:
        """Open a folder (or a cached repository id) and check its layout."""
        root = resolve_model_path(path, cache_dir=cache_dir, revision=revision)
        index_path = root / MODEL_INDEX
        if not index_path.is_file():
            raise FileNotFoundError(
                f"{root} has no {MODEL_INDEX}: expected a diffusers-layout CogVideoX folder with "
                f"{', '.join(COMPONENTS)} subfolders"
            )
        index = _read_json(index_path)
        class_name = index.get("_class_name")
        if class_name is not None and task_for_class_name(class_name) is None:
            valid = ", ".join(t.reference_class for t in TASKS.values())
            raise ValueError(
                f"{index_path}: _class_name={class_name!r} is not a CogVideoX pipeline ({valid})"
            )
        missing = [c for c in COMPONENTS if not (root / c).is_dir()]
        if missing:
            raise FileNotFoundError(f"{root} is missing component folder(s): {', '.join(missing)}")
        return cls(root, index)

    @property
    def task(self) -> str | None:
        """``t2v``, ``i2v`` or ``v2v`` from the index's ``_class_name`` (None when absent)."""
        task = task_for_class_name(self.index.get("_class_name", ""))
        return task.name if task is not None else None

    def component(self, name: str) -> Path:
        if name not in COMPONENTS:
            raise ValueError(f"component={name!r}: expected one of {', '.join(COMPONENTS)}")
        return self.root / name

    # ---- configs (no weights) --------------------------------------------------------------------

    @cached_property
    def transformer_config(self) -> DiTConfig:
        from cogvx.expert_dit.config import DiTConfig

        path = self.component("transformer") / "config.json"
        try:
            return DiTConfig.from_dict(_read_json(path))
        except (TypeError, ValueError) as e:
            if str(path) in str(e):
                raise
            raise type(e)(f"{path}: {e}") from None

    @cached_property
    def vae_config(self) -> dict[str, Any]:
        return _read_json(self.component("vae") / "config.json")

    @cached_property
    def vae_info(self) -> VAEInfo:
        path = self.component("vae") / "config.json"
        try:
            return VAEInfo.from_configs(self.vae_config, self.transformer_config)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    @cached_property
    def text_encoder_config(self) -> dict[str, Any]:
        return _read_json(self.component("text_encoder") / "config.json")

    def shape_rules(self) -> ShapeRules:
        """The folder's :class:`ShapeRules`, from its configs."""
        from cogvx.infer.shapes import ShapeRules

        return ShapeRules.for_model(
            self.transformer_config, spatial_factor=self.vae_info.spatial_factor
        )

    # ---- the check before loading ----------------------------------------------------------------

    def check(self, task: str | Task) -> Task:
        """Check every file the pipeline of ``task`` will read, and that the transformer runs that
        task, without loading weights. Returns the task."""
        task = get_task(task) if isinstance(task, str) else task
        config = self.transformer_config
        latent = self.vae_info.latent_channels
        if config.in_channels != task.channel_multiplier * latent:
            valid = [t.name for t in tasks_for_channels(config.in_channels, latent)]
            raise ValueError(
                f"task={task.name!r}: {self.root} holds a transformer with in_channels="
                f"{config.in_channels} (VAE latent_channels={latent}), which runs "
                + (f"task {' or '.join(map(repr, valid))}" if valid else "none of the tasks")
                + f"; {task.title} needs in_channels={task.channel_multiplier * latent}"
            )
        self.text_encoder_config  # noqa: B018 (read and checked)
        scheduler = self.component("scheduler") / "scheduler_config.json"
        if not scheduler.is_file():
            raise FileNotFoundError(f"{scheduler}: file not found")
        tokenizer = self.component("tokenizer")
        if not any((tokenizer / f).is_file() for f in _TOKENIZER_FILES):
            raise FileNotFoundError(
                f"{tokenizer}: no tokenizer (expected one of {', '.join(_TOKENIZER_FILES)})"
            )
        for name, stem in (
            ("transformer", "diffusion_pytorch_model"),
            ("vae", "diffusion_pytorch_model"),
            ("text_encoder", "model"),
        ):
            for file in _weights(self.component(name), stem):
                check_safetensors_file(file)
        return task
