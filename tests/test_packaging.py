"""pyproject.toml declares what the code imports, the lock pins what pyproject allows, and the
license metadata is an SPDX expression with its file (docs/development.md)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
#: optional extras other than `test` (an optional import is declared there)
EXTRAS = [Requirement(r) for k, v in PROJECT["optional-dependencies"].items() if k != "test" for r in v]
TEST = [Requirement(r) for r in PROJECT["optional-dependencies"]["test"]]
#: modules that are files of this repository, imported by path (tests/, bench/, action/)
LOCAL = {p.stem for d in ("tests", "tests/sandbox", "tests/clients", "bench", "action") for p in (ROOT / d).glob("*.py")}


def third_party_imports(folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL and top != "qatlan":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def undeclared(folder: str, declared: list[Requirement]) -> list[str]:
    names = {canonicalize_name(r.name) for r in declared}
    owners = packages_distributions()
    missing = []
    for module, where in third_party_imports(ROOT / folder).items():
        dists = {canonicalize_name(d) for d in owners.get(module, [module])}
        if not dists & names:
            missing.append(f"{module} (imported in {where}; from {sorted(dists)})")
    return missing


def test_every_module_qatlan_imports_is_a_declared_dependency():
    assert undeclared("qatlan", RUNTIME + EXTRAS) == []


def test_every_module_the_tests_import_is_declared_with_the_test_extra():
    assert undeclared("tests", RUNTIME + EXTRAS + TEST) == []


def test_the_import_check_sees_an_undeclared_import(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("import json\nimport typing_extensions\nfrom httpx import Client\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [m.split(" ")[0] for m in undeclared("pkg", [Requirement("httpx")])] == ["typing_extensions"]


def locked() -> dict[str, str]:
    text = (ROOT / "requirements" / "lock.txt").read_text()
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M)}


def test_the_lock_pins_every_declared_dependency_within_its_range():
    pins = locked()
    for req in RUNTIME + TEST:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared but not in requirements/lock.txt: run requirements/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"lock pins {req.name}=={pins[name]}, outside {req}: run requirements/lock.sh"


def test_the_lock_has_hashes_for_every_pin():
    text = (ROOT / "requirements" / "lock.txt").read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1]):
        if "==" in block.split("\n")[0]:
            assert "--hash=sha256:" in block, block.split("\n")[0]


def test_the_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in PROJECT["classifiers"])
