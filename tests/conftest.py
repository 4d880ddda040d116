"""Shared fixtures: generated worlds, in-process sandboxes, and configs pointing at them."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from qatlan.config import parse_config
from qatlan.sandbox.generate import generate_world
from qatlan.sandbox.ops import OpsSettings
from qatlan.sandbox.server import Sandbox
from qatlan.sandbox.world import World

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ATLAN_TOKEN = "atlan-sandbox-sync-token"
QUALYTICS_TOKEN = "qualytics-sandbox-token"
TOKENS_ENV = {"ATLAN_API_TOKEN": ATLAN_TOKEN, "QUALYTICS_API_TOKEN": QUALYTICS_TOKEN}


@functools.lru_cache(maxsize=8)
def _generated(spec: str) -> dict[str, Any]:
    return generate_world(spec)


def world_doc(spec: str = "tables=30,seed=3") -> dict[str, Any]:
    """A fresh deep copy of a generated world (generation is cached per spec)."""
    return copy.deepcopy(_generated(spec))


def make_sandbox(spec: str = "tables=30,seed=3", *, atlan_rpm: int = 0, **ops: Any) -> Sandbox:
    """An in-process sandbox with no Atlan rate limit unless asked (tests make many requests)."""
    world = World(world_doc(spec))
    return Sandbox(world, atlan_ops=OpsSettings(requests_per_minute=atlan_rpm, **ops))


def sandbox_config_doc(world: World, *, base_url_atlan: str = "http://atlan.sandbox",
                       base_url_qualytics: str = "http://qualytics.sandbox", **sync: Any) -> dict[str, Any]:
    """A qatlan.toml document for a generated world: mappings for the datastores that need one."""
    mappings = []
    for m in world.meta.get("mapping", []):
        mappings.append({
            "datastore_id": m["datastore_id"],
            "connection": m["connection_qualified_name"],
            "database": m["database"],
            "schema": m["schema"],
        })
    return {
        "atlan": {"url": base_url_atlan, "requests_per_minute": 0, "max_retries": 6},
        "qualytics": {"url": base_url_qualytics, "max_retries": 6},
        "sync": sync,
        "mappings": [m for m in mappings if _visible(world, m)],
    }


def _visible(world: World, mapping: dict[str, Any]) -> bool:
    for m in world.meta.get("mapping", []):
        if m["datastore_id"] == mapping["datastore_id"]:
            return m.get("visible_to_sync", True)
    return True


def make_config(tmp_path: Path, doc: dict[str, Any], env: dict[str, str] | None = None):
    return parse_config(doc, base_dir=tmp_path, env=env or TOKENS_ENV)


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox()


@pytest.fixture
def config(tmp_path: Path, sandbox: Sandbox):
    return make_config(tmp_path, sandbox_config_doc(sandbox.world))


@pytest.fixture
def transports(sandbox: Sandbox) -> dict[str, Any]:
    return {"atlan_transport": sandbox.atlan_transport(), "qualytics_transport": sandbox.qualytics_transport()}


@pytest.fixture
def state(tmp_path: Path):
    from qatlan.state import State

    st = State.open(tmp_path / "state" / "qatlan.db")
    yield st
    st.close()
