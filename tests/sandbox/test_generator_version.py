"""`meta.generator` of a generated world names the installed qatlan, read from package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest

from qatlan.sandbox import generate


@pytest.fixture(autouse=True)
def _fresh_cache():
    generate._qatlan_version.cache_clear()
    yield
    generate._qatlan_version.cache_clear()


def test_the_generator_is_the_installed_qatlan_version():
    meta = generate.generate_world("tables=2,seed=1")["meta"]
    assert meta["generator"] == f"qatlan {version('qatlan')}"


def test_without_package_metadata_the_version_is_unknown(monkeypatch):
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(generate, "version", missing)
    assert generate.generate_world("tables=2,seed=1")["meta"]["generator"] == "qatlan unknown"
