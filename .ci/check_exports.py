"""Lazy-export check of every member's ``__init__.py`` (run by `.ci/run`; standard library only).

A package that exports its names lazily (``__getattr__, __dir__, _ = lazy_loader.attach(__name__,
submod_attrs={...})``) lists each name three times: in ``submod_attrs`` (what is imported at run
time), in the ``if TYPE_CHECKING:`` imports (what type checkers and IDEs see) and in the literal
``__all__`` (what is public). This check fails when the three disagree, when a name is mapped to a
submodule that does not exist, or when a ``submod_attrs`` name is not defined in its submodule.

Usage: ``python3 .ci/check_exports.py`` (the whole repository).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _submod_attrs(tree: ast.Module) -> dict[str, list[str]] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "attach":
                for kw in node.value.keywords:
                    if kw.arg == "submod_attrs":
                        return ast.literal_eval(kw.value)
    return None


def _literal_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "__all__" and node.value is not None:
            return list(ast.literal_eval(node.value))
    return None


def _eager_names(tree: ast.Module) -> set[str]:
    """Public names the ``__init__`` defines itself (functions, classes, constants)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def _type_checking_imports(tree: ast.Module, package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    sub = stmt.module.removeprefix(package + ".")
                    found.setdefault(sub, set()).update(a.asname or a.name for a in stmt.names)
    return found


def _defines(module_file: Path, name: str) -> bool:
    tree = ast.parse(module_file.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        elif isinstance(node, ast.ImportFrom | ast.Import) and any(
            (a.asname or a.name.split(".")[-1]) == name for a in node.names
        ):
            return True
    return False


def check(init: Path) -> list[str]:
    tree = ast.parse(init.read_text())
    attrs = _submod_attrs(tree)
    if attrs is None:
        return []
    where = init.relative_to(ROOT)
    package = ".".join(init.parent.relative_to(init.parent.parent.parent).parts)
    problems: list[str] = []
    lazy = {name for names in attrs.values() for name in names}
    public = _literal_all(tree)
    if public is None:
        problems.append(f"{where}: no literal __all__ beside lazy_loader.attach")
    else:
        expected = lazy | _eager_names(tree)
        for name in sorted(set(public) - expected):
            problems.append(f"{where}: {name!r} is in __all__ but neither lazy nor defined here")
        for name in sorted(lazy - set(public)):
            problems.append(f"{where}: {name!r} is in submod_attrs but not in __all__")
    typed = _type_checking_imports(tree, package)
    for sub, names in attrs.items():
        if set(names) != typed.get(sub, set()):
            problems.append(
                f"{where}: submod_attrs[{sub!r}] = {sorted(names)} but TYPE_CHECKING imports "
                f"{sorted(typed.get(sub, set()))} from it"
            )
        module_file = init.parent / f"{sub.replace('.', '/')}.py"
        if not module_file.is_file():
            module_file = init.parent / sub.replace(".", "/") / "__init__.py"
        if not module_file.is_file():
            problems.append(f"{where}: submodule {sub!r} does not exist")
            continue
        for name in names:
            if not _defines(module_file, name):
                problems.append(f"{where}: {name!r} is not defined in {sub!r}")
    for sub in sorted(set(typed) - set(attrs)):
        problems.append(f"{where}: TYPE_CHECKING imports from {sub!r}, absent from submod_attrs")
    return problems


def main() -> int:
    inits = sorted(ROOT.glob("packages/*/src/cogvx/*/__init__.py")) + sorted(
        ROOT.glob("apps/*/src/cogvx/*/__init__.py")
    )
    problems = [p for init in inits for p in check(init)]
    for p in problems:
        print(p)
    checked = sum(1 for init in inits if _submod_attrs(ast.parse(init.read_text())) is not None)
    print(f"lazy exports: {checked} packages checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
