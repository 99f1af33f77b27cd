"""Checks for the fields of model configs: type, finiteness, range, choices.

Each check raises TypeError (wrong type) or ValueError (wrong value) with one message naming the
config key, the value and what is valid: ``VAEConfig.norm_num_groups=0: expected an int >= 1``.
``bool`` is never accepted as a number (``True`` is an ``int`` in Python).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "check_int_tuple",
    "config_error",
]


def config_error(
    owner: str, name: str, value: Any, valid: str, kind: type = ValueError
) -> Exception:
    """``kind("<owner>.<name>=<value>: <valid>")``."""
    return kind(f"{owner}.{name}={value!r}: {valid}")


def check_int(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> None:
    """``value`` is an int in ``[minimum, maximum]`` (or None when ``optional``)."""
    if value is None and optional:
        return
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    valid = "expected an int" + (" " + " and ".join(bounds) if bounds else "")
    valid += " or None" if optional else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise config_error(owner, name, value, valid, TypeError)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise config_error(owner, name, value, valid)


def check_float(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    optional: bool = False,
) -> None:
    """``value`` is a finite real number (int or float) in the given range (or None)."""
    if value is None and optional:
        return
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        bounds.append(f"{'<' if exclusive_maximum else '<='} {maximum}")
    valid = "expected a finite number" + (" " + " and ".join(bounds) if bounds else "")
    valid += " or None" if optional else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise config_error(owner, name, value, valid, TypeError)
    if isinstance(value, float) and not math.isfinite(value):
        raise config_error(owner, name, value, valid)
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        raise config_error(owner, name, value, valid)
    if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
        raise config_error(owner, name, value, valid)


def check_bool(owner: str, name: str, value: Any) -> None:
    """``value`` is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise config_error(owner, name, value, "expected true or false", TypeError)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` is one of ``choices``."""
    if isinstance(value, (list, dict)) or value not in tuple(choices):
        kind = ValueError if isinstance(value, str) else TypeError
        raise config_error(owner, name, value, f"expected one of {tuple(choices)}", kind)


def check_int_tuple(
    owner: str, name: str, value: Any, *, minimum: int | None = None, length: int | None = None
) -> tuple[int, ...]:
    """A list/tuple of ints (each ``>= minimum``), returned as a tuple."""
    valid = "expected a list of ints" + (f" >= {minimum}" if minimum is not None else "")
    if length is not None:
        valid += f" with {length} entries"
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise config_error(owner, name, value, valid, TypeError)
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise config_error(owner, name, value, valid, TypeError)
        if minimum is not None and item < minimum:
            raise config_error(owner, name, value, valid)
    if length is not None and len(value) != length:
        raise config_error(owner, name, value, valid)
    return tuple(value)
