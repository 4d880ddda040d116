"""The `/_sandbox/` admin routes, around a dummy API app and a test double of World."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.ops import OpsSettings
from qatlan.sandbox.server import SandboxASGITransport, build_server_app

DOC = {
    "world_version": 1,
    "meta": {"spec": "hand-made"},
    "atlan": {"personas": [{"name": "admin", "token": "atlan-token", "read": ["*"], "update": ["*"]}]},
    "qualytics": {"tokens": [{"token": "q-token", "user": {"id": 1, "user_name": "ada"}}]},
}


class FakeStore:
    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.max_result_window = 10000
        self.max_bulk_entities = 50


class FakeWorld:
    """What the admin routes need of World: replace, export, apply_changes, meta, atlan."""

    def __init__(self, doc: dict[str, Any] = DOC):
        self.applied: list[dict[str, Any]] = []
        self.replace(doc)

    def replace(self, doc: dict[str, Any]) -> None:
        if "atlan" not in doc or "qualytics" not in doc:
            raise WorldError("atlan: required key is missing")
        self.meta = dict(doc.get("meta") or {})
        self.atlan = FakeStore(copy.deepcopy(doc["atlan"]))
        self.qualytics = FakeStore(copy.deepcopy(doc["qualytics"]))

    def export(self) -> dict[str, Any]:
        sides = {"atlan": self.atlan.doc, "qualytics": self.qualytics.doc}
        return {"world_version": 1, "meta": self.meta, **sides}

    def apply_changes(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, change in enumerate(changes):
            if change.get("side") not in ("atlan", "qualytics"):
                raise WorldError(f"changes[{i}].side: must be 'atlan' or 'qualytics'")
            self.applied.append(change)
        return [{"applied": True} for _ in changes]


def fake_generate(spec: str) -> dict[str, Any]:
    if not spec.startswith("tables="):
        raise WorldError(f"bad spec {spec!r}: expected e.g. tables=10,seed=1")
    return {**copy.deepcopy(DOC), "meta": {"spec": spec}}


def store_limit_api(world: FakeWorld) -> Starlette:
    async def window(request: Request) -> Response:
        return JSONResponse({"max_result_window": world.atlan.max_result_window})

    return Starlette(routes=[Route("/api/window", window)])


def client_for(service: str, world: FakeWorld, rpm: int = 0) -> httpx.Client:
    app = build_server_app(
        service, world, store_limit_api(world), OpsSettings(requests_per_minute=rpm), generate=fake_generate
    )
    return httpx.Client(transport=SandboxASGITransport(app), base_url="http://sandbox")


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def atlan(world: FakeWorld) -> httpx.Client:
    return client_for("atlan", world, rpm=400)


@pytest.fixture
def qualytics(world: FakeWorld) -> httpx.Client:
    return client_for("qualytics", world)


def test_health_names_the_service(atlan: httpx.Client, qualytics: httpx.Client) -> None:
    assert atlan.get("/_sandbox/health").json() == {"status": "ok", "service": "atlan"}
    assert qualytics.get("/_sandbox/health").json() == {"status": "ok", "service": "qualytics"}


def test_get_world_exports_both_sides(atlan: httpx.Client) -> None:
    response = atlan.get("/_sandbox/world")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == DOC


def test_put_world_loads_a_new_world(atlan: httpx.Client, world: FakeWorld) -> None:
    new = {**DOC, "meta": {"spec": "other"}}
    response = atlan.put("/_sandbox/world", json=new)
    assert response.json() == {"status": "loaded", "meta": {"spec": "other"}}
    assert world.meta == {"spec": "other"}


def test_put_world_refuses_a_bad_world_and_keeps_the_old_one(atlan: httpx.Client, world: FakeWorld) -> None:
    response = atlan.put("/_sandbox/world", json={"qualytics": {}})
    assert response.status_code == 400
    assert response.json() == {"error": "atlan: required key is missing"}
    assert world.export() == DOC


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
def test_put_world_refuses_a_body_that_is_not_a_json_object(atlan: httpx.Client, body: bytes) -> None:
    response = atlan.put("/_sandbox/world", content=body)
    assert response.status_code == 400
    assert "error" in response.json()


def test_generate_builds_a_world_from_a_spec(qualytics: httpx.Client, world: FakeWorld) -> None:
    response = qualytics.post("/_sandbox/world/generate", json={"spec": "tables=10,seed=1"})
    assert response.json() == {"status": "loaded", "meta": {"spec": "tables=10,seed=1"}}
    assert world.meta == {"spec": "tables=10,seed=1"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"spec": "rows=3"}, "bad spec 'rows=3'"),
        ({"spek": "tables=1"}, "with a 'spec' key"),
        ({"spec": 5}, "spec must be a string"),
    ],
)
def test_generate_refuses_a_bad_spec(qualytics: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = qualytics.post("/_sandbox/world/generate", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_changes_are_applied_to_the_world(atlan: httpx.Client, world: FakeWorld) -> None:
    changes = [{"side": "atlan", "op": "x"}, {"side": "qualytics", "op": "y"}]
    response = atlan.post("/_sandbox/world/changes", json={"changes": changes})
    assert response.json() == {"results": [{"applied": True}, {"applied": True}]}
    assert world.applied == changes


def test_a_bad_change_is_refused_with_the_worlds_message(atlan: httpx.Client) -> None:
    response = atlan.post("/_sandbox/world/changes", json={"changes": [{"side": "moon"}]})
    assert response.status_code == 400
    assert response.json() == {"error": "changes[0].side: must be 'atlan' or 'qualytics'"}


def test_faults_are_read_set_and_cleared(atlan: httpx.Client) -> None:
    assert atlan.get("/_sandbox/faults").json()["rate_500"] == 0
    put = atlan.put("/_sandbox/faults", json={"seed": 9, "rate_500": 1, "methods": ["get"]})
    assert put.json()["rate_500"] == 1.0
    assert atlan.get("/_sandbox/faults").json()["methods"] == ["GET"]
    assert atlan.get("/api/window").status_code == 500
    cleared = atlan.put("/_sandbox/faults", json={}).json()
    assert (cleared["seed"], cleared["rate_500"], cleared["methods"]) == (0, 0, [])
    assert atlan.get("/api/window").status_code == 200


def test_bad_faults_are_refused_and_the_old_ones_stay(atlan: httpx.Client) -> None:
    atlan.put("/_sandbox/faults", json={"rate_503": 0.5})
    response = atlan.put("/_sandbox/faults", json={"rate_503": 2})
    assert response.status_code == 400
    assert response.json() == {"error": "rate_503 must be a number from 0 to 1"}
    assert atlan.get("/_sandbox/faults").json()["rate_503"] == 0.5


def test_atlan_limits_include_the_store_limits(atlan: httpx.Client) -> None:
    assert atlan.get("/_sandbox/limits").json() == {
        "requests_per_minute": 400, "max_result_window": 10000, "max_bulk_entities": 50,
    }  # fmt: skip


def test_put_limits_changes_only_the_given_limits(atlan: httpx.Client, world: FakeWorld) -> None:
    response = atlan.put("/_sandbox/limits", json={"max_result_window": 100})
    assert response.json() == {"requests_per_minute": 400, "max_result_window": 100, "max_bulk_entities": 50}
    assert world.atlan.max_result_window == 100


def test_store_limits_survive_loading_another_world(
    atlan: httpx.Client, qualytics: httpx.Client, world: FakeWorld
) -> None:
    atlan.put("/_sandbox/limits", json={"max_bulk_entities": 5})
    qualytics.put("/_sandbox/world", json=DOC)  # through the other server
    assert atlan.get("/api/window").status_code == 200  # any API request re-applies them
    assert world.atlan.max_bulk_entities == 5
    atlan.post("/_sandbox/world/generate", json={"spec": "tables=1"})
    assert atlan.get("/_sandbox/limits").json()["max_bulk_entities"] == 5


def test_put_requests_per_minute_starts_a_fresh_window(atlan: httpx.Client) -> None:
    assert atlan.put("/_sandbox/limits", json={"requests_per_minute": 1}).status_code == 200
    assert atlan.get("/api/window").status_code == 200
    assert atlan.get("/api/window").status_code == 429
    atlan.put("/_sandbox/limits", json={"requests_per_minute": 1})
    assert atlan.get("/api/window").status_code == 200


def test_qualytics_limits_are_only_the_request_rate(qualytics: httpx.Client) -> None:
    assert qualytics.get("/_sandbox/limits").json() == {"requests_per_minute": 0}
    response = qualytics.put("/_sandbox/limits", json={"max_result_window": 10})
    assert response.status_code == 400
    assert "unknown limit 'max_result_window'" in response.json()["error"]


@pytest.mark.parametrize(
    "body", [{"requests_per_minute": -1}, {"max_bulk_entities": 0}, {"max_result_window": "9"}]
)
def test_bad_limits_are_refused(atlan: httpx.Client, body: dict[str, Any]) -> None:
    response = atlan.put("/_sandbox/limits", json=body)
    assert response.status_code == 400
    assert "must be a whole number" in response.json()["error"]


def test_stats_are_read_and_reset(atlan: httpx.Client) -> None:
    atlan.get("/api/window")
    stats = atlan.get("/_sandbox/stats").json()
    assert stats["total"] == {"count": 1, "status": {"200": 1}, "bytes_out": stats["total"]["bytes_out"]}
    assert [(e["method"], e["path"]) for e in stats["endpoints"]] == [("GET", "/api/window")]
    reset = atlan.delete("/_sandbox/stats").json()
    assert reset["total"]["count"] == 0
    assert reset["endpoints"] == []


def test_unknown_admin_paths_and_methods_answer_with_an_error_object(atlan: httpx.Client) -> None:
    missing = atlan.get("/_sandbox/nothing")
    wrong_method = atlan.post("/_sandbox/stats")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found: GET /_sandbox/nothing"}
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()
