"""Reading a diffusers-layout CogVideoX model folder.

A released model folder holds ``model_index.json`` and one subfolder per component::

    model_index.json      {"_class_name": "CogVideoXPipeline", "scheduler": ["diffusers",
                           "CogVideoXDDIMScheduler"], "text_encoder": ["transformers",
                           "T5EncoderModel"], "tokenizer": [...], "transformer": [...], "vae": [...]}
    scheduler/scheduler_config.json
    text_encoder/config.json + model*.safetensors
    tokenizer/spiece.model (or tokenizer.json) + tokenizer_config.json ...
    transformer/config.json + diffusion_pytorch_model*.safetensors
    vae/config.json + diffusion_pytorch_model*.safetensors

Only the file layout is read here; loading weights is each component's own ``from_pretrained``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["COMPONENTS", "PIPELINE_CLASSES", "ModelFolder"]

MODEL_INDEX = "model_index.json"
COMPONENTS = ("tokenizer", "text_encoder", "transformer", "vae", "scheduler")

#: The reference pipeline class names and the task each one runs.
PIPELINE_CLASSES: dict[str, str] = {
    "CogVideoXPipeline": "t2v",
    "CogVideoXImageToVideoPipeline": "i2v",
    "CogVideoXVideoToVideoPipeline": "v2v",
}


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its root, ``model_index.json`` content and component folders."""

    root: Path
    index: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ModelFolder:
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"model folder not found: {root}")
        index_path = root / MODEL_INDEX
        if not index_path.is_file():
            raise FileNotFoundError(
                f"{root} has no {MODEL_INDEX}: expected a diffusers-layout CogVideoX folder with "
                f"{', '.join(COMPONENTS)} subfolders"
            )
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{index_path} is not valid JSON: {e}") from e
        if not isinstance(index, dict):
            raise ValueError(f"{index_path} must hold a JSON object")
        class_name = index.get("_class_name")
        if class_name is not None and class_name not in PIPELINE_CLASSES:
            raise ValueError(
                f"{index_path}: _class_name={class_name!r} is not a CogVideoX pipeline "
                f"({sorted(PIPELINE_CLASSES)})"
            )
        missing = [c for c in COMPONENTS if not (root / c).is_dir()]
        if missing:
            raise FileNotFoundError(f"{root} is missing component folder(s): {', '.join(missing)}")
        return cls(root, index)

    @property
    def task(self) -> str | None:
        """``t2v``, ``i2v`` or ``v2v`` from the index's ``_class_name`` (None when absent)."""
        return PIPELINE_CLASSES.get(self.index.get("_class_name", ""))

    def component(self, name: str) -> Path:
        if name not in COMPONENTS:
            raise ValueError(f"component {name!r} is not one of {COMPONENTS}")
        return self.root / name
