"""Tests of QualyticsStore: loading, export, admin changes, computed counts, and speed at scale."""

from __future__ import annotations

import copy
import time

import pytest
from qualytics_worlds import FakeWorld, big_world, client_for, client_of, small_world

from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.qualytics_changes import apply_change
from qatlan.sandbox.qualytics_store import QualyticsStore


def by_id(records: list[dict]) -> dict:
    return {r["id"]: r for r in records}


@pytest.fixture
def store():
    return QualyticsStore(small_world(), clock=lambda: 1767225600.0)


def change(kind: str, op: str, **rest) -> dict:
    return {"side": "qualytics", "kind": kind, "op": op, **rest}


# ----- load and export -------------------------------------------------------------------


def test_export_round_trips_the_document_in_id_order():
    doc = small_world()
    exported = QualyticsStore(copy.deepcopy(doc)).export()
    for kind in ("datastores", "containers", "fields", "checks", "anomalies", "global_tags", "integrations"):
        assert exported[kind] == sorted(doc[kind], key=lambda r: r["id"])
    assert exported["tokens"] == doc["tokens"]


def test_export_holds_no_computed_values(store):
    container = by_id(store.export()["containers"])[10]
    assert "metrics" not in container and "global_tags" not in container and "datastore" not in container


def test_store_does_not_share_lists_with_the_input_document():
    doc = small_world()
    s = QualyticsStore(doc)
    doc["containers"][0]["tags"].append("Finance")
    assert by_id(s.export()["containers"])[10]["tags"] == ["PII"]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["containers"][0].update(datastore_id=99), "qualytics.containers[0].datastore_id: datastore 99 does not exist"),
    (lambda d: d["fields"].append(dict(d["fields"][0])), "qualytics.fields[6].id: duplicate id 100"),
    (lambda d: d["fields"][1].update(tags=["Nope"]), "qualytics.fields[1].tags[0]: global tag 'Nope' does not exist"),
    (lambda d: d["anomalies"][0].update(check_ids=[1]), "qualytics.anomalies[0].check_ids[0]: check 1 does not exist"),
    (lambda d: d["global_tags"][3].pop("integration_id"), "qualytics.global_tags[3].integration_id: required"),
    (lambda d: d["checks"][0].update(status="Passing"), "qualytics.checks[0].status: 'Passing' is not one of"),
])
def test_bad_document_is_refused_naming_the_path(mutate, message):
    doc = small_world()
    mutate(doc)
    with pytest.raises(WorldError, match=message.replace("[", r"\[").replace("]", r"\]")):
        QualyticsStore(doc)


# ----- admin changes ---------------------------------------------------------------------


def test_add_assigns_id_and_created_and_bumps_version(store):
    before = store.version
    result = apply_change(store, change("containers", "add", record={"datastore_id": 2, "name": "new.csv",
                                                                    "container_type": "file"}))
    assert result["id"] == 21 and result["record"]["created"] == "2026-01-01T00:00:00+00:00"
    assert store.version == before + 1
    assert [c["id"] for c in store.under("containers", 2)] == [20, 21]


def test_update_moves_a_record_between_parents(store):
    apply_change(store, change("fields", "update", id=110, set={"container_id": 10}))
    assert [f["id"] for f in store.under("fields", 10)][-1] == 110
    assert store.under("fields", 11) == []
    assert store.container_counts(10)["fields"] == 3 and store.container_counts(11)["fields"] == 0


def test_moving_a_container_moves_datastore_counts(store):
    assert store.datastore_counts(2)["active_checks"] == 0 and store.datastore_counts(1)["active_checks"] == 3
    apply_change(store, change("containers", "update", id=10, set={"datastore_id": 2}))
    assert store.datastore_counts(2)["active_checks"] == 3 and store.datastore_counts(1)["active_checks"] == 0


def test_update_global_tag_by_name_renames_everywhere(store):
    result = apply_change(store, change("global_tags", "update", name="PII", set={"name": "Personal"}))
    assert result["name"] == "Personal"
    assert store.get("containers", 10)["tags"] == ["Personal"]
    assert store.get("fields", 101)["tags"] == ["Personal"]


def test_delete_container_cascades_to_fields_checks_and_anomalies(store):
    apply_change(store, change("containers", "delete", id=10))
    exported = store.export()
    assert not [r for kind in ("fields", "checks", "anomalies") for r in exported[kind] if r["container_id"] == 10]
    assert store.datastore_counts(1)["active_checks"] == 0


def test_delete_datastore_takes_its_containers(store):
    apply_change(store, change("datastores", "delete", id=1))
    assert [c["id"] for c in store.export()["containers"]] == [20]


def test_delete_check_leaves_anomalies_check_ids(store):
    apply_change(store, change("checks", "delete", id=1000))
    assert store.get("anomalies", 5000)["check_ids"] == []
    assert store.field_counts(10)["email"] == (1, 1)


def test_delete_integration_takes_its_external_tags(store):
    apply_change(store, change("containers", "update", id=10, set={"tags": ["Gold", "PII"]}))
    apply_change(store, change("integrations", "delete", id=1))
    assert store.get("global_tags", "Gold") is None
    assert store.get("containers", 10)["tags"] == ["PII"]


def test_status_change_moves_metrics(store):
    assert store.container_counts(10)["active_anomalies"] == 2
    apply_change(store, change("anomalies", "update", id=5000, set={"status": "Resolved"}))
    assert store.container_counts(10)["active_anomalies"] == 1
    assert store.datastore_counts(1)["anomalies"] == 2


@pytest.mark.parametrize(("bad", "message"), [
    ("not a change", "must be an object"),
    (change("tokens", "add", record={}), "kind: 'tokens' is not one of"),
    (change("containers", "upsert", id=10), "op: 'upsert' is not one of"),
    (change("containers", "update", set={"name": "x"}), "id: required"),
    (change("containers", "update", id=10, set={}), "set: required"),
    (change("containers", "update", id=404, set={"name": "x"}), "containers 404 does not exist"),
    (change("containers", "update", id=10, set={"id": 11}), "id: cannot change"),
    (change("containers", "update", id=10, set={"tags": ["Nope"]}), "global tag 'Nope' does not exist"),
    (change("containers", "add", record={"id": 10, "datastore_id": 1, "name": "x", "container_type": "table"}),
     "duplicate id 10"),
    (change("fields", "add", record={"container_id": 99, "name": "x"}), "container 99 does not exist"),
    (change("global_tags", "add", record={"name": "PII", "type": "global"}), "'PII' already exists"),
    (change("global_tags", "update", name="PII", set={"weight_modifier": 11}), "from -10 to 10"),
    ({**change("containers", "delete", id=10), "side": "atlan"}, "side"),
])
def test_bad_change_is_refused_naming_the_problem_and_changes_nothing(store, bad, message):
    before = store.export()
    with pytest.raises(WorldError, match=message):
        apply_change(store, bad)
    assert store.export() == before


def test_changes_made_through_the_api_are_exported():
    world = FakeWorld(small_world())
    client = client_of(world)
    client.patch("/api/containers", json=[{"id": 10, "tags": ["Finance"]}])
    client.post("/api/global-tags", json={"type": "global", "name": "New"})
    exported = world.qualytics.export()
    assert by_id(exported["containers"])[10]["tags"] == ["Finance"]
    assert "New" in [t["name"] for t in exported["global_tags"]]
    assert world.qualytics.version == 2


def test_app_reads_the_store_of_the_world_on_every_request():
    world = FakeWorld(small_world())
    client = client_of(world)
    assert client.get("/api/containers/20").status_code == 200
    doc = small_world()
    doc["containers"] = [c for c in doc["containers"] if c["id"] != 20]
    world.qualytics = QualyticsStore(doc)
    assert client.get("/api/containers/20").status_code == 404


# ----- scale -----------------------------------------------------------------------------


def test_paging_and_field_lists_stay_fast_at_10k_containers_and_200k_fields():
    client = client_for(big_world(10_000, 20))
    started = time.perf_counter()
    for page in range(1, 101):
        body = client.get("/api/containers", params={"size": 100, "page": page}).json()
        assert len(body["items"]) == 100
    pages_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for container_id in range(1, 10_001, 50):
        assert len(client.get(f"/api/containers/{container_id}/fields").json()) == 20
    fields_seconds = time.perf_counter() - started
    assert body["total"] == 10_000
    # loose bounds (shared CI machines): an O(total) cost per item would take minutes
    assert pages_seconds < 20 and fields_seconds < 10, (pages_seconds, fields_seconds)
