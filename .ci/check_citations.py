"""Citation check of the repository (run by `.ci/run`; standard library only).

Fails when
1. a tracked ``.py``/``.md``/``.toml``/``.yaml`` file cites material outside the repository: the
   project's spec or design notes ("spec sec. 3", "spec 5.1", "design doc", "gotcha 8",
   ``shared/spec``, ``../shared``, ``/work/...``). Cite a ``docs/`` section, a paper section
   ("CogVideoX paper §3.1") or a public source file instead (see docs/architecture.md §Citations);
2. a ``docs/<file>.md`` reference names a file that does not exist, or a
   ``docs/<file>.md §Heading`` (inside docs/: ``[text](<file>.md) §Heading``) names a heading the
   file does not have. The text after ``§`` must start with a heading's exact text.

Usage: ``python3 .ci/check_citations.py [PATH ...]`` (default: the whole repository).
"""

from __future__ import annotations

import bisect
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml"}

# The forbidden forms (issue 10 item 8), case-insensitive.
FORBIDDEN = re.compile(
    r"spec (sec|§|section|gotcha|[0-9])|spec\.md|design (doc|note)|shared/(spec|design)"
    r"|\.\./shared|/work/(shared|coord)|\bgotcha \d",
    re.IGNORECASE,
)
# A citation of a docs page: `docs/<name>.md` anywhere, or `(<name>.md)` links inside docs/.
DOC_REF = re.compile(r"docs/([A-Za-z0-9_-]+)\.md")
DOC_LINK = re.compile(r"\]\(([A-Za-z0-9_-]+)\.md\)")
SECTION = re.compile(r"\s*§\s*")
MORE_SECTION = re.compile(r"\s*(?:,|and|or|/)\s*§\s*")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
# Line breaks inside a comment or docstring (with their comment marker) read as one space.
LINE_BREAK = re.compile(r"[ \t]*\n[ \t]*(?:#+[ \t]*|//[ \t]*|\*[ \t]+)?")


def repo_files(paths: list[str]) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *paths],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    files = [ROOT / p for p in out if p and Path(p).suffix in SUFFIXES]
    return [f for f in files if f.is_file() and ".venv" not in f.parts]


def headings(doc: Path) -> list[str]:
    found: list[str] = []
    in_fence = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        m = None if in_fence else HEADING.match(line)
        if m:
            found.append(m.group(1))
    return found


def section_ok(text: str, names: list[str]) -> str | None:
    """The heading that ``text`` (the words after §) starts with, or None."""
    best = None
    for name in names:
        if text.startswith(name):
            rest = text[len(name) : len(name) + 1]
            if (not rest or not rest.isalnum()) and (best is None or len(name) > len(best)):
                best = name
    return best


def flatten(text: str) -> tuple[str, list[int]]:
    """``text`` with line breaks as spaces, and the flat offset where each line break was."""
    parts, breaks, last, size = [], [], 0, 0
    for m in LINE_BREAK.finditer(text):
        parts.append(text[last : m.start()])
        size += m.start() - last
        breaks.append(size)
        parts.append(" ")
        size += 1
        last = m.end()
    parts.append(text[last:])
    return "".join(parts), breaks


def check_file(path: Path, docs: dict[str, list[str]]) -> list[str]:
    rel = path.relative_to(ROOT)
    text = path.read_text(encoding="utf-8", errors="replace")
    problems = []
    if rel != Path(".ci/check_citations.py"):
        for n, line in enumerate(text.splitlines(), 1):
            m = FORBIDDEN.search(line)
            if m:
                problems.append(
                    f"{rel}:{n}: cites material outside the repository ({m.group(0)!r}): "
                    "cite docs/<file>.md §Section, a paper section or a public source file"
                )
    flat, breaks = flatten(text)
    refs = list(DOC_REF.finditer(flat))
    if rel.parts[0] == "docs":
        refs += list(DOC_LINK.finditer(flat))
    for m in refs:
        name = m.group(1)
        line = bisect.bisect_right(breaks, m.start()) + 1
        if name not in docs:
            problems.append(f"{rel}:{line}: docs/{name}.md does not exist")
            continue
        pos = m.end()
        sec = SECTION.match(flat, pos)
        while sec:
            words = flat[sec.end() : sec.end() + 200]
            hit = section_ok(words, docs[name])
            if hit is None:
                shown = words.split("\n")[0][:40]
                problems.append(
                    f"{rel}:{line}: docs/{name}.md has no section §{shown!r}; "
                    f"its headings: {', '.join(docs[name])}"
                )
                break
            pos = sec.end() + len(hit)
            sec = MORE_SECTION.match(flat, pos)
    return problems


def main(argv: list[str]) -> int:
    docs = {p.stem: headings(p) for p in sorted((ROOT / "docs").glob("*.md"))}
    problems: list[str] = []
    files = repo_files(argv)
    for f in files:
        problems += check_file(f, docs)
    for p in problems:
        print(p)
    print(f"citations: {len(files)} files checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
