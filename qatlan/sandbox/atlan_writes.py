"""Writes to single entities of the sandbox Atlan: tags, custom metadata, admin changes.

The helpers here are shared by the bulk upsert (`atlan_bulk`) and the per-entity endpoints
(reference §4.4, §5.3). Every function expects the caller to hold the world lock.
"""

from __future__ import annotations

from typing import Any

from qatlan.sandbox.atlan_store import (
    CLASSIFICATION_FLAGS,
    AtlanStore,
    AtlasApiError,
    copy_entity,
    guid_not_found,
    invalid_parameters,
    normalize_classification,
    normalize_entity,
    not_authorized,
)
from qatlan.sandbox.errors import WorldError

__all__ = [
    "add_classifications",
    "apply_admin_change",
    "apply_change",
    "check_business_attributes",
    "check_tags",
    "commit_if_changed",
    "delete_classification",
    "merge_business_attributes",
    "purge",
    "remove_business_attributes",
    "remove_tag",
    "replace_tags",
    "resolve_display_names",
    "same_content",
    "set_business_metadata",
    "update_classifications",
    "upsert_tag",
    "writable",
]

Entity = dict[str, Any]
Persona = dict[str, Any]


# ---- common ------------------------------------------------------------------------------

def writable(store: AtlanStore, persona: Persona, guid: str, action: str) -> Entity:
    """The stored entity, if it exists and the persona may update it."""
    ent = store.get(guid)
    if ent is None:
        raise guid_not_found(guid)
    if not store.allowed(persona, "update", ent):
        raise not_authorized(store.user_of(persona), f"{action}: guid={guid}")
    return ent


def same_content(a: Entity, b: Entity) -> bool:
    """Equal as far as a write is concerned (tag order does not count)."""
    def tags(e: Entity) -> list:
        return sorted((repr(sorted(c.items())) for c in e["classifications"]))
    return (
        a["typeName"] == b["typeName"]
        and a["status"] == b["status"]
        and a["attributes"] == b["attributes"]
        and a["businessAttributes"] == b["businessAttributes"]
        and tags(a) == tags(b)
    )


def commit_if_changed(store: AtlanStore, persona: Persona, old: Entity, new: Entity) -> bool:
    if same_content(old, new):
        return False
    new["updateTime"] = store.now_ms()
    new["updatedBy"] = store.user_of(persona)
    store.put(new)
    store.bump()
    return True


def purge(store: AtlanStore, guid: str) -> list[Entity]:
    """Remove an entity for good, with the Links attached to it."""
    removed = [store.remove(link["guid"]) for link in list(store.links_of(guid))]
    return [store.remove(guid), *removed]


# ---- tags --------------------------------------------------------------------------------

def check_tags(store: AtlanStore, items: Any, where: str) -> list[dict[str, Any]]:
    """Validate a list of classification objects from a request."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(c, dict) and isinstance(c.get("typeName"), str) for c in items):
        raise invalid_parameters(f"{where} must be a list of classifications with a typeName")
    for c in items:
        # UNCONFIRMED: the code for an unknown tag in a write (Atlas UNKNOWN_CLASSIFICATION)
        if store.classification_def(c["typeName"]) is None:
            raise AtlasApiError(400, "ATLAS-400-00-046", f"{c['typeName']}: Unknown/invalid classification")
    return items


def _direct_index(ent: Entity, name: str) -> int | None:
    for i, c in enumerate(ent["classifications"]):
        if c["typeName"] == name and "entityGuid" not in c:
            return i
    return None


def upsert_tag(ent: Entity, raw: dict[str, Any]) -> None:
    """Attach a direct tag, or update the flags of the one already attached."""
    i = _direct_index(ent, raw["typeName"])
    if i is None:
        ent["classifications"].append(normalize_classification({**raw, "entityGuid": None}, ent["guid"]))
        return
    merged = dict(ent["classifications"][i])
    for flag in CLASSIFICATION_FLAGS:
        if raw.get(flag) is not None:
            merged[flag] = bool(raw[flag])
    for key in ("attributes", "validityPeriods"):
        if raw.get(key) is not None:
            merged[key] = raw[key]
    ent["classifications"][i] = merged


def remove_tag(ent: Entity, name: str) -> bool:
    i = _direct_index(ent, name)
    if i is None:
        return False
    del ent["classifications"][i]
    return True


def replace_tags(ent: Entity, items: list[dict[str, Any]]) -> None:
    """Direct tags become exactly `items`; propagated tags stay."""
    propagated = [c for c in ent["classifications"] if "entityGuid" in c]
    direct: dict[str, dict[str, Any]] = {}
    for raw in items:
        direct[raw["typeName"]] = normalize_classification({**raw, "entityGuid": None}, ent["guid"])
    ent["classifications"] = list(direct.values()) + propagated


# ---- custom metadata ---------------------------------------------------------------------

def check_business_attributes(store: AtlanStore, incoming: Any) -> dict[str, Any]:
    if not isinstance(incoming, dict):
        raise invalid_parameters("businessAttributes must be an object of custom metadata sets")
    for set_name, attrs in incoming.items():
        bm = store.bm_def(set_name)
        # UNCONFIRMED: codes for an unknown set (ATLAS-400-00-095) and attribute (ATLAS-400-00-023)
        if bm is None:
            known = sorted(d["name"] for d in store.typedefs["businessMetadataDefs"])
            raise AtlasApiError(
                400, "ATLAS-400-00-095",
                f"Invalid business-metadata: {set_name} specified for entity, applicable business-metadata: {known}",
            )
        if attrs is None:
            continue
        if not isinstance(attrs, dict):
            raise invalid_parameters(f"business-metadata {set_name} must be an object of attributes")
        names = {a.get("name") for a in bm.get("attributeDefs") or []}
        for attr in attrs:
            if attr not in names:
                raise AtlasApiError(400, "ATLAS-400-00-023", f"Attribute {attr} not found for type {set_name}")
    return incoming


def merge_business_attributes(current: dict[str, Any], incoming: dict[str, Any], *, overwrite: bool) -> dict[str, Any]:
    """Merge (null removes an attribute, an empty set clears it) or overwrite everything."""
    if overwrite:
        out = {s: {a: v for a, v in (attrs or {}).items() if v is not None} for s, attrs in incoming.items()}
        return {s: attrs for s, attrs in out.items() if attrs}
    out = {s: dict(attrs) for s, attrs in current.items()}
    for set_name, attrs in incoming.items():
        merged = {} if not attrs else dict(out.get(set_name, {}))
        for attr, value in (attrs or {}).items():
            if value is None:
                merged.pop(attr, None)
            else:
                merged[attr] = value
        if merged:
            out[set_name] = merged
        else:
            out.pop(set_name, None)
    return out


def remove_business_attributes(current: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    out = {s: dict(attrs) for s, attrs in current.items()}
    for set_name, attrs in incoming.items():
        kept = {a: v for a, v in out.get(set_name, {}).items() if a not in (attrs or {})}
        if kept:
            out[set_name] = kept
        else:
            out.pop(set_name, None)
    return out


def resolve_display_names(store: AtlanStore, incoming: Any) -> dict[str, Any]:
    """`{"Set display name": {"Attr display name": v}}` → hashed names."""
    if not isinstance(incoming, dict):
        raise invalid_parameters("the body must be an object of custom metadata sets")
    sets = {d.get("displayName"): d for d in store.typedefs["businessMetadataDefs"]}
    out: dict[str, Any] = {}
    for set_label, attrs in incoming.items():
        bm = sets.get(set_label)
        if bm is None:
            raise AtlasApiError(400, "ATLAS-400-00-095", f"Invalid business-metadata: {set_label} specified for entity")
        by_label = {a.get("displayName"): a["name"] for a in bm.get("attributeDefs") or []}
        resolved: dict[str, Any] = {}
        for label, value in (attrs or {}).items():
            if label not in by_label:
                raise AtlasApiError(400, "ATLAS-400-00-023", f"Attribute {label} not found for type {set_label}")
            resolved[by_label[label]] = value
        out[bm["name"]] = resolved
    return out


def set_business_metadata(
    store: AtlanStore, persona: Persona, guid: str, incoming: Any, *, overwrite: bool = False,
    set_name: str | None = None, remove: bool = False,
) -> None:
    """The custom metadata endpoints of reference §5.3 (one set, all sets, or removal)."""
    ent = writable(store, persona, guid, "update business-metadata")
    if set_name is not None:
        if not isinstance(incoming, dict):
            raise invalid_parameters("the body must be an object of custom metadata attributes")
        if not incoming and not remove:
            return
        incoming = {set_name: incoming}
    check_business_attributes(store, incoming)
    new = copy_entity(ent)
    if remove:
        new["businessAttributes"] = remove_business_attributes(ent["businessAttributes"], incoming)
    else:
        new["businessAttributes"] = merge_business_attributes(ent["businessAttributes"], incoming, overwrite=overwrite)
    commit_if_changed(store, persona, ent, new)


# ---- classification endpoints (§4.4) -----------------------------------------------------

def add_classifications(store: AtlanStore, persona: Persona, guid: str, items: Any) -> None:
    ent = writable(store, persona, guid, "add classification")
    new = copy_entity(ent)
    for raw in check_tags(store, items, "classifications"):
        if _direct_index(new, raw["typeName"]) is not None:
            raise invalid_parameters(f"entity {guid} already has classification {raw['typeName']}")
        upsert_tag(new, raw)
    commit_if_changed(store, persona, ent, new)


def update_classifications(store: AtlanStore, persona: Persona, guid: str, items: Any) -> None:
    ent = writable(store, persona, guid, "update classification")
    new = copy_entity(ent)
    for raw in check_tags(store, items, "classifications"):
        if _direct_index(new, raw["typeName"]) is None:
            raise AtlasApiError(400, "ATLAS-400-00-06D", f"Classification {raw['typeName']} is not associated with entity")
        upsert_tag(new, raw)
    commit_if_changed(store, persona, ent, new)


def delete_classification(store: AtlanStore, persona: Persona, guid: str, name: str, associated: str | None) -> None:
    ent = writable(store, persona, guid, "remove classification")
    if associated and associated != guid:
        raise AtlasApiError(400, "ATLAS-400-00-06C", f"Delete of classification {name} is not allowed from propagated entity")
    new = copy_entity(ent)
    if not remove_tag(new, name):
        raise AtlasApiError(400, "ATLAS-400-00-06D", f"Classification {name} is not associated with entity")
    commit_if_changed(store, persona, ent, new)


# ---- admin changes -----------------------------------------------------------------------

def apply_change(store: AtlanStore, change: Any) -> dict[str, Any]:
    """Apply one admin change (`update`, `add` or `delete`); raises WorldError when bad."""
    guid = apply_admin_change(store, change)
    store.bump()
    return {"side": "atlan", "op": change["op"], "guid": guid}


def apply_admin_change(store: AtlanStore, change: Any) -> str:
    """One `/_sandbox/` change on the Atlan side; returns the guid it touched."""
    if not isinstance(change, dict):
        raise WorldError("a change is a JSON object")
    handler = {"update": _admin_update, "add": _admin_add, "delete": _admin_delete}.get(change.get("op"))
    if handler is None:
        raise WorldError(f"op: an Atlan change is 'update', 'add' or 'delete', not {change.get('op')!r}")
    return handler(store, change)


def _admin_entity(store: AtlanStore, change: dict[str, Any]) -> Entity:
    guid = change.get("guid")
    ent = store.get(guid) if isinstance(guid, str) else None
    if ent is None:
        raise WorldError(f"guid: no Atlan entity with guid {guid!r}")
    return ent


def _admin_update(store: AtlanStore, change: dict[str, Any]) -> str:
    ent = _admin_entity(store, change)
    sets = change.get("set")
    if not isinstance(sets, dict) or not sets:
        raise WorldError("set: an object with attributes, classifications, businessAttributes or status")
    unknown = sorted(set(sets) - {"attributes", "classifications", "businessAttributes", "status"})
    if unknown:
        raise WorldError(f"set: unknown keys {unknown}")
    new = copy_entity(ent)
    if "attributes" in sets:
        new["attributes"] = _merged_attributes(new["attributes"], sets["attributes"])
    if "classifications" in sets:
        new["classifications"] = _world_tags(store, sets["classifications"], ent["guid"])
    if "businessAttributes" in sets:
        new["businessAttributes"] = _world_business_attributes(store, sets["businessAttributes"])
    if "status" in sets:
        if sets["status"] not in ("ACTIVE", "DELETED"):
            raise WorldError(f"set.status: must be ACTIVE or DELETED, not {sets['status']!r}")
        new["status"] = sets["status"]
    new["updateTime"] = store.now_ms()
    store.put(new)
    return ent["guid"]


def _merged_attributes(current: dict[str, Any], changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict):
        raise WorldError("set.attributes: an object is required")
    out = dict(current)
    for key, value in changes.items():
        if value is None:
            if key in ("qualifiedName", "name"):
                raise WorldError(f"set.attributes.{key}: cannot be cleared")
            out.pop(key, None)
        else:
            out[key] = value
    if not isinstance(out.get("qualifiedName"), str) or not isinstance(out.get("name"), str):
        raise WorldError("set.attributes: qualifiedName and name must be strings")
    return out


def _world_tags(store: AtlanStore, items: Any, guid: str) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise WorldError("set.classifications: a list is required")
    out = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict) or not isinstance(raw.get("typeName"), str):
            raise WorldError(f"set.classifications[{i}]: an object with a typeName is required")
        if store.classification_def(raw["typeName"]) is None:
            raise WorldError(f"set.classifications[{i}].typeName: no tag {raw['typeName']!r} in the typedefs")
        out.append(normalize_classification(raw, guid))
    return out


def _world_business_attributes(store: AtlanStore, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise WorldError("set.businessAttributes: an object of objects is required")
    for set_name in value:
        if store.bm_def(set_name) is None:
            raise WorldError(f"set.businessAttributes: no custom metadata set {set_name!r} in the typedefs")
    return {k: dict(v) for k, v in value.items() if v}


def _admin_add(store: AtlanStore, change: dict[str, Any]) -> str:
    raw = change.get("entity")
    if not isinstance(raw, dict):
        raise WorldError("entity: an object is required")
    raw = dict(raw)
    raw.setdefault("guid", store.new_guid())
    ent = normalize_entity(raw, "entity", store.now_ms())
    if store.get(ent["guid"]) is not None:
        raise WorldError(f"entity.guid: {ent['guid']} already exists")
    ent["classifications"] = _world_tags(store, raw.get("classifications") or [], ent["guid"])
    ent["businessAttributes"] = _world_business_attributes(store, raw.get("businessAttributes") or {})
    ref = ent["attributes"].get("asset")
    if isinstance(ref, dict) and not ref.get("guid"):
        target = store.find(ref.get("typeName", ""), (ref.get("uniqueAttributes") or {}).get("qualifiedName", ""))
        if target is None:
            raise WorldError("entity.attributes.asset: no such asset")
        ent["attributes"]["asset"] = {"typeName": target["typeName"], "guid": target["guid"]}
    store.put(ent)
    return ent["guid"]


def _admin_delete(store: AtlanStore, change: dict[str, Any]) -> str:
    ent = _admin_entity(store, change)
    purge(store, ent["guid"])
    return ent["guid"]
