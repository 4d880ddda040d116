"""Webhook bodies read into work keys (qatlan.watch.events, issue 15)."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from qatlan.watch.events import (
    ATLAN_OPERATIONS,
    ATLAN_VALIDATION_BODY,
    QUALYTICS_FLOW_TEMPLATE,
    EventError,
    ParsedKey,
    atlan_key,
    container_key,
    datastore_key,
    parse_atlan,
    parse_key,
    parse_qualytics,
)

TABLE = "default/snowflake/1666769582/DB/SCHEMA/TABLE"


def envelope(entity: dict, operation: str = "ENTITY_UPDATE", **message) -> dict:
    """The documented Atlan envelope around one entity."""
    return {
        "source": {}, "version": {"version": "1.0.0", "versionParts": [1]},
        "msgCompressionKind": "NONE", "msgSplitIdx": 1, "msgSplitCount": 1,
        "msgSourceIP": "10.0.0.1", "msgCreatedBy": "", "msgCreationTime": 1666964451608, "spooled": False,
        "message": {"type": "ENTITY_NOTIFICATION_V2", "operationType": operation, "eventTime": 1666964451417,
                    "entity": entity, **message},
    }


def entity(type_name: str, **attributes) -> dict:
    return {"typeName": type_name, "guid": "8d4c0f2e-0000-4000-8000-000000000001", "status": "ACTIVE",
            "attributes": attributes}


# ---- keys --------------------------------------------------------------------------------

def test_keys_round_trip():
    assert parse_key(container_key(42)) == ParsedKey("container", 42)
    assert parse_key(datastore_key(7)) == ParsedKey("datastore", 7)
    assert parse_key(atlan_key(TABLE)) == ParsedKey("table", TABLE)


@pytest.mark.parametrize("bad", ["", "a:", "q:c:", "q:c:0", "q:c:01", "q:c:x", "q:x:1", "x:1", "q:d:-3"])
def test_parse_key_refuses_what_no_builder_makes(bad):
    with pytest.raises(ValueError, match="not a work key"):
        parse_key(bad)


@pytest.mark.parametrize("bad", [0, -1, True, "3", 2**63])
def test_key_builders_refuse_ids_that_are_not_positive_integers(bad):
    with pytest.raises(ValueError):
        container_key(bad)


# ---- Atlan -------------------------------------------------------------------------------

def test_the_validation_request_is_recognised_as_bytes_and_as_a_dict():
    assert parse_atlan(json.dumps(ATLAN_VALIDATION_BODY).encode()).kind == "validation"
    assert parse_atlan(ATLAN_VALIDATION_BODY).kind == "validation"


def test_a_different_hello_is_not_a_validation_request():
    with pytest.raises(EventError):
        parse_atlan({"atlan-webhook": "hello"})


@pytest.mark.parametrize("type_name", ["Table", "View", "MaterialisedView"])
def test_a_table_event_names_the_table(type_name):
    event = parse_atlan(envelope(entity(type_name, qualifiedName=TABLE, name="TABLE")))
    assert (event.kind, event.type_name, event.keys) == ("event", type_name, (f"a:{TABLE}",))
    assert event.operation == "ENTITY_UPDATE" and event.guid


def test_a_column_event_names_its_table_from_table_qualified_name():
    body = envelope(entity("Column", qualifiedName=f"{TABLE}/COL", tableQualifiedName="elsewhere/T"), "CLASSIFICATION_ADD",
                    mutatedDetails=[{"typeName": "jUQpLPdg9hWoheH2eL9Ha2", "propagate": True}])
    assert parse_atlan(body).keys == ("a:elsewhere/T",)


def test_a_view_column_names_its_view_and_a_bare_column_its_parent_name():
    view = envelope(entity("Column", qualifiedName=f"{TABLE}/COL", viewQualifiedName="db/VIEW"))
    bare = envelope(entity("Column", qualifiedName=f"{TABLE}/COL"))
    assert parse_atlan(view).keys == ("a:db/VIEW",)
    assert parse_atlan(bare).keys == (f"a:{TABLE}",)


@pytest.mark.parametrize("operation", sorted(ATLAN_OPERATIONS))
def test_every_documented_operation_is_accepted(operation):
    assert parse_atlan(envelope(entity("Table", qualifiedName=TABLE), operation)).kind == "event"


def test_an_unknown_operation_is_ignored_not_refused():
    event = parse_atlan(envelope(entity("Table", qualifiedName=TABLE), "RELATIONSHIP_CREATE"))
    assert (event.kind, event.keys) == ("ignored", ())
    assert "RELATIONSHIP_CREATE" in event.reason


@pytest.mark.parametrize("type_name", ["Schema", "Database", "Connection", "Process", "AtlasGlossaryTerm"])
def test_assets_that_are_not_tables_are_ignored(type_name):
    event = parse_atlan(envelope(entity(type_name, qualifiedName="default/snowflake/1/DB")))
    assert event.kind == "ignored" and event.type_name == type_name


def test_a_link_names_the_table_it_hangs_off_when_the_event_says_which():
    ref = {"typeName": "Table", "guid": "g1", "uniqueAttributes": {"qualifiedName": TABLE}}
    assert parse_atlan(envelope(entity("Link", qualifiedName="g1/link/x", asset=ref))).keys == (f"a:{TABLE}",)
    column = {"typeName": "Column", "guid": "g2", "uniqueAttributes": {"qualifiedName": f"{TABLE}/C"}}
    assert parse_atlan(envelope(entity("Readme", qualifiedName="g2/readme", asset=column))).keys == (f"a:{TABLE}",)


def test_a_link_without_its_asset_s_name_or_on_another_type_is_ignored():
    guid_only = {"typeName": "Table", "guid": "g1"}
    schema = {"typeName": "Schema", "guid": "g3", "uniqueAttributes": {"qualifiedName": "d/s/1/DB/S"}}
    for ref in (guid_only, schema, None):
        assert parse_atlan(envelope(entity("Link", qualifiedName="l", asset=ref))).kind == "ignored"


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b"[]", "JSON object"),
    (b"{}", "message must be"),
    (json.dumps({"message": {"entity": {}}}).encode(), "operationType"),
    (json.dumps({"message": {"operationType": "ENTITY_UPDATE"}}).encode(), "entity"),
    (json.dumps(envelope({"typeName": "Table", "attributes": {}})).encode(), "qualifiedName"),
    (json.dumps(envelope(entity("Column", qualifiedName="COL"))).encode(), "names no table"),
    (json.dumps(envelope({"typeName": "Table", "attributes": []})).encode(), "attributes"),
])
def test_malformed_atlan_bodies_raise_event_error_with_a_short_message(body, message):
    with pytest.raises(EventError, match=message) as caught:
        parse_atlan(body)
    assert isinstance(caught.value, ValueError) and len(str(caught.value)) < 200


segment = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=12)


@given(
    parts=st.lists(segment, min_size=2, max_size=7),
    column=segment,
    operation=st.sampled_from(sorted(ATLAN_OPERATIONS)),
    parent_attribute=st.sampled_from([None, "tableQualifiedName", "viewQualifiedName"]),
    extra=st.dictionaries(st.sampled_from(["name", "order", "dataType", "connectionQualifiedName"]),
                          st.one_of(st.text(max_size=5), st.integers())),
    classifications=st.lists(st.text(min_size=22, max_size=22), max_size=3),
)
def test_any_valid_column_envelope_yields_exactly_its_table_key(parts, column, operation, parent_attribute, extra, classifications):
    table = "/".join(parts)
    attributes = {**extra, "qualifiedName": f"{table}/{column}"}
    if parent_attribute:
        attributes[parent_attribute] = table
    ent = {**entity("Column", **attributes), "classificationNames": classifications}
    details = [{"typeName": c, "propagate": True} for c in classifications]
    event = parse_atlan(json.dumps(envelope(ent, operation, mutatedDetails=details)).encode())
    assert (event.kind, event.operation, event.keys) == ("event", operation, (f"a:{table}",))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=4),
    max_leaves=20,
)
keys_of_interest = st.sampled_from(["message", "entity", "operationType", "typeName", "attributes", "qualifiedName",
                                    "tableQualifiedName", "asset", "uniqueAttributes", "container_id", "datastore_id",
                                    "container_link", "target_link", "guid"])
shaped = st.recursive(
    st.none() | st.text(max_size=30) | st.integers() | st.sampled_from(sorted(ATLAN_OPERATIONS) + ["Table", "Column", "Link"]),
    lambda inner: st.dictionaries(keys_of_interest, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=25,
)


@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200), json_values.map(json.dumps), shaped.map(json.dumps)))
def test_garbage_raises_nothing_but_event_error(body):
    for parse in (parse_atlan, parse_qualytics):
        try:
            parse(body)
        except EventError:
            pass


@given(doc=shaped)
def test_a_shaped_body_either_parses_or_raises_event_error(doc):
    assume(isinstance(doc, dict))
    for parse in (parse_atlan, parse_qualytics):
        try:
            result = parse(doc)
        except EventError:
            continue
        assert all(k.startswith(("a:", "q:c:", "q:d:")) for k in result.keys)


# ---- Qualytics ---------------------------------------------------------------------------

LINK = "https://acme.qualytics.io/datastores/3/containers/42/overview"


def rendered(**values) -> bytes:
    """The documented template as Qualytics would render it (unfilled tokens left empty)."""
    out = {}
    for key, value in QUALYTICS_FLOW_TEMPLATE.items():
        out[key] = values.get(key, "") if "{{" in value else value
    return json.dumps(out).encode()


def test_the_documented_template_with_a_container_link_names_the_container():
    event = parse_qualytics(rendered(container_link=LINK, anomaly_type="shape", datastore_name="pg"))
    assert event.keys == ("q:c:42",)
    assert (event.event, event.anomaly_type, event.event_type) == ("qualytics.flow.triggered", "shape", "anomaly")


def test_an_operation_with_only_a_target_link_names_the_datastore():
    event = parse_qualytics(rendered(target_link="https://acme.qualytics.io/datastores/3/activity?operation_id=9",
                                     operation_type="scan", operation_result="success"))
    assert (event.keys, event.event_type, event.operation_result) == (("q:d:3",), "scan", "success")


def test_explicit_ids_come_before_links_and_duplicates_collapse():
    body = {"containerId": "7", "container_link": LINK, "target_link": LINK + "?x=1", "datastore_id": 3}
    assert parse_qualytics(body).keys == ("q:c:7", "q:c:42")
    assert parse_qualytics({"datastore_id": 3, "note": "see /datastores/4"}).keys == ("q:d:3", "q:d:4")


def test_a_link_nested_anywhere_in_the_template_is_found():
    assert parse_qualytics({"text": {"blocks": [{"url": LINK}]}}).keys == ("q:c:42",)


def test_unrendered_tokens_and_unknown_operation_types_stay_bounded():
    event = parse_qualytics({"container_id": 5, "operation_type": "{{operation_type}}", "event": ""})
    assert (event.operation_type, event.event, event.event_type) == (None, None, "flow")
    assert parse_qualytics({"container_id": 5, "operation_type": "Something New"}).event_type == "other"


@pytest.mark.parametrize("body", [
    {"datastore_name": "pg", "container_name": "orders"},
    {"container_link": "{{container_link}}"},
    {"container_id": 0, "container_link": "https://x/containers/abc"},
    {"container_id": True},
])
def test_a_body_naming_no_container_asks_for_container_link(body):
    with pytest.raises(EventError, match="container_link"):
        parse_qualytics(body)


@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"nope"])
def test_a_qualytics_body_that_is_no_object_is_refused(body):
    with pytest.raises(EventError):
        parse_qualytics(body)
