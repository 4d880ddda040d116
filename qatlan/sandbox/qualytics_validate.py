"""Checks on single Qualytics world records, shared by world loading and admin changes.

The full world document is validated by `qatlan.sandbox.schema`; these checks cover what the
store itself relies on (ids, references between records, enums it branches on) so that a bad
admin change is refused with a message naming the record and the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qatlan.sandbox.errors import WorldError

STORE_TYPES = ("jdbc", "dfs", "native")
CONTAINER_TYPES = ("table", "file", "computed_table", "computed_file", "computed_join")
CONTAINER_STATUSES = ("Available", "Changed", "Inaccessible", "Unloadable")
FIELD_STATUSES = ("active", "excluded", "missing", "masked")
CHECK_STATUSES = ("Active", "Draft", "Invalid", "Discarded")
ANOMALY_STATUSES = ("Active", "Acknowledged", "Resolved", "Invalid", "Duplicate", "Discarded")
ANOMALY_TYPES = ("shape", "record")
TAG_TYPES = ("global", "entity", "lineage", "external")

_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "datastores": {"store_type": STORE_TYPES},
    "containers": {"container_type": CONTAINER_TYPES, "table_type": ("table", "view"), "status": CONTAINER_STATUSES},
    "fields": {"status": FIELD_STATUSES},
    "checks": {"status": CHECK_STATUSES},
    "anomalies": {"status": ANOMALY_STATUSES, "type": ANOMALY_TYPES},
    "global_tags": {"type": TAG_TYPES},
}

_REQUIRED_STRINGS: dict[str, tuple[str, ...]] = {
    "integrations": ("type",),
    "global_tags": ("name", "type"),
    "datastores": ("name", "store_type", "type"),
    "containers": ("name", "container_type"),
    "fields": ("name",),
    "checks": ("rule_type",),
    "anomalies": (),
}

#: kind -> (key holding the parent id, kind of the parent)
PARENTS: dict[str, tuple[str, str]] = {
    "containers": ("datastore_id", "datastores"),
    "fields": ("container_id", "containers"),
    "checks": ("container_id", "containers"),
    "anomalies": ("container_id", "containers"),
}

#: exists(kind, key) -> bool; kind is a record kind, key an id (or a tag name for global_tags)
Exists = Callable[[str, Any], bool]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_record(kind: str, rec: Any, where: str, exists: Exists) -> None:
    """Raise WorldError (`<where>.<key>: problem`) when `rec` is not a usable `kind` record."""
    if not isinstance(rec, dict):
        raise WorldError(f"{where}: must be an object")
    if not is_int(rec.get("id")):
        raise WorldError(f"{where}.id: must be an integer")
    for key in _REQUIRED_STRINGS[kind]:
        if not isinstance(rec.get(key), str) or not rec[key]:
            raise WorldError(f"{where}.{key}: required, must be a non-empty string")
    for key, allowed in _ENUMS.get(kind, {}).items():
        if key in rec and rec[key] is not None and rec[key] not in allowed:
            raise WorldError(f"{where}.{key}: {rec[key]!r} is not one of {', '.join(allowed)}")
    _check_parent(kind, rec, where, exists)
    _check_tags(rec, where, exists)
    _check_quality_score(rec, where)
    if kind == "global_tags":
        _check_global_tag(rec, where, exists)
    elif kind == "checks":
        _check_string_list(rec, "field_names", where)
    elif kind == "anomalies":
        _check_anomaly_checks(rec, where, exists)


def _check_parent(kind: str, rec: dict[str, Any], where: str, exists: Exists) -> None:
    if kind not in PARENTS:
        return
    key, parent_kind = PARENTS[kind]
    value = rec.get(key)
    if not is_int(value):
        raise WorldError(f"{where}.{key}: required, must be an integer")
    if not exists(parent_kind, value):
        raise WorldError(f"{where}.{key}: {parent_kind[:-1]} {value} does not exist")


def _check_string_list(rec: dict[str, Any], key: str, where: str) -> None:
    value = rec.get(key)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WorldError(f"{where}.{key}: must be a list of strings")


def _check_tags(rec: dict[str, Any], where: str, exists: Exists) -> None:
    tags = rec.get("tags")
    if not tags:
        return
    if not isinstance(tags, list):
        raise WorldError(f"{where}.tags: must be a list of strings")
    for i, name in enumerate(tags):
        if not isinstance(name, str):
            raise WorldError(f"{where}.tags[{i}]: must be a string")
        if not exists("global_tags", name):
            raise WorldError(f"{where}.tags[{i}]: global tag {name!r} does not exist")


def _check_quality_score(rec: dict[str, Any], where: str) -> None:
    score = rec.get("quality_score")
    if score is not None and not isinstance(score, dict):
        raise WorldError(f"{where}.quality_score: must be an object or null")


def _check_global_tag(rec: dict[str, Any], where: str, exists: Exists) -> None:
    weight = rec.get("weight_modifier", 0)
    if weight is not None and (not is_int(weight) or not -10 <= weight <= 10):
        raise WorldError(f"{where}.weight_modifier: must be an integer from -10 to 10")
    integration_id = rec.get("integration_id")
    if rec["type"] == "external" and integration_id is None:
        raise WorldError(f"{where}.integration_id: required when type is 'external'")
    if integration_id is not None and not (is_int(integration_id) and exists("integrations", integration_id)):
        raise WorldError(f"{where}.integration_id: integration {integration_id!r} does not exist")


def _check_anomaly_checks(rec: dict[str, Any], where: str, exists: Exists) -> None:
    check_ids = rec.get("check_ids")
    if check_ids is None:
        return
    if not isinstance(check_ids, list) or not all(is_int(c) for c in check_ids):
        raise WorldError(f"{where}.check_ids: must be a list of integers")
    for i, check_id in enumerate(check_ids):
        if not exists("checks", check_id):
            raise WorldError(f"{where}.check_ids[{i}]: check {check_id} does not exist")
