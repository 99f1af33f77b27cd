"""cogvx.demo: the ``cogvx demo`` web app (Gradio) over the cogvx.infer pipelines.

- :mod:`cogvx.demo.choices`: the tasks, frame counts and sizes a model folder offers;
- :mod:`cogvx.demo.uploads`: upload limits, decoding with :mod:`cogvx.videoio`;
- :mod:`cogvx.demo.worker`: one worker per model behind a bounded queue ("busy, try again");
- :mod:`cogvx.demo.generation`: the loaded model, one request -> one run folder;
- :mod:`cogvx.demo.app`: the page and the server; :mod:`cogvx.demo.cli`: ``cogvx demo``.

The public names are exported lazily, so ``cogvx demo --help`` imports no torch or gradio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from cogvx.demo.app import build_app, serve
    from cogvx.demo.choices import ModelChoices, model_choices
    from cogvx.demo.generation import DemoModel, GenerationRequest, GenerationResult, RequestError
    from cogvx.demo.uploads import UploadError, UploadLimits
    from cogvx.demo.worker import Busy, GenerationQueue

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "app": ["build_app", "serve"],
        "choices": ["ModelChoices", "model_choices"],
        "generation": ["DemoModel", "GenerationRequest", "GenerationResult", "RequestError"],
        "uploads": ["UploadError", "UploadLimits"],
        "worker": ["Busy", "GenerationQueue"],
    },
)

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
