"""Tests of the sandbox Atlan store: loading, export round trip, admin changes, generated names."""

from __future__ import annotations

import re

import pytest

from atlan_worlds import CM_CHECKS, CM_SET, FINANCE, PII, SCHEMA, Clock, guid, small_world
from qatlan.sandbox.atlan_store import AtlanStore
from qatlan.sandbox.atlan_writes import apply_change
from qatlan.sandbox.errors import WorldError


@pytest.fixture
def store() -> AtlanStore:
    return AtlanStore(small_world(), clock=Clock(1_700_000_500.0))


def test_export_round_trips_and_keeps_the_input_shape(store):
    exported = store.export()
    assert set(exported) == {"personas", "typedefs", "entities"}
    assert set(exported["typedefs"]) == {"classificationDefs", "businessMetadataDefs"}
    assert AtlanStore(exported).export() == exported
    first = exported["entities"][0]
    assert first["guid"] == guid(1) and first["status"] == "ACTIVE" and "classifications" not in first


def test_loading_does_not_change_the_input_document():
    doc = small_world()
    before = repr(doc)
    apply_change(AtlanStore(doc), {"side": "atlan", "op": "update", "guid": guid(4), "set": {"attributes": {"name": "X"}}})
    assert repr(doc) == before


def test_export_includes_changes_and_computed_keys_stay_out(store):
    apply_change(store, {"side": "atlan", "op": "update", "guid": guid(4),
                        "set": {"attributes": {"description": "d", "announcementType": None}}})
    ent = next(e for e in store.export()["entities"] if e["guid"] == guid(4))
    assert ent["attributes"]["description"] == "d" and "announcementType" not in ent["attributes"]
    assert ent["updateTime"] == 1_700_000_500_000
    assert ent["classifications"] == [{"typeName": PII, "propagate": True, "removePropagationsOnEntityDelete": True,
                                       "restrictPropagationThroughLineage": False,
                                       "restrictPropagationThroughHierarchy": False}]


def test_admin_update_replaces_tags_and_custom_metadata_and_status(store):
    version = store.version
    result = apply_change(store, {"side": "atlan", "op": "update", "guid": guid(5), "set": {
        "classifications": [{"typeName": PII}, {"typeName": FINANCE, "entityGuid": guid(4)}],
        "businessAttributes": {CM_SET: {CM_CHECKS: 2}}, "status": "DELETED"}})
    assert result == {"side": "atlan", "op": "update", "guid": guid(5)}
    ent = store.get(guid(5))
    assert [(c["typeName"], c.get("entityGuid")) for c in ent["classifications"]] == [(PII, None), (FINANCE, guid(4))]
    assert ent["businessAttributes"] == {CM_SET: {CM_CHECKS: 2}} and ent["status"] == "DELETED"
    assert store.version == version + 1


def test_admin_add_and_delete(store):
    result = apply_change(store, {"side": "atlan", "op": "add", "entity": {
        "typeName": "Table", "attributes": {"qualifiedName": f"{SCHEMA}/ADDED", "name": "ADDED"}}})
    assert store.find("Table", f"{SCHEMA}/ADDED")["guid"] == result["guid"]
    apply_change(store, {"side": "atlan", "op": "delete", "guid": guid(4)})
    assert store.get(guid(4)) is None and store.get(guid(13)) is None  # its Link goes with it


@pytest.mark.parametrize("change, needle", [
    ({"op": "update", "guid": "nope", "set": {"status": "DELETED"}}, "no Atlan entity"),
    ({"op": "update", "guid": guid(4), "set": {"colour": 1}}, "unknown keys"),
    ({"op": "update", "guid": guid(4), "set": {"status": "GONE"}}, "ACTIVE or DELETED"),
    ({"op": "update", "guid": guid(4), "set": {"attributes": {"name": None}}}, "cannot be cleared"),
    ({"op": "update", "guid": guid(4), "set": {"classifications": [{"typeName": "nope"}]}}, "no tag 'nope'"),
    ({"op": "update", "guid": guid(4), "set": {"businessAttributes": {"nope": {}}}}, "no custom metadata set"),
    ({"op": "update", "guid": guid(4), "set": {"attributes": {"qualifiedName": f"{SCHEMA}/CUSTOMERS"}}}, "already exists"),
    ({"op": "add", "entity": {"typeName": "Table", "guid": guid(4), "attributes": {"qualifiedName": "q", "name": "n"}}},
     "already exists"),
    ({"op": "add", "entity": {"typeName": "Table", "attributes": {"name": "n"}}}, "qualifiedName"),
    ({"op": "delete", "guid": "nope"}, "no Atlan entity"),
    ({"op": "rename"}, "'update', 'add' or 'delete'"),
])
def test_bad_admin_changes_raise_world_error(store, change, needle):
    with pytest.raises(WorldError, match=re.escape(needle)):
        apply_change(store, {"side": "atlan", **change})


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["entities"].append(dict(d["entities"][0])), "duplicate guid"),
    (lambda d: d["entities"].append({**d["entities"][1], "guid": "other"}), "already exists"),
    (lambda d: d["entities"][0].pop("typeName"), "typeName"),
    (lambda d: d["entities"][0].update(status="GONE"), "status"),
    (lambda d: d["entities"][0].update(classifications=[{}]), "classifications"),
])
def test_bad_worlds_are_refused_with_a_path(mutate, needle):
    doc = small_world()
    mutate(doc)
    with pytest.raises(WorldError, match=needle):
        AtlanStore(doc)


def test_generated_names_have_the_hashed_shape_and_are_deterministic():
    names = [AtlanStore(small_world()).new_hashed_name() for _ in range(2)]
    assert names[0] == names[1] and re.match(r"^[A-Za-z][A-Za-z0-9]{21}$", names[0])
    a, b = AtlanStore({}), AtlanStore({})
    assert [a.new_guid(), a.new_guid()] == [b.new_guid(), b.new_guid()]


def test_personas_and_permissions(store):
    analyst = store.persona_for_token("tok-analyst")
    assert store.user_of(analyst) == "service-account-apikey-analyst"
    assert store.user_of(store.persona_for_token("tok-admin")) == "admin-user"
    assert store.persona_for_token("nope") is None
    link = store.get(guid(13))
    assert store.connection_of(link) == store.get(guid(4))["attributes"]["connectionQualifiedName"]
    assert store.allowed(analyst, "update", link) and not store.allowed(store.persona_for_token("tok-reader"), "update", link)
