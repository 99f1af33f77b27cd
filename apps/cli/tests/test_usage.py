"""``cogvx.cli.usage`` (one-line usage errors, exit 2) and ``cogvx.cli.hydra`` (strict composition,
sweeps, multirun) on a schema stored in the ConfigStore (no YAML needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cogvx.cli import ArgumentParser, UsageError, float_arg, int_arg, main
from cogvx.cli.hydra import compose, multirun, sweep_jobs


def frames_command(argv):
    p = ArgumentParser(prog="cogvx frames")
    p.add_argument("--frames", type=int_arg("--frames", minimum=1))
    p.add_argument("--scale", type=float_arg("--scale", minimum=0.0, exclusive_minimum=True))
    p.add_argument("--mode", choices=["a", "b"])
    args = p.parse_args(argv)
    if args.frames == 7:
        raise RuntimeError("disk full while writing")
    print(args.frames, args.scale)
    return 0


# argv -> (exit code, the whole stderr line)
DISPATCH = [
    (["frames", "--frames", "0"], 2, "cogvx frames: error: --frames=0: expected an integer >= 1"),
    (["frames", "--frames", "x"], 2, "cogvx frames: error: --frames=x: expected an integer >= 1"),
    (
        ["frames", "--scale", "0"],
        2,
        "cogvx frames: error: --scale=0: expected a finite number > 0.0",
    ),
    (
        ["frames", "--scale", "nan"],
        2,
        "cogvx frames: error: --scale=nan: expected a finite number > 0.0",
    ),
    (["frames", "--mode", "c"], 2, "cogvx frames: error: --mode=c: choose from a, b"),
    (["frames", "--frames"], 2, "cogvx frames: error: --frames: expected one argument"),
    (
        ["frames", "--what"],
        2,
        "cogvx frames: error: --what: unrecognized argument (see 'cogvx frames --help')",
    ),
    (["frames", "--frames", "7"], 1, "cogvx frames: error: disk full while writing"),
    (["framez"], 2, "cogvx: error: command=framez: unknown command (valid: frames)"),
]


@pytest.mark.parametrize("argv,code,line", DISPATCH, ids=[" ".join(d[0]) for d in DISPATCH])
def test_dispatcher_refusals_are_one_line(argv, code, line, capsys):
    assert main(argv, commands={"frames": frames_command}) == code
    captured = capsys.readouterr()
    assert captured.err == line + "\n"
    assert "Traceback" not in captured.out


def test_valid_values_pass(capsys):
    assert (
        main(["frames", "--frames", "9", "--scale", "0.5"], commands={"frames": frames_command})
        == 0
    )
    assert capsys.readouterr().out == "9 0.5\n"


def test_usage_error_text():
    assert str(UsageError("--fps", "0", "an integer >= 1")) == "--fps=0: an integer >= 1"
    assert str(UsageError("PROMPT", None, "required")) == "PROMPT: required"
    assert not isinstance(UsageError("a", 1, "b"), ValueError)  # argparse would swallow it


# ---- cogvx.cli.hydra --------------------------------------------------------------------------


@dataclass
class Optim:
    lr: float = 1e-4
    steps: int = 10


@dataclass
class Extra:
    depth: int = 2


@dataclass
class Schema:
    optim: Optim = field(default_factory=Optim)
    extra: Extra = field(default_factory=Extra)
    name: str = "run"
    data: str = "???"


def _compose(overrides):
    return compose(
        "cogvx.cli", "cli_test_schema", overrides, schema=Schema, schema_name="cli_test_schema"
    )


def test_compose_is_strict_and_names_the_key():
    cfg = _compose(["data=x", "optim.lr=0.5", "extra.depth=3"])
    assert (cfg.optim.lr, cfg.extra.depth, cfg.data) == (0.5, 3, "x")
    cases = {
        "optim.lrr=1": r"^optim\.lrr=1: .*valid keys under optim: lr, steps$",
        "+optim.foo=1": r"^optim\.foo=1: 'optim' has no such key; valid keys under optim: lr, steps$",
        "+extra.width=4": r"^extra\.width=4: 'extra' has no such key",
        "optim.steps=abc": r"^optim\.steps=abc: Value 'abc' of type 'str' could not be converted",
        "optim.steps=[1": r"^optim\.steps=\[1: not a valid override",
        "+top=1": r"^top=1: the config has no such key",
    }
    for override, pattern in cases.items():
        with pytest.raises(UsageError, match=pattern):
            _compose(["data=x", override])
    with pytest.raises(UsageError, match=r"^data=\?\?\?: required"):
        _compose([])


def test_sweep_jobs_match_hydra_order():
    assert sweep_jobs(["a=1,2", "b=x", "c=3,4"]) == [
        ["a=1", "b=x", "c=3"],
        ["a=1", "b=x", "c=4"],
        ["a=2", "b=x", "c=3"],
        ["a=2", "b=x", "c=4"],
    ]
    assert sweep_jobs(["a=range(3)"]) == [["a=0"], ["a=1"], ["a=2"]]


def test_multirun_runs_one_job_per_combination(tmp_path):
    from hydra.core.hydra_config import HydraConfig

    seen = []

    def task(cfg):
        seen.append((cfg.optim.lr, HydraConfig.get().runtime.output_dir))
        return cfg.optim.lr * 2

    import logging

    root_handlers = logging.getLogger().handlers[:]
    sweep = tmp_path / "sweep"
    results = multirun(
        "cogvx.cli",
        "cli_test_schema",
        ["data=x", "optim.lr=0.1,0.2,0.3", f"hydra.sweep.dir={sweep}"],
        task,
        schema=Schema,
        schema_name="cli_test_schema",
    )
    assert results == [0.2, 0.4, 0.6]
    assert [lr for lr, _ in seen] == [0.1, 0.2, 0.3]
    for i, (_, out) in enumerate(seen):
        assert out == str(sweep / str(i)) and (sweep / str(i) / ".hydra" / "config.yaml").is_file()
    assert logging.getLogger().handlers == root_handlers  # Hydra's job logging is undone
