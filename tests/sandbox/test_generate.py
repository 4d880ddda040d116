"""The world generator: spec parsing, determinism, and the mess a small world must hold.

Mess is checked on the generated data itself (recomputing matches the way qatlan's matcher
would), and `meta.summary` is checked against those recomputed counts.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.generate import GenSpec, generate_world, parse_spec
from qatlan.sandbox.schema import validate_world

TABLE_TYPES = ("Table", "View", "MaterialisedView")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HASHED = re.compile(r"^[A-Za-z][A-Za-z0-9]{21}$")


def _dump(world: dict[str, Any]) -> str:
    return json.dumps(world, sort_keys=True)


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    return generate_world("tables=20,seed=3")


def _entities(world: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [e for e in world["atlan"]["entities"] if e["typeName"] in types]


def _tag_names(world: dict[str, Any]) -> dict[str, str]:
    return {d["name"]: d["displayName"] for d in world["atlan"]["typedefs"]["classificationDefs"]}


class Pairs:
    """Datastores mapped to Atlan schemas (by host, database, schema) and the name matches."""

    def __init__(self, world: dict[str, Any]):
        q = world["qualytics"]
        self.conns = {e["attributes"]["host"]: e for e in _entities(world, "Connection")}
        self.tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in _entities(world, *TABLE_TYPES):
            if e["status"] == "ACTIVE":
                self.tables[e["attributes"]["schemaQualifiedName"]].append(e)
        self.columns: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in _entities(world, "Column"):
            attrs = e["attributes"]
            self.columns[attrs.get("tableQualifiedName") or attrs["viewQualifiedName"]].append(e)
        self.fields: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for f in q["fields"]:
            self.fields[f["container_id"]].append(f)
        self.sync_reads = set(world["atlan"]["personas"][0]["read"])
        self.kinds: Counter[str] = Counter()
        self.matched: list[tuple[dict[str, Any], dict[str, Any], bool]] = []  # container, table, visible
        self.schemas: dict[str, int] = {}  # mapped schema QN -> datastore id
        for ds in (d for d in q["datastores"] if d["store_type"] == "jdbc"):
            conn = self.conns[ds["host"]]["attributes"]["qualifiedName"]
            schema = f"{conn}/{ds['database']}/{ds['schema']}"
            self.schemas[schema] = ds["id"]
            for c in q["containers"]:
                if c["datastore_id"] == ds["id"] and c["container_type"] == "table" and not c["deleted_at"]:
                    self._match(c, self.tables[schema], conn in self.sync_reads)

    def _match(self, container: dict[str, Any], tables: list[dict[str, Any]], visible: bool) -> None:
        exact = [t for t in tables if t["attributes"]["name"] == container["name"]]
        folded = [t for t in tables if t["attributes"]["name"].lower() == container["name"].lower()]
        if exact or len(folded) == 1:
            self.kinds["exact" if exact else "case_only"] += 1
            self.matched.append((container, (exact or folded)[0], visible))
        else:
            self.kinds["ambiguous" if folded else "only_qualytics"] += 1

    def column_kinds(self) -> Counter[str]:
        kinds: Counter[str] = Counter()
        for container, table, _ in self.matched:
            fields = [f["name"] for f in self.fields[container["id"]]]
            cols = [c["attributes"]["name"] for c in self.columns[table["attributes"]["qualifiedName"]]]
            for f in fields:
                folded = [c for c in cols if c.lower() == f.lower()]
                kinds["exact" if f in cols else "case_only" if len(folded) == 1
                      else "ambiguous" if folded else "only_qualytics"] += 1
            lowered = {f.lower() for f in fields}
            kinds["only_atlan"] += sum(1 for c in cols if c.lower() not in lowered)
        return kinds


# ---------------------------------------------------------------- spec parsing

def test_parse_spec_fills_defaults_for_missing_keys() -> None:
    spec = parse_spec("")
    assert spec == GenSpec()
    assert (spec.tables, spec.columns, spec.seed, spec.cm) == (100, 20, 0, "absent")
    assert spec.datastore_count == 4


def test_parse_spec_reads_every_key() -> None:
    spec = parse_spec(" tables=500 , columns=7,seed=9,datastores=12,cm=present,mess=2,checks=1.5,anomalies=0 ")
    assert spec == GenSpec(tables=500, columns=7, seed=9, datastores=12, cm="present", mess=2.0,
                           checks=1.5, anomalies=0.0)


def test_default_datastore_count_grows_with_tables() -> None:
    assert [GenSpec(tables=n).datastore_count for n in (20, 10_000, 100_000)] == [4, 20, 63]


def test_parse_spec_rejects_unknown_key_and_lists_valid_keys() -> None:
    with pytest.raises(WorldError) as exc:
        parse_spec("tabels=10")
    message = str(exc.value)
    assert "'tabels'" in message
    assert "valid keys: anomalies, checks, cm, columns, datastores, mess, seed, tables" in message


@pytest.mark.parametrize("spec, key", [
    ("tables=abc", "tables"), ("tables=0", "tables"), ("tables=1.5", "tables"), ("columns=-1", "columns"),
    ("datastores=3", "datastores"), ("cm=maybe", "cm"), ("mess=nan", "mess"), ("checks=x", "checks"),
    ("seed=-1", "seed"), ("tables=300000", "tables"),
])
def test_parse_spec_rejects_bad_value_naming_the_key(spec: str, key: str) -> None:
    with pytest.raises(WorldError, match=rf"generator spec: {key} must be"):
        parse_spec(spec)


@pytest.mark.parametrize("spec", ["tables", "=5", "tables=5,tables=6"])
def test_parse_spec_rejects_malformed_parts(spec: str) -> None:
    with pytest.raises(WorldError, match="generator spec"):
        parse_spec(spec)


def test_genspec_rejects_bad_values_when_built_directly() -> None:
    with pytest.raises(WorldError, match="columns must be an integer"):
        GenSpec(columns=True)


# ---------------------------------------------------------------- determinism

def test_same_spec_gives_byte_identical_json() -> None:
    assert _dump(generate_world("tables=60,seed=5")) == _dump(generate_world("tables=60,seed=5"))


def test_key_order_and_spec_object_do_not_change_the_world() -> None:
    a = generate_world("seed=5, tables=60")
    assert _dump(a) == _dump(generate_world(GenSpec(tables=60, seed=5)))
    assert a["meta"]["spec"] == "tables=60,columns=20,seed=5,datastores=4,cm=absent,mess=1,checks=3,anomalies=0.5"


def test_different_seed_gives_different_world() -> None:
    assert _dump(generate_world("tables=60,seed=5")) != _dump(generate_world("tables=60,seed=6"))


def test_world_does_not_depend_on_hash_randomisation() -> None:
    code = ("import hashlib, json; from qatlan.sandbox.generate import generate_world; "
            "print(hashlib.sha256(json.dumps(generate_world('tables=30,seed=2'), sort_keys=True).encode()).hexdigest())")
    root = Path(__file__).resolve().parents[2]
    digests = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                       env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}).stdout.strip()
        for seed in ("1", "2")
    }
    local = hashlib.sha256(_dump(generate_world("tables=30,seed=2")).encode()).hexdigest()
    assert digests == {local}


# ---------------------------------------------------------------- validity and sizes

@pytest.mark.parametrize("spec", ["tables=1", "tables=20", "tables=150,cm=present,mess=3", "mess=0",
                                  "tables=40,datastores=30,columns=1", "tables=5,columns=120"])
def test_generated_worlds_validate(spec: str) -> None:
    validate_world(generate_world(spec))


@pytest.mark.parametrize("tables", [1, 7, 20, 333])
def test_tables_is_the_exact_number_of_table_containers(tables: int) -> None:
    world = generate_world(f"tables={tables}")
    assert sum(1 for c in world["qualytics"]["containers"] if c["container_type"] == "table") == tables


def test_datastores_key_sets_the_number_of_jdbc_datastores() -> None:
    stores = generate_world("tables=50,datastores=11")["qualytics"]["datastores"]
    assert Counter(d["store_type"] for d in stores) == {"jdbc": 11, "dfs": 1}


def test_columns_is_the_mean_columns_per_table() -> None:
    world = generate_world("tables=200,columns=8")
    fields = Counter(f["container_id"] for f in world["qualytics"]["fields"])
    table_ids = [c["id"] for c in world["qualytics"]["containers"] if c["container_type"] == "table"]
    assert 7 <= sum(fields[i] for i in table_ids) / len(table_ids) <= 9.5


def test_a_two_thousand_table_world_generates_and_validates_quickly() -> None:
    started = time.perf_counter()
    world = generate_world("tables=2000")
    validate_world(world)
    assert time.perf_counter() - started < 10


# ---------------------------------------------------------------- connections and datastores

def test_world_has_snowflake_postgres_and_file_datastores(world: dict[str, Any]) -> None:
    stores = world["qualytics"]["datastores"]
    assert {d["type"] for d in stores} == {"snowflake", "postgresql", "s3"}
    dfs = [d for d in stores if d["store_type"] == "dfs"]
    files = [c for c in world["qualytics"]["containers"] if c["container_type"] == "file"]
    assert dfs and files and all(c["datastore_id"] == dfs[0]["id"] and c["file_name"] for c in files)


def test_snowflake_names_are_upper_case_and_postgres_names_lower_case(world: dict[str, Any]) -> None:
    pairs = Pairs(world)
    case_mess = {t["guid"] for c, t, _ in pairs.matched if c["name"] != t["attributes"]["name"]}
    for tables in pairs.tables.values():
        folded = Counter(t["attributes"]["name"].lower() for t in tables)
        case_mess |= {t["guid"] for t in tables if folded[t["attributes"]["name"].lower()] > 1}
    for e in _entities(world, "Database", "Schema", *TABLE_TYPES):
        name, connector = e["attributes"]["name"], e["attributes"]["connectorName"]
        if e["guid"] not in case_mess:
            assert name == (name.upper() if connector == "snowflake" else name.lower()), name


def test_two_same_type_connections_hold_a_database_of_the_same_name(world: dict[str, Any]) -> None:
    dbs = Counter((e["attributes"]["connectorName"], e["attributes"]["name"]) for e in _entities(world, "Database"))
    assert dbs[("snowflake", "ANALYTICS")] == 2
    mapped = [d for d in world["qualytics"]["datastores"] if d["database"] == "ANALYTICS"]
    assert len({d["host"] for d in mapped}) == 2


def test_one_connection_has_no_datastore(world: dict[str, Any]) -> None:
    hosts = {d["host"] for d in world["qualytics"]["datastores"]}
    extra = [e for e in _entities(world, "Connection") if e["attributes"]["host"] not in hosts]
    assert [e["attributes"]["connectorName"] for e in extra] == ["redshift"]
    assert any(t["attributes"]["connectionQualifiedName"] == extra[0]["attributes"]["qualifiedName"]
               for t in _entities(world, "Table"))


def test_sync_persona_cannot_see_exactly_one_mapped_connection(world: dict[str, Any]) -> None:
    personas = {p["name"]: p for p in world["atlan"]["personas"]}
    sync = personas["qualytics-sync"]
    assert sync["token"] == "atlan-sandbox-sync-token" and sync["manage_typedefs"] is True
    assert sync["read"] == sync["update"]
    hosts = {d["host"] for d in world["qualytics"]["datastores"]}
    unseen = [e for e in _entities(world, "Connection") if e["attributes"]["qualifiedName"] not in sync["read"]]
    assert len(unseen) == 1 and unseen[0]["attributes"]["host"] in hosts
    assert personas["read-only"] == {"name": "read-only", "token": "atlan-sandbox-readonly-token",
                                     "read": ["*"], "update": [], "manage_typedefs": False}
    assert personas["admin"]["read"] == personas["admin"]["update"] == ["*"]
    assert world["qualytics"]["tokens"][0]["token"] == "qualytics-sandbox-token"


# ---------------------------------------------------------------- tables and columns

def test_every_table_match_category_is_present_and_counted(world: dict[str, Any]) -> None:
    pairs, mess = Pairs(world), world["meta"]["summary"]["mess"]
    assert all(pairs.kinds[k] >= 1 for k in ("exact", "case_only", "ambiguous", "only_qualytics"))
    assert pairs.kinds["exact"] == mess["tables_exact"] + mess["views"] + mess["materialised_views"]
    assert pairs.kinds["case_only"] == mess["tables_case_only"]
    assert pairs.kinds["ambiguous"] == mess["tables_ambiguous"]
    assert pairs.kinds["only_qualytics"] == mess["tables_only_qualytics"]


def test_case_only_and_ambiguous_names_look_as_described(world: dict[str, Any]) -> None:
    pairs = Pairs(world)
    assert any(c["name"] == "orders" and t["attributes"]["name"] == "ORDERS" for c, t, _ in pairs.matched)
    names = {t["attributes"]["name"] for t in _entities(world, "Table")}
    assert {"Customers", "CUSTOMERS"} <= names
    assert "customers" in {c["name"] for c in world["qualytics"]["containers"]}


def test_some_atlan_tables_have_no_container(world: dict[str, Any]) -> None:
    pairs, q = Pairs(world), world["qualytics"]
    lonely, unmapped = 0, 0
    for schema, tables in pairs.tables.items():
        if schema not in pairs.schemas:
            unmapped += len(tables)
            continue
        ds_id = pairs.schemas[schema]
        names = {c["name"].lower() for c in q["containers"] if c["datastore_id"] == ds_id and c["container_type"] == "table"}
        lonely += sum(1 for t in tables if t["attributes"]["name"].lower() not in names)
    mess = world["meta"]["summary"]["mess"]
    assert lonely == mess["tables_only_atlan"] >= 1
    assert unmapped == mess["tables_extra_connection"] >= 1


def test_a_computed_container_is_named_like_an_atlan_only_table(world: dict[str, Any]) -> None:
    pairs, q = Pairs(world), world["qualytics"]
    by_ds = {ds: schema for schema, ds in pairs.schemas.items()}
    collisions = [c for c in q["containers"] if c["container_type"] == "computed_table"
                  and c["name"] in {t["attributes"]["name"] for t in pairs.tables[by_ds[c["datastore_id"]]]}]
    assert len(collisions) == world["meta"]["summary"]["mess"]["computed_name_collisions"] == 1


def test_column_mess_is_present_and_counted(world: dict[str, Any]) -> None:
    kinds, mess = Pairs(world).column_kinds(), world["meta"]["summary"]["mess"]
    for key in ("case_only", "only_qualytics", "only_atlan", "ambiguous"):
        assert kinds[key] >= 1
        assert kinds[key] == mess[f"columns_{key}"], key


def test_views_and_materialised_views_pair_with_qualytics_views(world: dict[str, Any]) -> None:
    by_type = Counter(t["typeName"] for c, t, _ in Pairs(world).matched if c.get("table_type") == "view")
    assert by_type["View"] >= 1 and by_type["MaterialisedView"] >= 1
    assert set(by_type) <= {"View", "MaterialisedView"}


def test_computed_containers_have_a_query_and_no_atlan_table_of_their_own(world: dict[str, Any]) -> None:
    computed = [c for c in world["qualytics"]["containers"] if c["container_type"] == "computed_table"]
    assert computed and all(c["query"].startswith("SELECT") for c in computed)
    assert "table_type" not in computed[0]


def test_archived_containers_pair_with_deleted_atlan_tables(world: dict[str, Any]) -> None:
    archived = {c["name"] for c in world["qualytics"]["containers"] if c["deleted_at"] and c["container_type"] == "table"}
    deleted = {t["attributes"]["name"] for t in _entities(world, "Table") if t["status"] == "DELETED"}
    assert archived and archived == deleted


def test_atlan_assets_carry_reference_qualified_names_and_denormalised_attributes(world: dict[str, Any]) -> None:
    for conn in _entities(world, "Connection"):
        assert re.fullmatch(r"default/(snowflake|postgres|redshift)/\d{10}", conn["attributes"]["qualifiedName"])
    tables = {t["attributes"]["qualifiedName"]: t for t in _entities(world, *TABLE_TYPES)}
    for col in _entities(world, "Column"):
        a = col["attributes"]
        parent = a.get("tableQualifiedName") or a["viewQualifiedName"]
        assert a["qualifiedName"] == f"{parent}/{a['name']}"
        assert parent == f"{a['schemaQualifiedName']}/{a.get('tableName') or a['viewName']}"
        assert a["schemaQualifiedName"] == f"{a['databaseQualifiedName']}/{a['schemaName']}"
        assert a["databaseQualifiedName"] == f"{a['connectionQualifiedName']}/{a['databaseName']}"
        assert isinstance(a["order"], int) and a["dataType"]
        assert ("viewName" in a) == (tables[parent]["typeName"] != "Table")


def test_entities_have_increasing_create_times_and_uuid4_guids(world: dict[str, Any]) -> None:
    entities = world["atlan"]["entities"]
    times = [e["createTime"] for e in entities]
    assert all(a < b for a, b in zip(times, times[1:]))
    assert all(e["updateTime"] >= e["createTime"] for e in entities)
    assert all(UUID4.match(e["guid"]) for e in entities)
    assert times[0] == 1767225600000  # 2026-01-01T00:00:00Z


# ---------------------------------------------------------------- tags

def test_atlan_tags_have_hashed_names_and_some_propagate(world: dict[str, Any]) -> None:
    names = _tag_names(world)
    assert set(names.values()) == {"PII", "Confidential", "Finance", "GDPR", "Gold"}
    assert all(HASHED.match(n) for n in names)
    guids = {e["guid"] for e in world["atlan"]["entities"]}
    tagged = [(e, c) for e in world["atlan"]["entities"] for c in e.get("classifications", [])]
    propagated = [(e, c) for e, c in tagged if c.get("entityGuid", e["guid"]) != e["guid"]]
    assert propagated and all(c["entityGuid"] in guids for _, c in propagated)
    assert len(propagated) == world["meta"]["summary"]["mess"]["propagated_tags"]
    assert {e["typeName"] for e, c in tagged if "entityGuid" not in c} >= {"Table", "Column"}


def test_qualytics_tags_include_globals_externals_and_a_conflict(world: dict[str, Any]) -> None:
    q = world["qualytics"]
    kinds = {t["name"]: t["type"] for t in q["global_tags"]}
    assert {"Critical", "Finance", "Sensitive"} <= {n for n, k in kinds.items() if k == "global"}
    assert q["integrations"][0]["id"] == 1 and q["integrations"][0]["type"] == "atlan"
    externals = [t for t in q["global_tags"] if t["type"] == "external"]
    assert externals and all(t["integration_id"] == 1 for t in externals)
    assert any(set(f["tags"]) & {t["name"] for t in externals} for f in q["fields"])
    assert any(d["tags"] for d in q["datastores"]) and any(c["tags"] for c in q["containers"])
    names = _tag_names(world)
    conflicts = sum(len(set(c["tags"]) & {names[x["typeName"]] for x in t.get("classifications", [])})
                    for c, t, visible in Pairs(world).matched if visible)
    assert conflicts >= 1 and conflicts == world["meta"]["summary"]["mess"]["tag_conflicts"]


# ---------------------------------------------------------------- people, scores, checks

def test_some_tables_carry_a_human_announcement_over_active_anomalies(world: dict[str, Any]) -> None:
    announced = [(c, t) for c, t, _ in Pairs(world).matched if "announcementType" in t["attributes"]]
    assert len(announced) == world["meta"]["summary"]["mess"]["human_announcements"] >= 1
    for container, table in announced:
        assert table["attributes"]["announcementUpdatedBy"] == table["updatedBy"] == "jsmith"
        assert any(a["container_id"] == container["id"] and a["status"] == "Active"
                   for a in world["qualytics"]["anomalies"])


def test_quality_scores_have_eight_dimensions_or_are_null_when_never_scanned(world: dict[str, Any]) -> None:
    q = world["qualytics"]
    dims = {"completeness", "coverage", "conformity", "consistency", "precision", "timeliness", "volumetrics", "accuracy"}
    scored = [c for c in q["containers"] if c["quality_score"]]
    assert scored and all(dims <= set(c["quality_score"]) and c["last_scanned"] for c in scored)
    never = [c for c in q["containers"] if c["last_scanned"] is None]
    assert never and all(c["quality_score"] is None for c in never)
    assert any(d["quality_score"] is None for d in q["datastores"])
    assert any(d["quality_score"] and dims <= set(d["quality_score"]) for d in q["datastores"])
    assert any(f["quality_score"] for f in q["fields"]) and any(f["quality_score"] is None for f in q["fields"])


def test_checks_and_anomalies_cover_open_and_archived_statuses(world: dict[str, Any]) -> None:
    q = world["qualytics"]
    checks = {c["id"]: c for c in q["checks"]}
    assert {"Active", "Draft", "Discarded"} <= {c["status"] for c in q["checks"]}
    assert all(c["deleted_at"] for c in q["checks"] if c["status"] == "Discarded")
    statuses = {a["status"] for a in q["anomalies"]}
    assert {"Active", "Acknowledged"} <= statuses and statuses & {"Resolved", "Invalid"}
    for a in q["anomalies"]:
        assert a["check_ids"] and all(checks[i]["container_id"] == a["container_id"] for i in a["check_ids"])


# ---------------------------------------------------------------- domains and custom metadata

def test_domains_have_subdomains_and_one_holds_no_assets(world: dict[str, Any]) -> None:
    domains = {d["attributes"]["name"]: d for d in _entities(world, "DataDomain")}
    sales, emea = domains["Sales"]["attributes"], domains["Sales EMEA"]["attributes"]
    assert re.fullmatch(r"default/domain/[A-Za-z0-9_-]{21}/super", sales["qualifiedName"])
    assert re.fullmatch(re.escape(sales["qualifiedName"]) + r"/domain/[A-Za-z0-9_-]{21}", emea["qualifiedName"])
    assert emea["parentDomainQualifiedName"] == emea["superDomainQualifiedName"] == sales["qualifiedName"]
    used = Counter(g for e in world["atlan"]["entities"] for g in e["attributes"].get("domainGUIDs", []))
    assert used[domains["Marketing"]["guid"]] == 0 and used[domains["Sales US"]["guid"]] >= 1
    tables = [t for t in _entities(world, *TABLE_TYPES) if t["status"] == "ACTIVE"]
    outside = [t for t in tables if not t["attributes"].get("domainGUIDs")]
    assert 1 <= len(outside) == world["meta"]["summary"]["mess"]["outside_domains"] < len(tables) / 2
    assert any(s["attributes"].get("domainGUIDs") for s in _entities(world, "Schema"))


def test_qualytics_custom_metadata_set_exists_only_with_cm_present(world: dict[str, Any]) -> None:
    assert [d["displayName"] for d in world["atlan"]["typedefs"]["businessMetadataDefs"]] == ["Data Owner Info"]
    defs = generate_world("tables=10,cm=present")["atlan"]["typedefs"]["businessMetadataDefs"]
    cm = {a["displayName"]: a for a in next(d for d in defs if d["displayName"] == "Qualytics")["attributeDefs"]}
    floats = {"Quality Score", "Completeness", "Coverage", "Conformity", "Consistency", "Precision",
              "Timeliness", "Volume", "Accuracy"}
    assert {n for n, a in cm.items() if a["typeName"] == "float"} == floats
    assert cm["Active Checks"]["typeName"] == cm["Active Anomalies"]["typeName"] == "int"
    assert cm["Qualytics URL"]["typeName"] == "string" and cm["Qualytics URL"]["options"]["customType"] == "url"
    assert cm["Last Scanned"]["typeName"] == "date"


def test_some_assets_hold_human_custom_metadata_and_links(world: dict[str, Any]) -> None:
    owner = world["atlan"]["typedefs"]["businessMetadataDefs"][0]["name"]
    valued = [e for e in world["atlan"]["entities"] if owner in e.get("businessAttributes", {})]
    assert valued and len(valued) == world["meta"]["summary"]["mess"]["human_custom_metadata"]
    links = _entities(world, "Link")
    guids = {e["guid"] for e in world["atlan"]["entities"]}
    assert links and all(link["attributes"]["asset"]["guid"] in guids for link in links)


def test_summary_counts_records_by_kind(world: dict[str, Any]) -> None:
    summary, q = world["meta"]["summary"], world["qualytics"]
    assert summary["qualytics"]["fields"] == len(q["fields"])
    assert summary["qualytics"]["table_containers"] == 20
    assert summary["atlan"]["entities"] == len(world["atlan"]["entities"])
    assert summary["atlan"]["Column"] == len(_entities(world, "Column"))
