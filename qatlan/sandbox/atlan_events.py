"""Atlan webhook events for a change to one stored entity (the shape of reference events.md).

`events_for(store, old, new, now_ms)` compares an entity before and after a write (None for
"did not exist" / "purged") and returns the envelopes Atlan would POST: one per asset and per
kind of change (a write that adds a tag and edits a description gives a CLASSIFICATION_ADD and
an ENTITY_UPDATE). Tag names are the hashed typedef names, as in real events.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VALIDATION_BODY", "envelope", "events_for", "operations"]

Entity = dict[str, Any]

VALIDATION_BODY = {"atlan-webhook": "Hello, humans of data! It worked. Excited to see what you build!"}


def operations(old: Entity | None, new: Entity | None) -> list[tuple[str, Any]]:
    """(operationType, mutatedDetails or None) for one entity's change; [] when nothing changed."""
    if new is None:
        return [] if old is None else [("ENTITY_DELETE", None)]
    if old is None:
        return [("ENTITY_CREATE", None)]
    if old["status"] == "ACTIVE" and new["status"] == "DELETED":
        return [("ENTITY_DELETE", None)]
    ops: list[tuple[str, Any]] = []
    before, after = _tag_names(old), _tag_names(new)
    added = [c for c in new["classifications"] if c["typeName"] in after - before]
    removed = [c for c in old["classifications"] if c["typeName"] in before - after]
    if added:
        ops.append(("CLASSIFICATION_ADD", [_tag_detail(c, new["guid"]) for c in added]))
    if removed:
        ops.append(("CLASSIFICATION_DELETE", [_tag_detail(c, new["guid"]) for c in removed]))
    if old["businessAttributes"] != new["businessAttributes"]:
        ops.append(("BUSINESS_ATTRIBUTE_UPDATE", None))
    # UNCONFIRMED: an asset touched only through its relationships (a Link attached, a restore
    # from DELETED) is reported as ENTITY_UPDATE, like an attribute or announcement change
    other = old["attributes"] != new["attributes"] or old["status"] != new["status"]
    if other or (not ops and old != new):
        ops.append(("ENTITY_UPDATE", None))
    return ops


def events_for(store: Any, old: Entity | None, new: Entity | None, now_ms: int) -> list[dict[str, Any]]:
    """The envelopes for one entity's change (see the module docstring)."""
    out = []
    for operation, details in operations(old, new):
        current = new if new is not None else {**(old or {}), "status": "DELETED"}
        if operation == "BUSINESS_ATTRIBUTE_UPDATE":
            details = _business_details(store, (old or {}).get("businessAttributes", {}), current["businessAttributes"])
        out.append(envelope(operation, _notified_entity(store, current), details, now_ms))
    return out


def envelope(operation: str, entity: dict[str, Any], details: Any, now_ms: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "ENTITY_NOTIFICATION_V2", "operationType": operation, "eventTime": now_ms, "entity": entity,
    }
    if details is not None:
        message["mutatedDetails"] = details
    return {
        "source": {}, "version": {"version": "1.0.0", "versionParts": [1]},
        "msgCompressionKind": "NONE", "msgSplitIdx": 1, "msgSplitCount": 1,
        "msgSourceIP": "127.0.0.1", "msgCreatedBy": "", "msgCreationTime": now_ms, "spooled": False,
        "message": message,
    }


def _tag_names(ent: Entity) -> set[str]:
    return {c["typeName"] for c in ent["classifications"]}


def _tag_detail(tag: dict[str, Any], guid: str) -> dict[str, Any]:
    detail = {"typeName": tag["typeName"], "entityGuid": tag.get("entityGuid") or guid}
    for flag in ("propagate", "removePropagationsOnEntityDelete", "restrictPropagationThroughLineage"):
        if flag in tag:
            detail[flag] = tag[flag]
    return detail


def _business_details(store: Any, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{set display name: {attribute display name: new value (None when removed)}} for what changed."""
    out: dict[str, Any] = {}
    for set_name in sorted(set(before) | set(after)):
        old, new = before.get(set_name, {}), after.get(set_name, {})
        changed = {a: new.get(a) for a in sorted(set(old) | set(new)) if old.get(a) != new.get(a)}
        if not changed:
            continue
        bm = store.bm_def(set_name) or {}
        labels = {a.get("name"): a.get("displayName") or a.get("name") for a in bm.get("attributeDefs") or []}
        out[bm.get("displayName") or set_name] = {labels.get(a, a): v for a, v in changed.items()}
    return out


def _notified_entity(store: Any, ent: Entity) -> dict[str, Any]:
    attributes = dict(ent["attributes"])
    if ent["typeName"] == "Column" and not (attributes.get("tableQualifiedName") or attributes.get("viewQualifiedName")):
        qn = attributes.get("qualifiedName", "")
        if "/" in qn:
            attributes["tableQualifiedName"] = qn.rsplit("/", 1)[0]
    ref = attributes.get("asset")
    if isinstance(ref, dict) and isinstance(ref.get("guid"), str):
        # UNCONFIRMED: a notification carries relationship references as Atlas object ids
        # (typeName, guid, uniqueAttributes.qualifiedName)
        target = store.get(ref["guid"])
        if target is not None:
            attributes["asset"] = {"typeName": target["typeName"], "guid": target["guid"],
                                   "uniqueAttributes": {"qualifiedName": target["attributes"]["qualifiedName"]}}
    out = {
        "typeName": ent["typeName"], "guid": ent["guid"], "status": ent["status"], "attributes": attributes,
        "classificationNames": sorted(_tag_names(ent)),
        "classifications": [dict(c) for c in ent["classifications"]],
    }
    for key in ("createTime", "updateTime", "createdBy", "updatedBy"):
        if key in ent:
            out[key] = ent[key]
    return out
