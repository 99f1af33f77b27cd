"""``config.json`` read and write: a JSON object, every error naming the file.

The model configs (``VAEConfig``, ``DiTConfig``) turn the mapping into a checked dataclass; this
module only guarantees that what they get is a ``dict`` read from a readable, valid JSON file, and
that what they write lands atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic

__all__ = ["CONFIG_NAME", "read_config", "write_config"]

CONFIG_NAME = "config.json"


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (NaN and Infinity are not allowed)")


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises FileNotFoundError (no such file), ValueError (not UTF-8, not JSON, ``NaN``/``Infinity``
    literals, or not an object), each naming ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as err:
        raise ValueError(f"config file {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"config file {str(path)!r} must hold a JSON object, got {type(data).__name__}"
        )
    return data


def write_config(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented JSON (key order kept) atomically; refuses NaN/Infinity values."""
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"config key {key!r}={value!r} cannot be written: not finite")
    return write_text_atomic(path, json.dumps(dict(data), indent=2, allow_nan=False) + "\n")
