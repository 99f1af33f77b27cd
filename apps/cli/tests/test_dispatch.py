import argparse
import subprocess
import sys
from importlib.metadata import EntryPoint

from cogvx.cli import main


def echo(argv):
    parser = argparse.ArgumentParser(prog="cogvx echo")
    parser.add_argument("n", type=int)
    args = parser.parse_args(argv)
    print(f"got {args.n}")
    return 0 if args.n >= 0 else 3


def fail(argv):
    raise ValueError("frames must be 4k+1,\n got 10 (nearest valid: 9 or 13)")


def interrupted(argv):
    raise KeyboardInterrupt


COMMANDS = {"echo": echo, "fail": fail, "stop": interrupted}


def test_runs_the_command_and_returns_its_code(capsys):
    assert main(["echo", "4"], commands=COMMANDS) == 0
    assert capsys.readouterr().out == "got 4\n"
    assert main(["echo", "-1"], commands=COMMANDS) == 3


def test_errors_are_one_line_and_exit_nonzero(capsys):
    assert main(["fail"], commands=COMMANDS) == 1
    err = capsys.readouterr().err
    assert err == "cogvx fail: error: frames must be 4k+1, got 10 (nearest valid: 9 or 13)\n"


def test_usage_errors_help_and_unknown_commands(capsys):
    assert main(["echo", "x"], commands=COMMANDS) == 2  # argparse usage error
    assert main(["echo", "--help"], commands=COMMANDS) == 0
    assert main(["nope"], commands=COMMANDS) == 2
    err = capsys.readouterr().err
    assert err.endswith("cogvx: error: command=nope: unknown command (valid: echo, fail, stop)\n")
    assert main([], commands=COMMANDS) == 2
    assert main(["--help"], commands=COMMANDS) == 0
    assert "echo" in capsys.readouterr().out


def test_interrupt_exits_130(capsys):
    assert main(["stop"], commands=COMMANDS) == 130
    assert "interrupted" in capsys.readouterr().err


def test_missing_dependency_names_the_extra(capsys):
    ep = EntryPoint(name="ghost", value="cogvx_no_such_module:main", group="cogvx.commands")
    assert main(["ghost"], commands={"ghost": ep}) == 1
    assert "needs a missing dependency" in capsys.readouterr().err


def test_console_script_is_installed_and_lists_commands():
    out = subprocess.run(
        [sys.executable, "-c", "from cogvx.cli.main import console_main; console_main()", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("usage: cogvx <command>")
