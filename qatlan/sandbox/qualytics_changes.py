"""Admin changes to the Qualytics side of a world (`POST /_sandbox/changes`, docs/sandbox.md).

    {"side": "qualytics", "kind": K, "op": "add", "record": {...}}
    {"side": "qualytics", "kind": K, "op": "update", "id": N, "set": {...}}
    {"side": "qualytics", "kind": K, "op": "delete", "id": N}

K is one of datastores, containers, fields, checks, anomalies, global_tags, integrations;
global tags are addressed by `name` instead of `id`. An added record without `id` gets the next
free one, and without `created` gets the store clock's now. Deletes cascade as the real API's
do: a datastore takes its containers, a container its fields, checks and anomalies, a check
leaves the `check_ids` of its anomalies, a global tag is detached from every asset, and an
integration takes its external tags.
"""

from __future__ import annotations

from typing import Any

from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.qualytics_store import QualyticsStore

__all__ = ["apply_change"]


def apply_change(store: QualyticsStore, change: Any) -> dict[str, Any]:
    """Apply one change to `store`; returns `{side, kind, op, id|name, record}`."""
    if not isinstance(change, dict):
        raise WorldError("a change must be an object")
    if change.get("side", "qualytics") != "qualytics":
        raise WorldError("side: must be 'qualytics' for the Qualytics store")
    kind, op = change.get("kind"), change.get("op")
    store._require_kind(kind)
    key_name = "name" if kind == "global_tags" else "id"
    result: dict[str, Any] = {"side": "qualytics", "kind": kind, "op": op}
    if op == "add":
        record = store.add(kind, change.get("record"))
    elif op in ("update", "delete"):
        key = change.get(key_name)
        if key is None:
            raise WorldError(f"{key_name}: required for op {op!r} on {kind}")
        if op == "update":
            values = change.get("set")
            if not isinstance(values, dict) or not values:
                raise WorldError("set: required, must be a non-empty object")
            record = store.update(kind, key, values)
        else:
            record = store.delete(kind, key)
    else:
        raise WorldError(f"op: {op!r} is not one of add, update, delete")
    result[key_name] = record[key_name]
    result["record"] = record
    return result
