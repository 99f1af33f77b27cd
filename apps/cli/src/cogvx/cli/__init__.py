"""cogvx.cli: the single ``cogvx`` console script; subcommands come from entry points.

:mod:`cogvx.cli.usage` (``UsageError``, ``ArgumentParser``) is what subcommands raise and parse
with; :mod:`cogvx.cli.hydra` (needs the ``hydra`` extra) composes their Hydra configs strictly and
runs multirun sweeps.
"""

from cogvx.cli.main import ENTRY_POINT_GROUP, available_commands, main
from cogvx.cli.usage import ArgumentParser, UsageError, float_arg, int_arg

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArgumentParser",
    "UsageError",
    "available_commands",
    "float_arg",
    "int_arg",
    "main",
]
