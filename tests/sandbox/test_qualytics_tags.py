"""Contract tests of the sandbox Qualytics API: tags on assets and the global-tags endpoints."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from qualytics_worlds import EMBEDDED_TAG_KEYS, INTEGRATION_KEYS, PAGE_KEYS, client_for, small_world


@pytest.fixture
def client():
    return client_for(small_world())


def tag_names(asset: dict) -> list[str]:
    return [t["name"] for t in asset["global_tags"]]


def tag_url(name: str) -> str:
    return "/api/global-tags/" + quote(name, safe="")


# ----- tags on assets --------------------------------------------------------------------


def test_patch_containers_replaces_the_direct_tag_list(client):
    response = client.patch("/api/containers", json=[{"id": 10, "tags": ["Finance", "Gold"]},
                                                      {"id": 11, "tags": ["PII"], "description": "people"}])
    assert response.status_code == 200
    assert [(c["id"], tag_names(c)) for c in response.json()] == [(10, ["Finance", "Gold"]), (11, ["PII"])]
    assert tag_names(client.get("/api/containers/10").json()) == ["Finance", "Gold"]
    assert client.get("/api/containers/11").json()["description"] == "people"


def test_patch_containers_with_empty_tags_removes_all(client):
    client.patch("/api/containers", json=[{"id": 10, "tags": []}])
    assert tag_names(client.get("/api/containers/10").json()) == []


def test_patch_containers_without_tags_keeps_them(client):
    client.patch("/api/containers", json=[{"id": 10, "display_name": "Orders"}])
    container = client.get("/api/containers/10").json()
    assert (tag_names(container), container["display_name"]) == (["PII"], "Orders")


def test_external_tag_embeds_its_integration(client):
    client.patch("/api/containers", json=[{"id": 10, "tags": ["Gold"]}])
    (tag,) = client.get("/api/containers/10").json()["global_tags"]
    assert tag["type"] == "external" and EMBEDDED_TAG_KEYS <= set(tag)
    assert INTEGRATION_KEYS <= set(tag["integration"]) and tag["integration"]["id"] == 1


def test_write_naming_an_unknown_tag_is_404_and_changes_nothing(client):
    response = client.patch("/api/containers", json=[{"id": 11, "tags": ["PII"]}, {"id": 10, "tags": ["Nope"]}])
    assert response.status_code == 404
    assert response.json() == {"detail": "Global tag 'Nope' not found"}
    assert tag_names(client.get("/api/containers/11").json()) == []


def test_patch_unknown_container_is_404(client):
    assert client.patch("/api/containers", json=[{"id": 999, "tags": []}]).status_code == 404


def test_patch_containers_body_must_be_a_list(client):
    response = client.patch("/api/containers", json={"id": 10, "tags": []})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "body"


def test_patch_fields_replaces_tags(client):
    response = client.patch("/api/fields", json=[{"id": 100, "tags": ["PII"]}, {"id": 101, "tags": []}])
    assert [(f["id"], tag_names(f)) for f in response.json()] == [(100, ["PII"]), (101, [])]
    assert tag_names(client.get("/api/fields/100").json()) == ["PII"]
    assert client.patch("/api/fields", json=[{"id": 100, "tags": ["Nope"]}]).status_code == 404


def test_tag_filter_follows_tag_changes(client):
    client.patch("/api/containers", json=[{"id": 11, "tags": ["PII"]}])
    assert [c["id"] for c in client.get("/api/containers", params={"tag": "PII"}).json()["items"]] == [10, 11]


# ----- global tags -----------------------------------------------------------------------


def test_global_tags_page_and_listing(client):
    page = client.get("/api/global-tags").json()
    assert set(page) == PAGE_KEYS and page["total"] == 5
    assert {"id", "created"} | EMBEDDED_TAG_KEYS <= set(page["items"][0])
    listing = client.get("/api/global-tags/listing").json()
    assert [t["name"] for t in listing] == ["PII", "Finance", "Critical", "Gold", "a/b c"]


def test_get_tag_by_url_encoded_name(client):
    tag = client.get(tag_url("a/b c")).json()
    assert (tag["name"], tag["type"], tag["id"]) == ("a/b c", "global", 5)
    assert client.get(tag_url("Gold")).json()["integration"]["type"] == "atlan"


def test_get_unknown_tag_is_404(client):
    assert client.get(tag_url("Nope")).json() == {"detail": "Global tag 'Nope' not found"}


def test_create_global_tag(client):
    body = {"type": "global", "name": "Ops & Co", "color": "#00FF00", "description": "ops", "weight_modifier": -3}
    response = client.post("/api/global-tags", json=body)
    assert response.status_code == 200
    created = response.json()
    assert (created["name"], created["weight_modifier"], created["id"]) == ("Ops & Co", -3, 6)
    assert client.get(tag_url("Ops & Co")).json()["color"] == "#00FF00"


def test_create_duplicate_tag_is_409(client):
    response = client.post("/api/global-tags", json={"type": "global", "name": "PII"})
    assert response.status_code == 409 and isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("weight", [11, -11])
def test_weight_modifier_outside_minus_10_to_10_is_422(client, weight):
    response = client.post("/api/global-tags", json={"type": "global", "name": "W", "weight_modifier": weight})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "weight_modifier"]


def test_create_external_tag_needs_an_integration(client):
    assert client.post("/api/global-tags", json={"type": "external", "name": "X"}).status_code == 422
    assert client.post("/api/global-tags", json={"type": "external", "name": "X", "integration_id": 9}).status_code == 404
    created = client.post("/api/global-tags", json={"type": "external", "name": "X", "integration_id": 1}).json()
    assert created["type"] == "external" and created["integration"]["id"] == 1


def test_put_tag_updates_and_renames_keeping_asset_links(client):
    response = client.put(tag_url("PII"), json={"type": "global", "name": "Personal", "color": "#111111"})
    assert response.status_code == 200 and response.json()["name"] == "Personal"
    assert client.get(tag_url("PII")).status_code == 404
    assert tag_names(client.get("/api/containers/10").json()) == ["Personal"]


def test_put_tag_rename_onto_existing_name_is_409(client):
    assert client.put(tag_url("PII"), json={"type": "global", "name": "Finance"}).status_code == 409


def test_put_converts_a_global_tag_into_an_external_one_keeping_links(client):
    response = client.put(tag_url("PII"), json={"type": "external", "integration_id": 1, "description": "from Atlan"})
    assert response.status_code == 200
    assert (response.json()["type"], response.json()["integration"]["id"]) == ("external", 1)
    (tag,) = client.get("/api/containers/10").json()["global_tags"]
    assert (tag["name"], tag["type"], tag["description"]) == ("PII", "external", "from Atlan")


def test_put_external_tag_changes_only_category_and_weight(client):
    response = client.put(tag_url("Gold"), json={"type": "external", "category": "catalog", "weight_modifier": 4,
                                                 "color": "#ABCDEF"})
    tag = response.json()
    assert (tag["category"], tag["weight_modifier"], tag["color"]) == ("catalog", 4, None)
    assert client.put(tag_url("Gold"), json={"type": "global", "name": "Gold"}).status_code == 422


def test_delete_tag_detaches_it_from_every_asset(client):
    response = client.delete(tag_url("PII"))
    assert response.status_code == 204
    assert client.get(tag_url("PII")).status_code == 404
    assert tag_names(client.get("/api/containers/10").json()) == []
    assert tag_names(client.get("/api/fields/101").json()) == []
    assert client.get("/api/quality-checks", params={"tag": "PII"}).json()["total"] == 0


def test_delete_tag_with_slash_in_its_name(client):
    assert client.delete(tag_url("a/b c")).status_code == 204
    assert "a/b c" not in [t["name"] for t in client.get("/api/global-tags/listing").json()]


def test_delete_unknown_tag_is_404(client):
    assert client.delete(tag_url("Nope")).status_code == 404
