"""Contract tests of `GET /api/field-profiles`, the deployment-wide field-profile listing (reference §5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from qualytics_worlds import ADMIN, FIELD_KEYS, PAGE_KEYS, FakeWorld, _field, big_world, client_of, small_world

from qatlan.sandbox.server import SandboxASGITransport, build_qualytics_server_app

URL = "/api/field-profiles"
#: every field listed with no filter: not deleted, status active or missing, container not archived
DEFAULT = [100, 101, 102, 110, 130, 200, 201]


def field_world() -> dict[str, Any]:
    """small_world plus fields on the computed table 13, the archived table 12 and the file 20 (datastore 2)."""
    doc = small_world()
    doc["fields"] += [
        _field(120, 12, "order_id", tags=["PII"]),  # archived container: never listed
        _field(130, 13, "email_hash", tags=["Finance"]),
        _field(200, 20, "event_id", type="Integral", tags=["Gold"]),
        _field(201, 20, "payload", type="Struct", tags=["PII", "Finance"]),
        _field(202, 20, "old_payload", tags=["PII"], deleted_at="2026-01-03T00:00:00+00:00"),
    ]
    return doc


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(field_world())


@pytest.fixture
def client(world):
    return client_of(world)


def ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


def listed(client, **params: Any) -> list[int]:
    response = client.get(URL, params=params)
    assert response.status_code == 200, response.text
    return ids(response.json())


# ----- shape -----------------------------------------------------------------------------


def test_items_have_the_per_container_routes_shape(client):
    page = client.get(URL).json()
    assert set(page) == PAGE_KEYS
    assert (page["total"], page["page"], page["size"], page["pages"]) == (7, 1, 50, 1)
    item = next(i for i in page["items"] if i["id"] == 101)
    assert {"active_quality_check_count", "active_anomaly_count", "field", "container_profile"} <= set(item)
    assert FIELD_KEYS <= set(item["field"])
    assert [t["name"] for t in item["field"]["global_tags"]] == ["PII"]
    assert item["field"]["quality_score"]["total"] == 82.1
    assert (item["active_quality_check_count"], item["active_anomaly_count"]) == (2, 2)
    # GetFieldProfileListing has no container or datastore key (reference §5), so none is invented
    assert not {"container", "container_id", "datastore", "datastore_id"} & set(item)


def test_one_container_lists_exactly_what_the_per_container_route_lists(client):
    for params in ({}, {"status": ["active", "excluded"], "sort_name": "desc"}, {"tag": "PII", "size": 1}):
        assert client.get(URL, params={"container": 10, **params}).json() == \
            client.get("/api/containers/10/field-profiles", params=params).json()


def test_trailing_slash_is_served_too(client):
    assert client.get(URL + "/").json() == client.get(URL).json()


# ----- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({}, DEFAULT),
    ({"datastore": 1}, [100, 101, 102, 110, 130]),
    ({"datastore": 2}, [200, 201]),
    ({"datastore": [2, 1]}, DEFAULT),
    ({"datastore": 3}, []),
    ({"datastore": 99}, []),
    ({"container": 10}, [100, 101, 102]),
    ({"container": [20, 11]}, [110, 200, 201]),
    ({"container": 999}, []),
    ({"tag": "PII"}, [101, 201]),
    ({"tag": "Finance"}, [130, 201]),
    ({"tag": ["PII", "Gold"]}, [101, 200, 201]),
    ({"tag": "No such tag"}, []),
    ({"name": "EMAIL"}, [101, 130]),
    ({"name": "pay"}, [201]),
    ({"type": "Integral"}, [100, 200]),
    ({"type": ["Integral", "Struct"]}, [100, 200, 201]),
    ({"status": "missing"}, [102]),
    ({"status": "excluded"}, [103]),
    ({"status": ["active", "excluded"]}, [100, 101, 103, 110, 130, 200, 201]),
    ({"parent_field_id": 100}, DEFAULT),
    ({"latest_only": "true"}, DEFAULT),
    ({"latest_only": "false"}, DEFAULT),
])
def test_each_filter_alone(client, params, expected):
    assert listed(client, **params) == expected


@pytest.mark.parametrize(("params", "expected"), [
    ({"datastore": 1, "tag": "PII"}, [101]),
    ({"datastore": 2, "container": 10}, []),
    ({"datastore": 1, "container": [10, 20]}, [100, 101, 102]),
    ({"datastore": [1, 2], "container": [11, 20], "tag": ["Gold", "Finance"]}, [200, 201]),
    ({"container": [10, 20], "type": "Integral", "tag": ["Gold", "PII"]}, [200]),
    ({"datastore": 1, "name": "e", "status": "missing"}, [102]),
    ({"tag": "PII", "status": "excluded"}, []),
    ({"name": "email", "tag": "Finance", "latest_only": "true", "parent_field_id": 1}, [130]),
])
def test_filters_combined_are_all_of_and_repeated_values_any_of(client, params, expected):
    assert listed(client, **params) == expected


@pytest.mark.parametrize(("params", "expected"), [
    ({"sort_name": "asc"}, [101, 130, 200, 100, 102, 110, 201]),
    ({"sort_name": "desc"}, [201, 110, 102, 100, 200, 130, 101]),
    ({"sort_active_anomalies": "desc"}, [101, 100, 102, 110, 130, 200, 201]),
    ({"sort_active_checks": "desc", "datastore": 1}, [100, 101, 102, 110, 130]),
    ({"sort_type": "asc", "container": 20}, [200, 201]),
])
def test_sorts_are_the_per_container_routes(client, params, expected):
    assert listed(client, **params) == expected


@pytest.mark.parametrize("params", [
    {"datastore": "x"}, {"container": "x"}, {"parent_field_id": "x"}, {"latest_only": "maybe"},
    {"status": "bogus"}, {"sort_name": "up"},
])
def test_bad_values_are_422_naming_the_parameter(client, params):
    response = client.get(URL, params=params)
    assert response.status_code == 422
    [(name, _)] = params.items()
    assert [e["loc"] for e in response.json()["detail"]] == [["query", name]]


def test_unknown_params_are_ignored_as_on_every_other_route(client):
    # Query has no unknown-parameter check: every sandbox route (like FastAPI) ignores them
    for path in (URL, "/api/containers", "/api/containers/10/field-profiles", "/api/quality-checks"):
        response = client.get(path, params={"bogus": "1", "sort_bogus": "asc", "archived_field": "x"})
        assert response.status_code == 200
        assert response.json() == client.get(path).json()


# ----- what is never listed --------------------------------------------------------------


def test_deleted_fields_and_fields_of_archived_containers_are_never_listed(client):
    every_status = {"status": ["active", "excluded", "missing", "masked"]}
    listed_ids = listed(client, **every_status)
    assert listed_ids == [100, 101, 102, 103, 110, 130, 200, 201]
    assert not {104, 120, 202} & set(listed_ids)
    assert listed(client, container=12, **every_status) == []
    assert listed(client, tag="PII", datastore=[1, 2]) == [101, 201]
    # the per-container route still answers for an archived container asked by id, as before
    assert ids(client.get("/api/containers/12/field-profiles").json()) == [120]


def test_archiving_a_container_hides_its_fields_at_once(client, world):
    world.qualytics.update("containers", 20, {"deleted_at": "2026-02-01T00:00:00+00:00"})
    assert listed(client) == [100, 101, 102, 110, 130]
    world.qualytics.update("containers", 20, {"deleted_at": None})
    assert listed(client) == DEFAULT


# ----- the live store --------------------------------------------------------------------


def test_a_patch_fields_tag_change_shows_in_the_listing_at_once(client):
    assert listed(client, tag="Critical") == []
    response = client.patch("/api/fields", json=[{"id": 100, "tags": ["Critical"]}, {"id": 101, "tags": []}])
    assert response.status_code == 200
    assert listed(client, tag="Critical") == [100]
    assert listed(client, tag="PII") == [201]
    item = client.get(URL, params={"container": 10}).json()["items"][0]
    assert [t["name"] for t in item["field"]["global_tags"]] == ["Critical"]


# ----- paging ----------------------------------------------------------------------------


@pytest.fixture
def big():
    return client_of(FakeWorld(big_world(25, 9)))  # 225 fields over 25 containers


def test_pages_are_ceil_of_total_and_walk_every_field_once(big):
    seen, page = [], 1
    while True:
        body = big.get(URL, params={"size": 100, "page": page}).json()
        assert (body["total"], body["pages"], body["size"], body["page"]) == (225, 3, 100, page)
        seen += ids(body)
        if page >= body["pages"]:
            break
        page += 1
    assert len(body["items"]) == 25
    assert seen == sorted(c * 1000 + j for c in range(1, 26) for j in range(9))
    beyond = big.get(URL, params={"size": 100, "page": 4}).json()
    assert (beyond["items"], beyond["total"], beyond["pages"]) == ([], 225, 3)
    assert big.get(URL, params={"size": 7}).json()["pages"] == 33


def test_default_size_is_50_and_empty_has_zero_pages(big, client):
    assert len(big.get(URL).json()["items"]) == 50
    empty = client.get(URL, params={"name": "nothing-like-this"}).json()
    assert (empty["total"], empty["pages"], empty["items"]) == (0, 0, [])


def test_size_100_is_accepted_and_101_is_the_same_422_as_other_lists(big):
    assert big.get(URL, params={"size": 100}).status_code == 200
    response = big.get(URL, params={"size": 101})
    assert response.status_code == 422
    assert response.json() == big.get("/api/containers", params={"size": 101}).json()
    assert response.json()["detail"][0]["loc"] == ["query", "size"]
    assert response.json()["detail"][0]["type"] == "less_than_equal"


@pytest.mark.parametrize("params", [{"size": 0}, {"page": 0}, {"page": "x"}])
def test_bad_page_or_size_is_422(client, params):
    assert client.get(URL, params=params).status_code == 422


# ----- statistics ------------------------------------------------------------------------


def test_request_statistics_count_the_route_under_its_own_path():
    app = build_qualytics_server_app(FakeWorld(field_world()))
    client = httpx.Client(transport=SandboxASGITransport(app), base_url="http://qualytics.sandbox",
                          headers={"Authorization": f"Bearer {ADMIN}"})
    client.get(URL, params={"datastore": 1})
    client.get(URL, params={"size": 101})
    client.get("/api/containers/10/field-profiles")
    stats = client.get("/_sandbox/stats").json()
    by_path = {(e["method"], e["path"]): e for e in stats["endpoints"]}
    assert by_path[("GET", URL)]["count"] == 2
    assert by_path[("GET", URL)]["status"] == {"200": 1, "422": 1}
    assert by_path[("GET", "/api/containers/{id}/field-profiles")]["count"] == 1
