"""Start-up of the ``cogvx`` command: wall time of ``--help`` paths and of a tiny generation, plus
the top import-time offenders (``python -X importtime``).

Every measured command runs in a fresh process; variants run interleaved, round by round, so a
"before" tree (``--old-src DIR``, prepended to ``PYTHONPATH`` so its ``cogvx.infer``/``cogvx.cli``
shadow the workspace's) and the current tree see the same machine load.

    .venv/bin/python benchmarks/startup_bench.py --rounds 3 [--old-src /tmp/old/apps/infer/src \
        --old-src /tmp/old/apps/cli/src] [--model DIR]

Writes ``benchmarks/results/startup.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELP_TOP = "from cogvx.cli.main import main; main(['--help'])"
HELP_GENERATE = "from cogvx.cli.main import main; main(['generate', '--help'])"
# everything the generate path imports before the first denoising step (the pipeline, T5, Hydra)
IMPORT_RUN = (
    "import cogvx.cli.hydra, cogvx.infer.cli, cogvx.infer.config; cogvx.infer.build_pipeline"
)
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def _env(src: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([*src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _wall(code: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(code, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def _importtime(snippet: str, env: dict[str, str]) -> tuple[float, list[tuple[float, str]]]:
    """(total seconds of top-level imports, [(cumulative s, module)] of the heaviest top-level and
    second-level imports)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", snippet],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    rows = []
    total = 0.0
    for line in out.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        depth = len(m[3]) // 2
        cumulative = int(m[2]) / 1e6
        if depth == 0:
            total += cumulative
        if depth <= 2:
            rows.append((cumulative, f"{'  ' * depth}{m[4]}"))
    rows.sort(reverse=True)
    return total, rows[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--old-src", action="append", default=[], help="src dir of a 'before' tree")
    ap.add_argument("--model", help="a tiny model folder: also time a 2-step generation")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "startup.md"))
    args = ap.parse_args()

    variants = {"current": _env([])}
    if args.old_src:
        variants["before"] = _env(args.old_src)
    commands = {
        "cogvx --help": [sys.executable, "-c", HELP_TOP],
        "cogvx generate --help": [sys.executable, "-c", HELP_GENERATE],
    }
    if args.model:
        tmp = tempfile.mkdtemp(prefix="startup-bench-")
        gen = ["generate", "a red circle", "--model", args.model, "--no-progress", "--steps", "2"]
        gen += [
            "--frames",
            "9",
            "--height",
            "16",
            "--width",
            "32",
            "sampling.max_sequence_length=12",
        ]
        commands["cogvx generate (tiny, 2 steps)"] = [
            sys.executable,
            "-c",
            "import sys; from cogvx.cli.main import main; sys.exit(main(sys.argv[1:]))",
            *gen,
            "--overwrite",
            "-o",
            f"{tmp}/x.mp4",
        ]
    # The README's first command: the shipped shapes model with every default (both trees).
    readme_out = tempfile.mkdtemp(prefix="startup-bench-readme-")
    commands["README command (shipped model)"] = [
        sys.executable,
        "-c",
        "import sys; from cogvx.cli.main import main; sys.exit(main(sys.argv[1:]))",
        "generate",
        "a red circle moves to the right",
        "--seed",
        "0",
        "--no-progress",
        "--overwrite",
        "-o",
        f"{readme_out}/x.mp4",
    ]
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, cmd in commands.items():
            for variant, env in variants.items():
                if variant == "before" and "tiny" in name:
                    continue  # the old tree's outputs and flags differ
                times.setdefault((name, variant), []).append(_wall(cmd, env))
    load = os.getloadavg()[0]
    lines = [
        "# Start-up of `cogvx`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, {args.rounds} rounds interleaved, fresh process each, "
        f"load average {load:.1f} on {os.cpu_count()} cores (shared machine).",
        "",
        "| command | " + " | ".join(f"{v} median (min) s" for v in variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for name in commands:
        cells = []
        for variant in variants:
            t = times.get((name, variant))
            cells.append(f"{statistics.median(t):.2f} ({min(t):.2f})" if t else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for variant, env in variants.items():
        for label, snippet in (("generate --help", HELP_GENERATE), ("run path", IMPORT_RUN)):
            total, rows = _importtime(snippet, env)
            lines += ["", f"## `-X importtime`, {label}, {variant}: {total:.2f} s of imports", ""]
            lines += ["| cumulative s | module |", "|---|---|"]
            lines += [
                f"| {c:.2f} | `{m.strip()}`{' (nested)' if m.startswith(' ') else ''} |"
                for c, m in rows
            ]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
