"""Rules between the records of a world: uniqueness and references (used by `schema`).

Runs only on documents whose shapes already validated, so record keys have the right types.
Written as plain loops: worlds hold millions of records and this must stay fast.
"""

from __future__ import annotations

from typing import Any, Callable

from qatlan.sandbox._problems import Problems

Record = dict[str, Any]


def _unique(problems: Problems, records: list[Record], path: str, key: str, what: str,
            secret: bool = False) -> dict[Any, int]:
    """Index records by `key`, reporting duplicates; returns value -> first index."""
    seen: dict[Any, int] = {}
    for i, rec in enumerate(records):
        value = rec[key]
        first = seen.setdefault(value, i)
        if first != i:
            shown = "" if secret else f" {value!r}"
            problems.add(f"{path}[{i}].{key}", f"duplicate {what}{shown} (also {path}[{first}])")
    return seen


def _tags_exist(problems: Problems, rec: Record, path: str, tag_names: set[str]) -> None:
    for j, name in enumerate(rec.get("tags") or ()):
        if name not in tag_names:
            problems.add(f"{path}.tags[{j}]", f"tag {name!r} is not in qualytics.global_tags")


# ---------------------------------------------------------------- Atlan

def check_atlan(atlan: Record, problems: Problems) -> None:
    personas = atlan.get("personas") or []
    _unique(problems, personas, "atlan.personas", "name", "persona name")
    _unique(problems, personas, "atlan.personas", "token", "token", secret=True)
    typedefs = atlan.get("typedefs") or {}
    tag_names = _check_defs(problems, typedefs.get("classificationDefs") or [], "atlan.typedefs.classificationDefs")
    cm_attrs = _check_defs(problems, typedefs.get("businessMetadataDefs") or [], "atlan.typedefs.businessMetadataDefs")
    _check_entities(problems, atlan.get("entities") or [], tag_names, cm_attrs)


def _check_defs(problems: Problems, defs: list[Record], path: str) -> dict[str, set[str]]:
    """Unique names and display names; returns def name -> its attribute names."""
    _unique(problems, defs, path, "name", "name")
    _unique(problems, defs, path, "displayName", "displayName")
    out = {}
    for i, d in enumerate(defs):
        attrs = d.get("attributeDefs") or []
        _unique(problems, attrs, f"{path}[{i}].attributeDefs", "name", "attribute name")
        _unique(problems, attrs, f"{path}[{i}].attributeDefs", "displayName", "attribute displayName")
        out[d["name"]] = {a["name"] for a in attrs}
    return out


def _check_entities(problems: Problems, entities: list[Record], tag_names: dict[str, set[str]],
                    cm_attrs: dict[str, set[str]]) -> None:
    guids = _unique(problems, entities, "atlan.entities", "guid", "guid")
    keys: dict[tuple[str, str], int] = {}
    domains: dict[str, str] = {}  # DataDomain guid -> qualifiedName
    for i, e in enumerate(entities):
        attrs = e["attributes"]
        first = keys.setdefault((e["typeName"], attrs["qualifiedName"]), i)
        if first != i:
            problems.add(f"atlan.entities[{i}].attributes.qualifiedName",
                         f"duplicate {e['typeName']} {attrs['qualifiedName']!r} (also atlan.entities[{first}])")
        if e["typeName"] == "DataDomain":
            domains[e["guid"]] = attrs["qualifiedName"]
    domain_qns = set(domains.values())
    for i, e in enumerate(entities):
        path = f"atlan.entities[{i}]"
        if "classifications" in e:
            _check_classifications(problems, e, path, tag_names, guids)
        if "businessAttributes" in e:
            _check_business_attributes(problems, e["businessAttributes"], path, cm_attrs)
        attrs = e["attributes"]
        if attrs.get("domainGUIDs"):
            _check_domain_guids(problems, attrs["domainGUIDs"], f"{path}.attributes.domainGUIDs", domains)
        parent = attrs.get("parentDomainQualifiedName")
        if parent and e["typeName"] == "DataDomain" and parent not in domain_qns:
            problems.add(f"{path}.attributes.parentDomainQualifiedName", f"no DataDomain has qualifiedName {parent!r}")
        if "asset" in attrs and attrs["asset"]["guid"] not in guids:
            problems.add(f"{path}.attributes.asset.guid", f"entity {attrs['asset']['guid']!r} does not exist")


def _check_classifications(problems: Problems, e: Record, path: str, tag_names: dict[str, set[str]],
                           guids: dict[Any, int]) -> None:
    seen: set[tuple[str, str]] = set()
    for j, c in enumerate(e["classifications"]):
        where = f"{path}.classifications[{j}]"
        if c["typeName"] not in tag_names:
            problems.add(f"{where}.typeName", f"no classificationDef is named {c['typeName']!r}")
        source = c.get("entityGuid") or e["guid"]
        if source not in guids:
            problems.add(f"{where}.entityGuid", f"entity {source!r} does not exist")
        if (c["typeName"], source) in seen:
            problems.add(f"{where}.typeName", f"tag {c['typeName']!r} is attached twice from the same entity")
        seen.add((c["typeName"], source))


def _check_business_attributes(problems: Problems, values: dict[str, Any], path: str,
                               cm_attrs: dict[str, set[str]]) -> None:
    for set_name, attrs in values.items():
        where = f"{path}.businessAttributes.{set_name}"
        if set_name not in cm_attrs:
            problems.add(where, f"no businessMetadataDef is named {set_name!r}")
            continue
        for attr in attrs:
            if attr not in cm_attrs[set_name]:
                problems.add(f"{where}.{attr}", f"custom-metadata set {set_name!r} has no attribute {attr!r}")


def _check_domain_guids(problems: Problems, value: list[str], path: str, domains: dict[str, str]) -> None:
    if len(value) > 1:
        problems.add(path, "an asset can be linked to only one domain")
    for j, g in enumerate(value):
        if g not in domains:
            problems.add(f"{path}[{j}]", f"{g!r} is not the guid of a DataDomain")


# ---------------------------------------------------------------- Qualytics

def check_qualytics(q: Record, problems: Problems) -> None:
    _unique(problems, q.get("tokens") or [], "qualytics.tokens", "token", "token", secret=True)
    integrations = _unique(problems, q.get("integrations") or [], "qualytics.integrations", "id", "id")
    tag_names = _check_global_tags(problems, q.get("global_tags") or [], integrations)
    datastores = _unique(problems, q.get("datastores") or [], "qualytics.datastores", "id", "id")
    for i, rec in enumerate(q.get("datastores") or []):
        _tags_exist(problems, rec, f"qualytics.datastores[{i}]", tag_names)
    containers = _check_containers(problems, q.get("containers") or [], datastores, tag_names)
    field_keys = _check_fields(problems, q.get("fields") or [], containers, tag_names)
    check_owner = _check_checks(problems, q.get("checks") or [], containers, field_keys, tag_names)
    _check_anomalies(problems, q.get("anomalies") or [], containers, check_owner, tag_names)


def _check_global_tags(problems: Problems, tags: list[Record], integrations: dict[Any, int]) -> set[str]:
    _unique(problems, tags, "qualytics.global_tags", "id", "id")
    names = _unique(problems, tags, "qualytics.global_tags", "name", "tag name")
    for i, t in enumerate(tags):
        if t.get("type") != "external":
            continue
        ref = t.get("integration_id")
        if ref is None:
            problems.add(f"qualytics.global_tags[{i}].integration_id", "required for an external tag")
        elif ref not in integrations:
            problems.add(f"qualytics.global_tags[{i}].integration_id", f"integration {ref} does not exist")
    return set(names)


def _owned(problems: Problems, records: list[Record], path: str, parent_key: str, parents: dict[Any, int],
           what: str, tag_names: set[str], extra: Callable[[int, Record], None] | None = None) -> dict[Any, int]:
    """Unique ids, an existing parent and known tags for each record; returns id -> index."""
    ids = _unique(problems, records, path, "id", "id")
    for i, rec in enumerate(records):
        if rec[parent_key] not in parents:
            problems.add(f"{path}[{i}].{parent_key}", f"{what} {rec[parent_key]} does not exist")
        if rec.get("tags"):
            _tags_exist(problems, rec, f"{path}[{i}]", tag_names)
        if extra is not None:
            extra(i, rec)
    return ids


def _check_containers(problems: Problems, containers: list[Record], datastores: dict[Any, int],
                      tag_names: set[str]) -> dict[Any, int]:
    live: dict[tuple[int, str], int] = {}

    def extra(i: int, c: Record) -> None:
        path = f"qualytics.containers[{i}]"
        if c["container_type"] == "computed_table" and not isinstance(c.get("query"), str):
            problems.add(f"{path}.query", "required for a computed_table container")
        if "table_type" in c and c["container_type"] != "table":
            problems.add(f"{path}.table_type", "only table containers have a table_type")
        if c.get("deleted_at") is None:
            first = live.setdefault((c["datastore_id"], c["name"]), i)
            if first != i:
                problems.add(f"{path}.name", f"duplicate container name {c['name']!r} in datastore "
                                             f"{c['datastore_id']} (also qualytics.containers[{first}])")

    return _owned(problems, containers, "qualytics.containers", "datastore_id", datastores, "datastore",
                  tag_names, extra)


def _check_fields(problems: Problems, fields: list[Record], containers: dict[Any, int],
                  tag_names: set[str]) -> set[tuple[int, str]]:
    keys: dict[tuple[int, str], int] = {}

    def extra(i: int, f: Record) -> None:
        key = (f["container_id"], f["name"])
        if f.get("deleted_at") is not None:
            keys.setdefault(key, -1)
            return
        first = keys.get(key, -1)
        if first >= 0:
            problems.add(f"qualytics.fields[{i}].name", f"duplicate field name {f['name']!r} in container "
                                                        f"{f['container_id']} (also qualytics.fields[{first}])")
        else:
            keys[key] = i

    _owned(problems, fields, "qualytics.fields", "container_id", containers, "container", tag_names, extra)
    return set(keys)


def _check_checks(problems: Problems, checks: list[Record], containers: dict[Any, int],
                  field_keys: set[tuple[int, str]], tag_names: set[str]) -> dict[int, int]:
    owner: dict[int, int] = {}  # check id -> container id

    def extra(i: int, c: Record) -> None:
        owner.setdefault(c["id"], c["container_id"])
        for j, name in enumerate(c.get("field_names") or ()):
            if c["container_id"] in containers and (c["container_id"], name) not in field_keys:
                problems.add(f"qualytics.checks[{i}].field_names[{j}]",
                             f"container {c['container_id']} has no field {name!r}")

    _owned(problems, checks, "qualytics.checks", "container_id", containers, "container", tag_names, extra)
    return owner


def _check_anomalies(problems: Problems, anomalies: list[Record], containers: dict[Any, int],
                     check_owner: dict[int, int], tag_names: set[str]) -> None:
    uuids: dict[str, int] = {}

    def extra(i: int, a: Record) -> None:
        path = f"qualytics.anomalies[{i}]"
        if "uuid" in a:
            first = uuids.setdefault(a["uuid"], i)
            if first != i:
                problems.add(f"{path}.uuid", f"duplicate uuid {a['uuid']!r} (also qualytics.anomalies[{first}])")
        for j, check_id in enumerate(a.get("check_ids") or ()):
            if check_id not in check_owner:
                problems.add(f"{path}.check_ids[{j}]", f"check {check_id} does not exist")
            elif check_owner[check_id] != a["container_id"]:
                problems.add(f"{path}.check_ids[{j}]", f"check {check_id} belongs to container "
                                                       f"{check_owner[check_id]}, not {a['container_id']}")

    _owned(problems, anomalies, "qualytics.anomalies", "container_id", containers, "container", tag_names, extra)
