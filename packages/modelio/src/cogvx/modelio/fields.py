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
    "require_float",
    "require_int",
]


def config_error(
    owner: str, name: str, value: Any, valid: str, kind: type = ValueError
) -> Exception:
    """``kind("<owner>.<name>=<value>: <valid>")``."""
    return kind(f"{owner}.{name}={value!r}: {valid}")


def require_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> int | None:
    """``value`` is an int in ``[minimum, maximum]`` (or None when ``optional``); returns it.

    The one int check of the project: errors read ``<name>=<value>: expected an int ...``
    (``TypeError`` for a non-int, ``ValueError`` out of range); ``bool`` is not an int here.
    """
    if value is None and optional:
        return None
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum}")
    if maximum is not None:
        bounds.append(f"<= {maximum}")
    valid = "expected an int" + (" " + " and ".join(bounds) if bounds else "")
    valid += " or None" if optional else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r}: {valid}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name}={value!r}: {valid}")
    return value


def require_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    optional: bool = False,
) -> float | None:
    """``value`` is a finite real number (int or float, not bool) in the range (or None when
    ``optional``); returns it as a float. Errors read ``<name>=<value>: expected a finite number
    ...`` (``TypeError`` for a non-number, ``ValueError`` otherwise)."""
    if value is None and optional:
        return None
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
    if maximum is not None:
        bounds.append(f"{'<' if exclusive_maximum else '<='} {maximum}")
    valid = "expected a finite number" + (" " + " and ".join(bounds) if bounds else "")
    valid += " or None" if optional else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}={value!r}: {valid}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}={value!r}: {valid}")
    if minimum is not None and (number <= minimum if exclusive_minimum else number < minimum):
        raise ValueError(f"{name}={value!r}: {valid}")
    if maximum is not None and (number >= maximum if exclusive_maximum else number > maximum):
        raise ValueError(f"{name}={value!r}: {valid}")
    return number


def check_int(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> None:
    """The config field ``<owner>.<name>`` is an int in ``[minimum, maximum]`` (:func:`require_int`)."""
    require_int(f"{owner}.{name}", value, minimum=minimum, maximum=maximum, optional=optional)


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
    """The config field ``<owner>.<name>`` is a finite number in the range (:func:`require_float`)."""
    require_float(
        f"{owner}.{name}",
        value,
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_minimum,
        exclusive_maximum=exclusive_maximum,
        optional=optional,
    )


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
