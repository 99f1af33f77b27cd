"""cogvx.demo: the ``cogvx demo`` web app (Gradio) over the cogvx.infer pipelines.

- :mod:`cogvx.demo.choices`: the tasks, frame counts and sizes a model folder offers;
- :mod:`cogvx.demo.uploads`: upload limits, decoding with :mod:`cogvx.videoio`;
- :mod:`cogvx.demo.worker`: one worker per model behind a bounded queue ("busy, try again");
- :mod:`cogvx.demo.generation`: the loaded model, one request -> one run folder;
- :mod:`cogvx.demo.app`: the page and the server; :mod:`cogvx.demo.cli`: ``cogvx demo``.

The public names are exported lazily, so ``cogvx demo --help`` imports no torch or gradio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cogvx.demo.app import build_app, serve
    from cogvx.demo.choices import ModelChoices, model_choices
    from cogvx.demo.generation import DemoModel, GenerationRequest, GenerationResult, RequestError
    from cogvx.demo.uploads import UploadError, UploadLimits
    from cogvx.demo.worker import Busy, GenerationQueue

_EXPORTS = {
    "build_app": "app",
    "serve": "app",
    "ModelChoices": "choices",
    "model_choices": "choices",
    "DemoModel": "generation",
    "GenerationRequest": "generation",
    "GenerationResult": "generation",
    "RequestError": "generation",
    "UploadError": "uploads",
    "UploadLimits": "uploads",
    "Busy": "worker",
    "GenerationQueue": "worker",
}

__all__ = [
    "Busy",
    "DemoModel",
    "GenerationQueue",
    "GenerationRequest",
    "GenerationResult",
    "ModelChoices",
    "RequestError",
    "UploadError",
    "UploadLimits",
    "build_app",
    "model_choices",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cogvx.demo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cogvx.demo.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
