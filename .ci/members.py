"""Facts about the workspace members for `.ci/run` (standard library only, Python >= 3.11).

python3 .ci/members.py list                 member folders, one per line
python3 .ci/members.py name DIR             the distribution name of a member
python3 .ci/members.py lowest-args DIR      `uv pip install` arguments for the lowest-direct
                                            check: the member and the workspace members it
                                            needs (editable), plus its dev group
python3 .ci/members.py extras DIR           the member's extras for the checks (comma-separated)
python3 .ci/members.py smoke DIR            the member's smoke tests for the lowest-direct check
python3 .ci/members.py import-all DIR       (run with the member's environment) import every
                                            module of the member; exit 1 naming the failures
python3 .ci/members.py versions DIR         (same) the installed versions of its direct deps
"""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Extras that need hardware this check does not have (xformers: CUDA kernels only, and it pins
# one torch build); they are never imported at module level.
GPU_EXTRAS = {"xformers"}
# Dev-only dependencies left out of the lowest-direct environments: diffusers is the parity
# oracle (pinned exactly, and 0.42 needs torch >= 2.6); its tests are not smoke tests.
ORACLES = {"diffusers"}
# Smoke tests run against the lowest-direct environment: fast files that exercise the declared
# third-party libraries (not the diffusers parity tests). Paths relative to the member.
SMOKE = {
    "packages/videoio": ["tests/test_files.py", "tests/test_manifest.py"],
    "packages/modelio": ["tests"],
    # test_bad_input + test_cli use our VAE only (the diffusers comparisons are not smoke tests)
    "packages/vae3d": ["tests/test_bad_input.py", "tests/test_cli.py"],
    "packages/expert-dit": [
        "tests/test_config.py",
        "tests/test_bad_input.py",
        "tests/kernels/test_reference.py",
        "tests/kernels/test_triton_gate.py",
    ],
    "packages/framepack": ["tests/test_shapes.py", "tests/test_collate.py"],
    "packages/evals": ["tests/test_backends_transformers.py", "tests/test_metrics.py"],
    # test_dense/test_classifiers build processors with a newer transformers API than the floor
    "packages/captioner": ["tests/test_chat.py", "tests/test_upsample.py", "tests/test_rules.py"],
    # these tests need the tiny model folders of cogvx-testing, which diffusers builds
    "packages/testing": [],
    "apps/cli": ["tests"],
    "apps/infer": [],
    "apps/train": [],
    # the browser tests need Chromium and a model load; these use gradio-free parts and videoio
    "apps/demo": ["tests/test_worker.py", "tests/test_choices_uploads.py"],
}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")


def members() -> dict[str, Path]:
    """Distribution name -> member folder, for every member of the workspace."""
    out = {}
    for pattern in ("packages/*", "apps/*"):
        for d in sorted(ROOT.glob(pattern)):
            f = d / "pyproject.toml"
            if f.is_file():
                out[tomllib.loads(f.read_text())["project"]["name"]] = d
    return out


def project(d: Path) -> dict:
    return tomllib.loads((d / "pyproject.toml").read_text())


def split(req: str) -> tuple[str, str]:
    m = _NAME.match(req)
    if not m:
        raise SystemExit(f"cannot parse requirement {req!r}")
    return m.group(1).lower().replace("_", "-"), m.group(2) or ""


def closure(d: Path, ws: dict[str, Path], with_dev: bool) -> tuple[set[str], list[str]]:
    """Workspace members needed by ``d`` (with their extras), and its non-workspace dev reqs."""
    seen: set[str] = set()
    extras: dict[str, set[str]] = {}
    todo = [(project(d)["project"]["name"], "")]
    dev = project(d).get("dependency-groups", {}).get("dev", []) if with_dev else []
    own = project(d)["project"]["name"]
    wanted = [
        e for e in project(d)["project"].get("optional-dependencies", {}) if e not in GPU_EXTRAS
    ]
    if wanted:
        todo = [(own, "[" + ",".join(wanted) + "]")]
    external_dev = []
    for r in dev:
        name, extra = split(r)
        if name in ws:
            todo.append((name, extra))
        elif name not in ORACLES:
            external_dev.append(r)
    while todo:
        name, extra = todo.pop()
        if extra:
            extras.setdefault(name, set()).update(
                e.strip() for e in extra.strip("[]").split(",") if e.strip()
            )
        if name in seen and not extra:
            continue
        seen.add(name)
        proj = project(ws[name])["project"]
        reqs = list(proj.get("dependencies", []))
        for e in extras.get(name, ()):
            reqs += proj.get("optional-dependencies", {}).get(e, [])
        for r in reqs:
            n, x = split(r)
            if n in ws and (n not in seen or x):
                todo.append((n, x))
    args = []
    for name in sorted(seen):
        rel = ws[name].relative_to(ROOT)
        ex = sorted(extras.get(name, ()))
        args.append(f"{rel}[{','.join(ex)}]" if ex else str(rel))
    return set(args), external_dev


def import_all(d: Path) -> int:
    src = d / "src"
    failures = []
    count = 0
    for f in sorted(src.rglob("*.py")):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        name = ".".join(parts)
        count += 1
        try:
            importlib.import_module(name)
        except Exception:
            failures.append((name, traceback.format_exc(limit=3)))
    for name, tb in failures:
        print(f"import {name} FAILED:\n{tb}")
    print(f"imported {count - len(failures)}/{count} modules of {d.relative_to(ROOT)}")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    ws = members()
    if argv[:1] == ["workflow-check"]:
        # the CI workflow's matrix must list exactly the workspace members
        text = (ROOT / ".github/workflows/ci.yml").read_text()
        listed = set(re.findall(r"^\s*-\s+((?:packages|apps)/[\w-]+)\s*$", text, re.M))
        have = {str(p.relative_to(ROOT)) for p in ws.values()}
        if listed != have:
            print(
                f".github/workflows/ci.yml matrix: missing {sorted(have - listed)}, "
                f"not members {sorted(listed - have)}"
            )
            return 1
        print(f"workflow matrix lists all {len(have)} members")
        return 0
    if argv[:1] == ["list"]:
        print("\n".join(str(p.relative_to(ROOT)) for p in ws.values()))
        return 0
    if len(argv) != 2:
        print(__doc__)
        return 2
    cmd, d = argv[0], (ROOT / argv[1]).resolve()
    if cmd == "name":
        print(project(d)["project"]["name"])
    elif cmd == "lowest-args":
        editables, dev = closure(d, ws, with_dev=True)
        for e in sorted(editables):
            print("-e")
            print(e)
        for r in dev:
            print(r)
    elif cmd == "extras":
        opt = project(d)["project"].get("optional-dependencies", {})
        print(",".join(e for e in opt if e not in GPU_EXTRAS))
    elif cmd == "smoke":
        rel = str(d.relative_to(ROOT))
        for t in SMOKE.get(rel, ["tests"]):
            print(f"{rel}/{t}")
    elif cmd == "import-all":
        return import_all(d)
    elif cmd == "versions":
        from importlib.metadata import PackageNotFoundError, version

        reqs = project(d)["project"].get("dependencies", [])
        for opt in project(d)["project"].get("optional-dependencies", {}).values():
            reqs = reqs + opt
        shown = []
        for r in reqs:
            n, _ = split(r)
            if n in ws:
                continue
            try:
                shown.append(f"{n}=={version(n)}")
            except PackageNotFoundError:
                shown.append(f"{n} (not installed)")
        print("direct dependencies:", " ".join(sorted(set(shown))))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
