"""World validation: accepted documents, and refusals that name the JSON path of each problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.generate import generate_world
from qatlan.sandbox.schema import validate_world


@pytest.fixture(scope="module")
def pristine() -> dict[str, Any]:
    return generate_world("tables=12,seed=4")


@pytest.fixture
def world(pristine: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(pristine)


def problems(doc: Any) -> str:
    with pytest.raises(WorldError) as exc:
        validate_world(doc)
    return str(exc.value)


def first(records: list[dict[str, Any]], **match: Any) -> tuple[int, dict[str, Any]]:
    return next((i, r) for i, r in enumerate(records) if all(r.get(k) == v for k, v in match.items()))


def entity(world: dict[str, Any], type_name: str) -> tuple[int, dict[str, Any]]:
    return first(world["atlan"]["entities"], typeName=type_name)


# ---------------------------------------------------------------- accepted

def test_accepts_a_generated_world(world: dict[str, Any]) -> None:
    validate_world(world)


def test_accepts_an_empty_world_because_every_list_may_be_omitted() -> None:
    validate_world({"world_version": 1, "atlan": {}, "qualytics": {}})


def test_accepts_a_minimal_hand_written_world() -> None:
    validate_world({
        "world_version": 1,
        "atlan": {"entities": [{"typeName": "Table", "guid": "g1", "attributes": {"qualifiedName": "q", "name": "T"}}]},
        "qualytics": {"datastores": [{"id": 1, "name": "d", "store_type": "jdbc", "type": "snowflake"}],
                      "containers": [{"id": 1, "datastore_id": 1, "name": "T", "container_type": "table"}],
                      "fields": [{"id": 1, "container_id": 1, "name": "c"}]},
    })


# ---------------------------------------------------------------- top level

@pytest.mark.parametrize("version, expected", [
    (2, "world_version: must be 1, got 2"), ("1", "world_version: must be 1, got '1'"),
    (True, "world_version: must be 1, got True"),
])
def test_rejects_a_world_version_other_than_1(world: dict[str, Any], version: Any, expected: str) -> None:
    world["world_version"] = version
    assert expected in problems(world)


def test_rejects_a_missing_world_version(world: dict[str, Any]) -> None:
    del world["world_version"]
    assert "world_version: required" in problems(world)


def test_rejects_a_document_that_is_not_an_object() -> None:
    assert "a world is a JSON object" in problems([1, 2])


def test_rejects_a_missing_side(world: dict[str, Any]) -> None:
    del world["qualytics"]
    assert "qualytics: required" in problems(world)


# ---------------------------------------------------------------- shapes

def test_missing_qualified_name_is_reported_with_its_path(world: dict[str, Any]) -> None:
    i, table = entity(world, "Table")
    del table["attributes"]["qualifiedName"]
    assert f"atlan.entities[{i}].attributes.qualifiedName: required" in problems(world)


@pytest.mark.parametrize("key, value, expected", [
    ("id", "5", "must be an integer, got '5'"),
    ("id", True, "must be an integer, got True"),
    ("name", ["x"], "must be a string, got a list"),
    ("container_type", "tabel", "must be one of 'table', 'file', 'computed_table', 'computed_file' or 'computed_join'"),
    ("tags", "Finance", "must be a list, got 'Finance'"),
])
def test_wrong_types_are_reported_with_their_path(world: dict[str, Any], key: str, value: Any, expected: str) -> None:
    world["qualytics"]["containers"][3][key] = value
    assert f"qualytics.containers[3].{key}: {expected}" in problems(world)


def test_score_out_of_range_is_reported(world: dict[str, Any]) -> None:
    i, container = next((i, c) for i, c in enumerate(world["qualytics"]["containers"]) if c["quality_score"])
    container["quality_score"]["total"] = 140
    assert f"qualytics.containers[{i}].quality_score.total: input should be less than or equal to 100" in problems(world)


def test_paths_in_big_lists_count_from_the_start_of_the_list() -> None:
    doc = {"world_version": 1, "atlan": {}, "qualytics": {
        "datastores": [{"id": 1, "name": "d", "store_type": "jdbc", "type": "x"}],
        "containers": [{"id": 1, "datastore_id": 1, "name": "t", "container_type": "table"}],
        "fields": [{"id": i, "container_id": 1, "name": f"c{i}"} for i in range(12_000)],
    }}
    doc["qualytics"]["fields"][11_003]["name"] = 7
    assert "qualytics.fields[11003].name: must be a string, got 7" in problems(doc)


def test_lists_five_problems_and_counts_the_rest(world: dict[str, Any]) -> None:
    for field in world["qualytics"]["fields"][:8]:
        field["id"] = "x"
    message = problems(world)
    assert message.startswith("invalid world (8 problems):")
    assert message.count("must be an integer") == 5
    assert message.rstrip().endswith("... and 3 more")


# ---------------------------------------------------------------- references and uniqueness

def test_unknown_datastore_reference_is_reported(world: dict[str, Any]) -> None:
    world["qualytics"]["containers"][2]["datastore_id"] = 99
    assert "qualytics.containers[2].datastore_id: datastore 99 does not exist" in problems(world)


def test_duplicate_id_is_reported_with_both_places(world: dict[str, Any]) -> None:
    world["qualytics"]["fields"][5]["id"] = world["qualytics"]["fields"][1]["id"]
    assert "qualytics.fields[5].id: duplicate id" in problems(world)
    assert "(also qualytics.fields[1])" in problems(world)


def test_duplicate_guid_and_qualified_name_are_reported(world: dict[str, Any]) -> None:
    entities = world["atlan"]["entities"]
    i, table = entity(world, "Table")
    twin = copy.deepcopy(table)
    entities.append(twin)
    message = problems(world)
    assert f"atlan.entities[{len(entities) - 1}].guid: duplicate guid" in message
    assert f"atlan.entities[{len(entities) - 1}].attributes.qualifiedName: duplicate Table" in message


def test_field_and_check_and_anomaly_must_point_at_existing_records(world: dict[str, Any]) -> None:
    q = world["qualytics"]
    q["fields"][0]["container_id"] = 9999
    q["checks"][0]["container_id"] = 9998
    q["anomalies"][0]["check_ids"] = [424242]
    message = problems(world)
    assert "qualytics.fields[0].container_id: container 9999 does not exist" in message
    assert "qualytics.checks[0].container_id: container 9998 does not exist" in message
    assert "qualytics.anomalies[0].check_ids[0]: check 424242 does not exist" in message


def test_anomaly_checks_must_belong_to_its_container(world: dict[str, Any]) -> None:
    q = world["qualytics"]
    other = next(c for c in q["checks"] if c["container_id"] != q["anomalies"][0]["container_id"])
    q["anomalies"][0]["check_ids"] = [other["id"]]
    assert f"qualytics.anomalies[0].check_ids[0]: check {other['id']} belongs to container" in problems(world)


def test_check_field_names_must_be_fields_of_its_container(world: dict[str, Any]) -> None:
    i, check = next((i, c) for i, c in enumerate(world["qualytics"]["checks"]) if c["field_names"])
    check["field_names"] = ["no_such_column"]
    expected = f"qualytics.checks[{i}].field_names[0]: container {check['container_id']} has no field 'no_such_column'"
    assert expected in problems(world)


def test_unknown_qualytics_tag_name_is_reported(world: dict[str, Any]) -> None:
    world["qualytics"]["datastores"][0]["tags"] = ["Critical", "Nope"]
    assert "qualytics.datastores[0].tags[1]: tag 'Nope' is not in qualytics.global_tags" in problems(world)


def test_external_tag_needs_an_existing_integration(world: dict[str, Any]) -> None:
    i, tag = first(world["qualytics"]["global_tags"], type="external")
    tag["integration_id"] = 7
    assert f"qualytics.global_tags[{i}].integration_id: integration 7 does not exist" in problems(world)
    tag["integration_id"] = None
    assert f"qualytics.global_tags[{i}].integration_id: required for an external tag" in problems(world)


def test_classification_must_name_a_tag_definition(world: dict[str, Any]) -> None:
    i, table = entity(world, "Table")
    table["classifications"] = [{"typeName": "PII"}]
    assert f"atlan.entities[{i}].classifications[0].typeName: no classificationDef is named 'PII'" in problems(world)


def test_propagated_tag_source_must_exist(world: dict[str, Any]) -> None:
    i, table = entity(world, "Table")
    tag = world["atlan"]["typedefs"]["classificationDefs"][0]["name"]
    table["classifications"] = [{"typeName": tag, "entityGuid": "gone"}]
    assert f"atlan.entities[{i}].classifications[0].entityGuid: entity 'gone' does not exist" in problems(world)


def test_business_attributes_must_name_a_custom_metadata_set_and_attribute(world: dict[str, Any]) -> None:
    i, table = entity(world, "Table")
    cm = world["atlan"]["typedefs"]["businessMetadataDefs"][0]["name"]
    table["businessAttributes"] = {"NoSuchSet": {"a": 1}, cm: {"NoSuchAttr": 2}}
    message = problems(world)
    assert f"atlan.entities[{i}].businessAttributes.NoSuchSet: no businessMetadataDef is named 'NoSuchSet'" in message
    assert f"atlan.entities[{i}].businessAttributes.{cm}.NoSuchAttr: custom-metadata set" in message


def test_domain_guids_hold_one_data_domain(world: dict[str, Any]) -> None:
    i, table = entity(world, "Table")
    _, schema = entity(world, "Schema")
    domain = entity(world, "DataDomain")[1]["guid"]
    table["attributes"]["domainGUIDs"] = [domain, schema["guid"]]
    message = problems(world)
    assert f"atlan.entities[{i}].attributes.domainGUIDs: an asset can be linked to only one domain" in message
    assert f"atlan.entities[{i}].attributes.domainGUIDs[1]: '{schema['guid']}' is not the guid of a DataDomain" in message


def test_duplicate_typedef_display_names_are_reported(world: dict[str, Any]) -> None:
    defs = world["atlan"]["typedefs"]["classificationDefs"]
    defs[1]["displayName"] = defs[0]["displayName"]
    assert "atlan.typedefs.classificationDefs[1].displayName: duplicate displayName" in problems(world)


def test_duplicate_tokens_are_reported_without_the_token(world: dict[str, Any]) -> None:
    personas = world["atlan"]["personas"]
    personas[2]["token"] = personas[0]["token"]
    message = problems(world)
    assert "atlan.personas[2].token: duplicate token (also atlan.personas[0])" in message
    assert personas[0]["token"] not in message


def test_wrongly_typed_token_is_reported_without_its_value(world: dict[str, Any]) -> None:
    world["qualytics"]["tokens"][0]["token"] = 123456789
    message = problems(world)
    assert "qualytics.tokens[0].token: must be a string" in message and "123456789" not in message


def test_computed_table_needs_a_query_and_only_tables_have_a_table_type(world: dict[str, Any]) -> None:
    containers = world["qualytics"]["containers"]
    i, computed = first(containers, container_type="computed_table")
    del computed["query"]
    j, file = first(containers, container_type="file")
    file["table_type"] = "table"
    message = problems(world)
    assert f"qualytics.containers[{i}].query: required for a computed_table container" in message
    assert f"qualytics.containers[{j}].table_type: only table containers have a table_type" in message


def test_duplicate_live_container_names_in_a_datastore_are_reported(world: dict[str, Any]) -> None:
    containers = world["qualytics"]["containers"]
    i, a = first(containers, container_type="table", deleted_at=None)
    j, b = next((j, c) for j, c in enumerate(containers) if j > i and c["datastore_id"] == a["datastore_id"]
                and c["deleted_at"] is None)
    b["name"] = a["name"]
    assert f"qualytics.containers[{j}].name: duplicate container name {a['name']!r}" in problems(world)


# ---------------------------------------------------------------- robustness

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
LISTS = [("atlan", "personas"), ("atlan", "entities"), ("qualytics", "tokens"), ("qualytics", "global_tags"),
         ("qualytics", "datastores"), ("qualytics", "containers"), ("qualytics", "fields"),
         ("qualytics", "checks"), ("qualytics", "anomalies")]
TINY = generate_world("tables=3,columns=2,seed=1")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_damaged_value_is_reported_as_a_world_error_never_a_crash(data: st.DataObject) -> None:
    doc = copy.deepcopy(TINY)
    side, key = data.draw(st.sampled_from(LISTS))
    records = doc[side][key]
    target = records[data.draw(st.integers(0, len(records) - 1))]
    nested = [k for k, v in target.items() if isinstance(v, dict)]
    if nested and data.draw(st.booleans()):
        target = target[data.draw(st.sampled_from(sorted(nested)))]
    target[data.draw(st.sampled_from(sorted(target) + ["id", "guid", "name"]))] = data.draw(JSON)
    try:
        validate_world(doc)
    except WorldError as exc:
        assert str(exc).startswith("invalid world")
