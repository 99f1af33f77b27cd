"""pytest fixtures over :func:`cogvx.testing.build_model_folder`.

Import them into a ``conftest.py`` (``from cogvx.testing.fixtures import make_folder, model_root,
tiny_writer``) and call ``make_folder(dict(name=..., task=..., ...))`` in a test. Folders are
built once per session. Override ``tiny_writer`` in a conftest to pick the writer (``"cogvx"`` by
default; ``"diffusers"`` for parity tests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cogvx.testing.folders import TinySpec, Writer, build_model_folder

__all__ = ["make_folder", "model_root", "tiny_writer"]


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One session folder that holds every built model folder and tokenizer."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_writer() -> Writer:
    """Which writer builds the folders (override in a conftest)."""
    return "cogvx"


@pytest.fixture(scope="session")
def make_folder(
    model_root: Path, tiny_writer: Writer
) -> Callable[[TinySpec | dict[str, Any]], Path]:
    """``make(spec)`` -> the folder's path; ``spec`` a :class:`TinySpec` or its keyword dict."""

    def make(spec: TinySpec | dict[str, Any]) -> Path:
        spec = spec if isinstance(spec, TinySpec) else TinySpec(**spec)
        return build_model_folder(model_root, spec, writer=tiny_writer)

    return make
