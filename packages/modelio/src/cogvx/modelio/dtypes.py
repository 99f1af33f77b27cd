"""The one parser of dtype names for every command and loader of the workspace.

Accepted spellings: ``fp32``/``float32``, ``bf16``/``bfloat16``, ``fp16``/``float16`` (the short
form is the canonical one, as in diffusers' ``variant`` names), or a ``torch.dtype`` of those three.
``"auto"`` (and ``None``) mean "let the caller decide" and are only accepted where ``allow_auto``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on the first parse: CLIs list the names without it
    import torch

__all__ = ["DTYPE_NAMES", "dtype_name", "parse_dtype"]

# accepted spelling -> the torch.dtype attribute it names
_BY_NAME: dict[str, str] = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
}

DTYPE_NAMES: tuple[str, ...] = ("fp32", "bf16", "fp16")
"""The canonical names (CLI ``choices``)."""


def parse_dtype(
    value: str | torch.dtype | None, *, parameter: str = "dtype", allow_auto: bool = False
) -> torch.dtype | None:
    """``torch.dtype`` for a dtype name; ``None`` for ``"auto"``/``None`` when ``allow_auto``.

    Anything else raises ``ValueError("<parameter>=<value>: expected one of ...")``.
    """
    if allow_auto and (value is None or value == "auto"):
        return None
    import torch

    if isinstance(value, torch.dtype) and str(value).removeprefix("torch.") in _BY_NAME.values():
        return value
    if isinstance(value, str) and value.strip().lower() in _BY_NAME:
        return getattr(torch, _BY_NAME[value.strip().lower()])
    valid = ", ".join((*_BY_NAME, "auto") if allow_auto else _BY_NAME)
    raise ValueError(f"{parameter}={value!r}: expected one of {valid}")


def dtype_name(dtype: torch.dtype) -> str:
    """The canonical name of a supported dtype (``torch.bfloat16`` -> ``"bf16"``)."""
    import torch

    for name in DTYPE_NAMES:
        if getattr(torch, _BY_NAME[name]) == dtype:
            return name
    raise ValueError(f"dtype={dtype}: expected one of torch.float32, torch.bfloat16, torch.float16")
