"""Bad input to ``cogvx`` and ``cogvx generate``: every case is refused before any work with one line
``cogvx <cmd>: error: <parameter>=<value>: <what is valid>``, the right exit code (2: usage), no
traceback and no file left behind. Plus a hypothesis check of argument values: a valid value or a
one-line refusal, never a traceback. Refusals load no model (in-process ``main``, so this is fast).
"""

from __future__ import annotations

import os
from pathlib import Path

# Lightning adds a StreamHandler bound to the sys.stderr of the moment it is first imported; import
# it at collection time, not inside a test whose captured stderr is closed afterwards.
import lightning  # noqa: F401
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogvx.cli.main import main as cogvx_main

T2V = dict(name="t2v-rope-dpm", rope=True, sampler="dpm", tokenizer="json", snr_shift=1.0)
SIZE = ["--frames", "9", "--height", "16", "--width", "32"]

# (id, argv after "cogvx"; {model}, {tmp}, {file}, {dir} are filled in, expected exit, line prefix
# after "cogvx <cmd>: error: ")
CASES = [
    # the dispatcher
    ("unknown-command", ["nope"], 2, "command=nope: unknown command"),
    ("unknown-command-case", ["GENERATE"], 2, "command=GENERATE: unknown command"),
    ("flag-as-command", ["--frames"], 2, "command=--frames: unknown command"),
    # argparse-level values (before Hydra)
    ("frames-0", ["generate", "a", "--frames", "0"], 2, "--frames=0: expected an integer >= 1"),
    ("frames-negative", ["generate", "a", "--frames=-5"], 2, "--frames=-5: expected an integer"),
    ("frames-text", ["generate", "a", "--frames", "abc"], 2, "--frames=abc: expected an integer"),
    ("frames-float", ["generate", "a", "--frames", "1.5"], 2, "--frames=1.5: expected an integer"),
    ("height-0", ["generate", "a", "--height", "0", "--width", "0"], 2, "--height=0: "),
    ("width-0", ["generate", "a", "--width", "0"], 2, "--width=0: expected an integer >= 1"),
    ("fps-0", ["generate", "a", "--fps", "0"], 2, "--fps=0: expected an integer in [1, 1000]"),
    ("fps-huge", ["generate", "a", "--fps", "100000"], 2, "--fps=100000: "),
    ("steps-0", ["generate", "a", "--steps", "0"], 2, "--steps=0: expected an integer in [1,"),
    ("steps-text", ["generate", "a", "--steps", "many"], 2, "--steps=many: "),
    (
        "guidance-nan",
        ["generate", "a", "--guidance", "nan"],
        2,
        "--guidance=nan: expected a finite",
    ),
    ("guidance-inf", ["generate", "a", "--guidance", "inf"], 2, "--guidance=inf: "),
    ("guidance-negative", ["generate", "a", "--guidance=-1"], 2, "--guidance=-1: "),
    ("strength-0", ["generate", "a", "--strength", "0"], 2, "--strength=0: expected a finite"),
    ("strength-big", ["generate", "a", "--strength", "1.5"], 2, "--strength=1.5: "),
    ("lora-scale-nan", ["generate", "a", "--lora-scale", "nan"], 2, "--lora-scale=nan: "),
    ("seed-negative", ["generate", "a", "--seed=-1"], 2, "--seed=-1: a non-negative integer"),
    ("seed-text", ["generate", "a", "--seed", "x"], 2, "--seed=x: "),
    ("seed-empty-item", ["generate", "a", "--seed", "1,,2"], 2, "--seed=1,,2: "),
    ("seed-missing", ["generate", "a", "--seed"], 2, "--seed: expected one argument"),
    ("task-choice", ["generate", "a", "--task", "x2v"], 2, "--task=x2v: choose from t2v, i2v"),
    ("sampler-choice", ["generate", "a", "--sampler", "euler"], 2, "--sampler=euler: choose from"),
    ("dtype-choice", ["generate", "a", "--dtype", "fp8"], 2, "--dtype=fp8: choose from"),
    ("preset-choice", ["generate", "a", "--preset", "big"], 2, "--preset=big: choose from"),
    ("unknown-flag", ["generate", "a", "--bogus"], 2, "--bogus: unrecognized argument"),
    ("staged-offload", ["generate", "a", "--staged", "--offload"], 2, "--staged: "),
    (
        "cfg-contradiction",
        ["generate", "a", "--dynamic-cfg", "--guidance-schedule", "constant"],
        2,
        "--dynamic-cfg: contradicts",
    ),
    ("two-prompts", ["generate", "a", "b"], 2, "PROMPT=a b: one prompt argument"),
    ("empty-prompt", ["generate", ""], 2, "PROMPT=: a non-empty prompt"),
    # Hydra overrides (struct mode, ranges)
    (
        "override-type",
        ["generate", "a", "sampling.steps=abc"],
        2,
        "sampling.steps=abc: Value 'abc'",
    ),
    ("override-typo", ["generate", "a", "sampling.stepz=3"], 2, "sampling.stepz=3: "),
    ("override-plus", ["generate", "a", "+sampling.foo=1"], 2, "sampling.foo=1: 'sampling' has no"),
    (
        "override-plus-sampler",
        ["generate", "a", "+sampling.sampler=dpm"],
        2,
        "sampling.sampler=dpm",
    ),
    ("override-top-plus", ["generate", "a", "+foo=1"], 2, "foo=1: the config has no such key"),
    ("preset-missing", ["generate", "a", "preset=nonexistent"], 2, "preset=nonexistent: choose"),
    (
        "override-syntax",
        ["generate", "a", "sampling.steps=[1"],
        2,
        "sampling.steps=[1: not a valid",
    ),
    ("frames-override-0", ["generate", "a", "sampling.num_frames=0"], 2, "sampling.num_frames=0: "),
    ("height-override-0", ["generate", "a", "sampling.height=0"], 2, "sampling.height=0: "),
    ("fps-override-0", ["generate", "a", "output.fps=0"], 2, "output.fps=0: an integer in [1,"),
    ("guidance-override-nan", ["generate", "a", "sampling.guidance_scale=nan"], 2, "sampling.gui"),
    (
        "seq-len-huge",
        ["generate", "a", "sampling.max_sequence_length=100000"],
        2,
        "sampling.max_se",
    ),
    ("residency-choice", ["generate", "a", "pipeline.residency=lazy"], 2, "pipeline.residency=la"),
    ("devices-0", ["generate", "a", "batch.devices=0"], 2, "batch.devices=0: auto or"),
    ("format-choice", ["generate", "a", "output.format=avi"], 2, "output.format=avi: choose"),
    ("vae-chunk-0", ["generate", "a", "vae.encode_frames=0"], 2, "vae.encode_frames=0: "),
    ("strength-override-0", ["generate", "a", "sampling.strength=0"], 2, "sampling.strength=0.0: "),
    (
        "schedule-choice",
        ["generate", "a", "sampling.guidance_schedule=x"],
        2,
        "sampling.guidance_s",
    ),
    # the model folder and the inputs
    ("model-missing", ["generate", "a", "--model", "{tmp}/none"], 2, "--model={tmp}/none: a model"),
    ("model-is-file", ["generate", "a", "--model", "{file}"], 2, "--model={file}: a model folder"),
    ("model-empty-dir", ["generate", "a", "--model", "{dir}"], 2, "--model={dir}: a model folder"),
    ("no-prompt", ["generate", "--model", "{model}"], 2, "PROMPT: required"),
    ("image-for-t2v", ["generate", "a", "--model", "{model}", "--image", "{file}"], 2, "--image="),
    ("video-for-t2v", ["generate", "a", "--model", "{model}", "--video", "{file}"], 2, "--video="),
    (
        "frames-invalid",
        ["generate", "a", "--model", "{model}", "--frames", "10"],
        2,
        "--frames=10: ",
    ),
    (
        "height-multiple",
        ["generate", "a", "--model", "{model}", *SIZE, "--height", "17"],
        2,
        "--he",
    ),
    # output paths, checked before any work
    (
        "output-folder",
        ["generate", "a", "--model", "{model}", "-o", "{dir}"],
        2,
        "--output={dir}: ",
    ),
    ("output-suffix", ["generate", "a", "--model", "{model}", "-o", "{tmp}/x.avi"], 2, "--output="),
    (
        "output-in-file",
        ["generate", "a", "--model", "{model}", "-o", "{file}/x.mp4"],
        2,
        "--output",
    ),
    (
        "output-dotfile",
        ["generate", "a", "--model", "{model}", "-o", "{tmp}/.x.mp4"],
        2,
        "--output",
    ),
    (
        "output-unwritable",
        ["generate", "a", "--model", "{model}", "-o", "/proc/x.mp4"],
        2,
        "--outp",
    ),
    ("output-existing", ["generate", "a", "--model", "{model}", "-o", "{file}"], 2, "--output="),
    # batch and multirun
    (
        "prompt-file-missing",
        ["generate", "--prompt-file", "{tmp}/p.txt", "--model", "{model}"],
        2,
        "--prompt-file={tmp}",
    ),
    ("prompt-and-file", ["generate", "a", "--prompt-file", "{file}"], 2, "PROMPT=a: pass either"),
    (
        "batch-output-file",
        ["generate", "--prompt-file", "{file}", "-o", "{tmp}/x.mp4"],
        2,
        "--outp",
    ),
    ("multirun-output", ["generate", "a", "--seed", "1,2", "-o", "{tmp}/x.mp4"], 2, "--output="),
    (
        "multirun-bad-job",
        ["generate", "a", "-m", "--model", "{model}", "sampling.steps=2,0"],
        2,
        "sampling.steps=0: ",
    ),
    ("multirun-prompt-file", ["generate", "-m", "--prompt-file", "{file}"], 2, "--prompt-file="),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A scratch cwd (default outputs would land here) with a file and an empty folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.mp4").write_bytes(b"not a video")
    (tmp_path / "empty").mkdir()
    return tmp_path


def _fill(argv: list[str], model: Path, tmp: Path) -> list[str]:
    subs = {"{model}": str(model), "{tmp}": str(tmp), "{file}": str(tmp / "file.mp4")}
    subs["{dir}"] = str(tmp / "empty")
    out = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        out.append(a)
    return out


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_cases_are_distinct():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)
    assert len({tuple(c[1]) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,argv,code,prefix", CASES, ids=[c[0] for c in CASES])
def test_refused_with_one_line(name, argv, code, prefix, make_folder, workdir, capsys):
    model = make_folder(T2V)
    capsys.readouterr()  # building the folder (first use) prints progress
    before = _tree(workdir)
    argv = _fill(argv, model, workdir)
    prefix = _fill([prefix], model, workdir)[0]
    assert cogvx_main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    cmd = "cogvx" if argv[0] != "generate" else "cogvx generate"
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{cmd}: error: {prefix}"), lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert _tree(workdir) == before  # nothing created, nothing touched


# ---- hypothesis: argument values --------------------------------------------------------------

_TEXT = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
)
_INT_FLAGS = {
    "--frames": (1, None),
    "--height": (1, None),
    "--steps": (1, 10_000),
    "--fps": (1, 1000),
}


def _valid_int(text: str, low: int, high: int | None) -> bool:
    try:
        v = int(text.strip())
    except ValueError:
        return False
    return v >= low and (high is None or v <= high)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flag=st.sampled_from([*_INT_FLAGS, "--guidance", "override"]),
    value=_TEXT,
)
def test_argument_values_never_crash(flag, value, workdir, capsys):
    """Any value: either accepted (the run then stops at the absent model folder) or refused in one
    line naming the parameter; never a traceback, never a file."""
    absent = workdir / "no-model"
    arg = f"sampling.steps={value}" if flag == "override" else f"{flag}={value}"
    before = _tree(workdir)
    code = cogvx_main(["generate", "a prompt", "--model", str(absent), arg])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert lines[0].startswith("cogvx generate: error: ") and "Traceback" not in captured.err
    named = lines[0].removeprefix("cogvx generate: error: ")
    expected_param = "sampling.steps" if flag == "override" else flag
    assert named.startswith((expected_param, "--model=")), named
    if flag in _INT_FLAGS:  # the refusal is right: valid values pass, invalid ones are named
        accepted = named.startswith("--model=")
        assert accepted == _valid_int(value, *_INT_FLAGS[flag]), named
    assert _tree(workdir) == before
    assert not os.path.exists(workdir / "outputs")
