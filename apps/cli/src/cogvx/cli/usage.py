"""Usage errors of every ``cogvx`` subcommand: one line, exit code 2.

A subcommand refuses a bad argument or config value by raising :class:`UsageError`; the dispatcher
prints ``cogvx <cmd>: error: <parameter>=<value>: <what is valid>`` and exits 2 (runtime failures,
any other exception, exit 1; Ctrl-C exits 130). :class:`ArgumentParser` is an ``argparse`` parser
whose own errors (unknown option, bad choice, missing value) become a :class:`UsageError` instead of
argparse's two-line usage message, and :func:`int_arg` / :func:`float_arg` are ``type=`` converters
that check the range, so ``--frames 0`` or ``--guidance nan`` are refused by name, never replaced
by a default. Nothing here imports anything heavy (the ``--help`` path stays fast).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["ArgumentParser", "UsageError", "float_arg", "int_arg"]


class UsageError(Exception):
    """A bad parameter: ``str(e)`` is ``"<parameter>=<value>: <valid>"`` (the dispatcher adds
    ``cogvx <cmd>: error: `` and exits 2).

    Not a ``ValueError`` on purpose: argparse swallows ``ValueError`` raised by ``type=``
    converters and replaces the message with its own.
    """

    def __init__(self, parameter: str, value: Any, valid: str) -> None:
        self.parameter = parameter
        self.value = value
        self.valid = valid
        shown = value if isinstance(value, str) else repr(value)
        text = f"{parameter}={shown}: {valid}" if value is not None else f"{parameter}: {valid}"
        super().__init__(" ".join(text.split()))


_ARGUMENT = re.compile(r"^argument (?P<name>[^:]+): (?P<rest>.*)$", re.S)
_CHOICE = re.compile(r"invalid choice: '?(?P<value>.*?)'? \(choose from (?P<choices>.*)\)$", re.S)
_BAD_VALUE = re.compile(r"invalid (?P<type>\S+) value: '?(?P<value>.*?)'?$", re.S)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors raise :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        m = _ARGUMENT.match(message)
        if m is None:
            unknown = message.removeprefix("unrecognized arguments: ")
            if unknown != message:
                first = unknown.split()[0] if unknown.split() else unknown
                raise UsageError(first, None, f"unrecognized argument (see '{self.prog} --help')")
            required = message.removeprefix("the following arguments are required: ")
            if required != message:
                raise UsageError(required, None, "required")
            raise UsageError(self.prog, None, message)
        name, rest = m["name"].split("/")[-1], m["rest"]
        if c := _CHOICE.match(rest):
            choices = c["choices"].replace("'", "")
            raise UsageError(name, c["value"], f"choose from {choices}")
        if b := _BAD_VALUE.match(rest):
            raise UsageError(name, b["value"], f"expected a value of type {b['type']}")
        raise UsageError(name, None, rest)


def int_arg(
    name: str, *, minimum: int | None = None, maximum: int | None = None
) -> Callable[[str], int]:
    """An argparse ``type=`` for an integer flag ``name`` within ``[minimum, maximum]``."""

    def convert(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise UsageError(name, text, f"expected an integer{_range(minimum, maximum)}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise UsageError(name, text, f"expected an integer{_range(minimum, maximum)}")
        return value

    convert.__name__ = "integer"
    return convert


def float_arg(
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> Callable[[str], float]:
    """An argparse ``type=`` for a finite number flag ``name`` (nan and inf are refused)."""

    def convert(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        low_ok = minimum is None or (value > minimum if exclusive_minimum else value >= minimum)
        if not math.isfinite(value) or not low_ok or (maximum is not None and value > maximum):
            bound = _range(minimum, maximum, exclusive_minimum)
            raise UsageError(name, text, f"expected a finite number{bound}")
        return value

    convert.__name__ = "number"
    return convert


def _range(minimum: float | None, maximum: float | None, exclusive: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f" in {'(' if exclusive else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f" {'>' if exclusive else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
