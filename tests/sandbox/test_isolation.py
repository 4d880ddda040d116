"""The sandbox imports nothing from the rest of qatlan, so it can live (and move) on its own.

Every `.py` file under `qatlan/sandbox/` is parsed with `ast`; every import, at module level or
inside a function, absolute or relative, must stay inside `qatlan.sandbox` (or leave qatlan
altogether). `importlib.import_module("...")` / `__import__("...")` with a literal name count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "qatlan.sandbox"
SANDBOX_DIR = Path(__file__).resolve().parents[2] / "qatlan" / "sandbox"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SANDBOX_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _outside_sandbox(name: str) -> bool:
    """True for `qatlan` itself or any `qatlan.x` that is not `qatlan.sandbox[.…]`."""
    if name != "qatlan" and not name.startswith("qatlan."):
        return False  # the standard library or a third-party package
    return not (name == PACKAGE or name.startswith(PACKAGE + "."))


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute module a `from ... import` names; None when it climbs above the top level."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 >= len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The qualified names one node imports (`from a import b` gives `a`, or `a.b` above us)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _resolve_from(node, module, is_package)
        if base is None:
            return ["<relative import beyond the top-level package>"]
        if base and PACKAGE.startswith(base + "."):
            # `from qatlan import x`: what matters is x (`sandbox` is fine, `errors` is not)
            return [f"{base}.{alias.name}" for alias in node.names]
        return [base]
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return [first.value]
    return []


def forbidden_imports(path: Path) -> list[str]:
    """`file:line: name` for every import in `path` that reaches outside qatlan.sandbox."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module, is_package = _module_name(path), path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        for name in _targets(node, module, is_package):
            if name.startswith("<") or _outside_sandbox(name):
                found.append(f"{path.relative_to(SANDBOX_DIR.parents[1])}:{node.lineno}: {name}")
    return found


def test_the_sandbox_imports_nothing_from_the_rest_of_qatlan():
    files = sorted(SANDBOX_DIR.rglob("*.py"))
    assert len(files) > 20, f"expected the sandbox's modules under {SANDBOX_DIR}"
    found = [line for path in files for line in forbidden_imports(path)]
    assert not found, "the sandbox must import nothing from qatlan outside qatlan.sandbox:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "where", "bad"),
    [
        ("from qatlan.errors import WorldError", "world.py", True),
        ("from qatlan import __version__", "world.py", True),
        ("from qatlan import sandbox", "world.py", False),
        ("import qatlan", "world.py", True),
        ("import qatlan._gc as g", "world.py", True),
        ("import qatlan.sandbox.world", "world.py", False),
        ("def f():\n    from qatlan.config import load_config", "world.py", True),
        ("from .. import errors", "world.py", True),
        ("from ..errors import QatlanError", "world.py", True),
        ("from . import errors", "world.py", False),
        ("from .errors import SandboxError", "world.py", False),
        ("from . import errors", "__init__.py", False),
        ("from .. import errors", "__init__.py", True),
        ("from ... import x", "world.py", True),
        ("import importlib\nimportlib.import_module('qatlan.errors')", "world.py", True),
        ("import json, typer", "world.py", False),
        ("from starlette.routing import Match", "world.py", False),
    ],
)
def test_the_check_sees_every_kind_of_import(tmp_path, monkeypatch, source, where, bad):
    root = tmp_path / "qatlan" / "sandbox"
    root.mkdir(parents=True)
    monkeypatch.setitem(globals(), "SANDBOX_DIR", root)
    path = root / where
    path.write_text(source + "\n")
    assert bool(forbidden_imports(path)) is bad, forbidden_imports(path)
