"""cogvx.cli: the single ``cogvx`` console script; subcommands come from entry points."""

from cogvx.cli.main import ENTRY_POINT_GROUP, available_commands, main

__all__ = ["ENTRY_POINT_GROUP", "available_commands", "main"]
