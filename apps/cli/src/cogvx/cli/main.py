"""The ``cogvx`` command: a dispatcher over the ``cogvx.commands`` entry-point group.

Each member that offers a subcommand declares it in its own pyproject::

    [project.entry-points."cogvx.commands"]
    vae = "cogvx.vae3d.cli:main"

The target is ``main(argv: list[str]) -> int``. Installing a member makes its subcommand appear;
nothing here imports the members. A subcommand fails by raising an exception with a readable
message: the dispatcher prints ``cogvx <name>: error: <message>`` on one line and exits 2 for a
:class:`~cogvx.cli.usage.UsageError` (a bad argument or config value: ``<parameter>=<value>: <what
is valid>``), 1 for any other exception (a runtime failure) and 130 on Ctrl-C (``COGVX_DEBUG=1``
shows the traceback instead). The dispatcher imports only the standard library, so ``cogvx --help``
and each subcommand's ``--help`` cost no more than the subcommand's own imports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points

from cogvx.cli.usage import UsageError

__all__ = ["ENTRY_POINT_GROUP", "available_commands", "main"]

ENTRY_POINT_GROUP = "cogvx.commands"


def available_commands() -> dict[str, EntryPoint]:
    """Installed subcommands by name (entry points are listed, not loaded)."""
    return {
        ep.name: ep for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    }


def _usage(commands: Mapping[str, object]) -> str:
    lines = ["usage: cogvx <command> [args ...]", "", "commands:"]
    for name, ep in commands.items():
        dist = getattr(ep, "dist", None)
        lines.append(f"  {name:<10}" + (f" (from {dist.name})" if dist is not None else ""))
    if not commands:
        lines.append("  (none installed: install a cogvx member, e.g. 'cogvx-vae3d[cli]')")
    lines += ["", "Run 'cogvx <command> --help' for a command's options."]
    return "\n".join(lines)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    return text or type(exc).__name__


def _error(prog: str, message: str, code: int = 1) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


Command = Callable[[list[str]], "int | None"]


def main(
    argv: Sequence[str] | None = None,
    *,
    commands: Mapping[str, EntryPoint | Command] | None = None,
) -> int:
    """Run ``cogvx <command> ...``; returns the exit code (the console script exits with it).

    ``commands`` replaces the installed entry points (name -> entry point or callable); it exists
    so embedding programs and tests can run the dispatcher over their own commands.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    commands = dict(available_commands() if commands is None else commands)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(commands))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in commands:
        valid = ", ".join(commands) or "none installed"
        return _error("cogvx", f"command={name}: unknown command (valid: {valid})", 2)
    prog = f"cogvx {name}"
    debug = os.environ.get("COGVX_DEBUG", "") not in ("", "0")
    entry = commands[name]
    try:
        command = entry.load() if isinstance(entry, EntryPoint) else entry
    except ImportError as e:
        if debug:
            raise
        dist = getattr(entry, "dist", None)
        extra = f"; install its extra, e.g. pip install '{dist.name}[cli]'" if dist else ""
        return _error(prog, f"this command needs a missing dependency ({_one_line(e)}){extra}")
    try:
        code = command(rest)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except UsageError as e:
        if debug:
            raise
        return _error(prog, _one_line(e), 2)
    except SystemExit as e:  # argparse: --help (0) and usage errors (2) already printed
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:
        if debug:
            raise
        return _error(prog, _one_line(e))
    return int(code or 0)


def console_main() -> None:
    sys.exit(main())
