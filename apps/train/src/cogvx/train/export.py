"""Export of a trained transformer as a complete diffusers-layout CogVideoX model folder.

The folder (docs/pipelines.md) holds ``model_index.json`` and one subfolder per component::

    model_index.json  scheduler/  text_encoder/  tokenizer/  transformer/  vae/

so that ``cogvx.infer``'s pipelines and diffusers' ``CogVideoXPipeline.from_pretrained`` open it.
The frozen components (VAE, T5, tokenizer) are copied from their folders, the transformer is
written with ``ExpertDiT.save_pretrained`` (a LoRA adapter is merged into a copy first), the
scheduler with ``SchedulerConfig.save_pretrained``. The folder is built beside the target under a
temporary name and renamed into place only when complete.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

from torch import nn

from cogvx.expert_dit import ExpertDiT, SchedulerConfig
from cogvx.expert_dit.config import DIFFUSERS_VERSION

__all__ = ["export_model_folder", "merged_transformer", "model_index"]

_PIPELINES = {"t2v": "CogVideoXPipeline", "i2v": "CogVideoXImageToVideoPipeline"}


def merged_transformer(dit: ExpertDiT) -> ExpertDiT:
    """``dit`` itself, or for a LoRA-trained one a copy with the adapter merged into the base
    weights (at its ``alpha / r`` scale) and the LoRA layers replaced by the plain modules."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if not any(isinstance(m, BaseTunerLayer) for m in dit.modules()):
        return dit
    merged = copy.deepcopy(dit)
    for name, module in list(merged.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = merged.get_submodule(parent_name) if parent_name else merged
            setattr(parent, child, module.get_base_layer())
    return merged


def _tokenizer_class(folder: Path) -> str:
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        name = json.loads(cfg.read_text()).get("tokenizer_class")
        if isinstance(name, str) and name:
            return name
    return "T5Tokenizer"


def model_index(
    task: str, scheduler: SchedulerConfig, tokenizer_class: str = "T5Tokenizer"
) -> dict:
    """The ``model_index.json`` content of a CogVideoX pipeline folder."""
    if task not in _PIPELINES:
        raise ValueError(f"task={task!r}: expected one of {sorted(_PIPELINES)}")
    return {
        "_class_name": _PIPELINES[task],
        "_diffusers_version": DIFFUSERS_VERSION,
        "scheduler": ["diffusers", scheduler.class_name],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", tokenizer_class],
        "transformer": ["diffusers", "CogVideoXTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
    }


def export_model_folder(
    out: str | os.PathLike[str],
    transformer: nn.Module,
    *,
    vae_folder: str | os.PathLike[str],
    text_encoder_folder: str | os.PathLike[str],
    tokenizer_folder: str | os.PathLike[str],
    scheduler: SchedulerConfig,
    overwrite: bool = False,
) -> Path:
    """Write the complete model folder ``out`` (see the module docstring) and return its path.

    ``transformer`` is an :class:`~cogvx.expert_dit.ExpertDiT` (LoRA-wrapped or not); the task
    (T2V or I2V) follows from its ``in_channels``. An existing ``out`` is refused unless
    ``overwrite``, and is replaced only once the new folder is complete.
    """
    target = Path(out)
    if target.exists() and not overwrite:
        raise FileExistsError(f"export folder {str(target)!r} exists; pass overwrite=True")
    sources = {
        "vae": Path(vae_folder),
        "text_encoder": Path(text_encoder_folder),
        "tokenizer": Path(tokenizer_folder),
    }
    for name, folder in sources.items():
        if not folder.is_dir():
            raise FileNotFoundError(f"{name}_folder={str(folder)!r}: no such folder")
    if not isinstance(transformer, ExpertDiT):
        raise TypeError(f"transformer must be an ExpertDiT, got {type(transformer).__name__}")
    config = transformer.config
    task = "i2v" if config.in_channels == 2 * config.out_dim else "t2v"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        for name, folder in sources.items():
            shutil.copytree(folder, tmp / name)
        merged_transformer(transformer).save_pretrained(tmp / "transformer")
        scheduler.save_pretrained(tmp / "scheduler")
        index = model_index(task, scheduler, _tokenizer_class(sources["tokenizer"]))
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
