"""Typedefs of the sandbox Atlan: tag and custom-metadata definitions (reference §4.1, §5.1-5.2).

New tag and custom-metadata defs, and their new attributes, get server-generated 22-character
hashed names (deterministic per store, so tests are stable). displayName is unique per
category unless `allowDuplicateDisplayName=true`. Changing typedefs needs `manage_typedefs`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from qatlan.sandbox.atlan_store import TYPEDEF_KEYS, AtlanStore, AtlasApiError, bad_request, not_authorized

__all__ = ["create_typedefs", "delete_typedef", "get_typedef", "get_typedefs", "update_typedefs"]

Def = dict[str, Any]
CATEGORIES = {
    "enumDefs": "ENUM", "structDefs": "STRUCT", "classificationDefs": "CLASSIFICATION",
    "entityDefs": "ENTITY", "relationshipDefs": "RELATIONSHIP", "businessMetadataDefs": "BUSINESS_METADATA",
}
_HASHED = ("classificationDefs", "businessMetadataDefs")
_NAMESPACE = uuid.UUID("6f1c2a52-3d0e-4b8e-9a51-7c1f0e0a7a11")


def _struct_attr(name: str, type_name: str) -> Def:
    return {
        "name": name, "typeName": type_name, "isOptional": True, "cardinality": "SINGLE",
        "valuesMinCount": 0, "valuesMaxCount": 1, "isUnique": False, "isIndexable": False,
        "includeInNotification": False,
    }


def _builtin_struct(name: str, description: str, attrs: list[tuple[str, str]]) -> Def:
    return {
        "category": "STRUCT", "guid": str(uuid.uuid5(_NAMESPACE, name)), "name": name,
        "description": description, "typeVersion": "1.0", "serviceType": "atlan",
        "attributeDefs": [_struct_attr(n, t) for n, t in attrs],
        "createdBy": "service-account-atlan-argo", "updatedBy": "service-account-atlan-argo",
        "createTime": 1_650_000_000_000, "updateTime": 1_650_000_000_000, "version": 1,
    }


#: always served (pyatlan treats an empty structDefs as an expired token, reference §4.1)
BUILTIN_STRUCTS = [
    _builtin_struct("SourceTagAttachment", "Source tag attached to an asset", [
        ("sourceTagName", "string"), ("sourceTagQualifiedName", "string"), ("sourceTagGuid", "string"),
        ("sourceTagConnectorName", "string"), ("sourceTagValue", "array<SourceTagAttachmentValue>"),
        ("isSourceTagSynced", "boolean"), ("sourceTagSyncTimestamp", "long"), ("sourceTagSyncError", "string"),
    ]),
    _builtin_struct("SourceTagAttachmentValue", "Key/value of a source tag attachment", [
        ("tagAttachmentKey", "string"), ("tagAttachmentValue", "string"),
    ]),
]


# ---- reading -----------------------------------------------------------------------------

def _served(key: str, d: Def) -> Def:
    """A stored def with the keys the server always fills in."""
    base: Def = {
        "category": CATEGORIES[key], "guid": str(uuid.uuid5(_NAMESPACE, str(d.get("name")))),
        "typeVersion": "1.0", "serviceType": "atlan", "options": {}, "attributeDefs": [], "version": 1,
    }
    if key == "classificationDefs":
        base.update(superTypes=[], subTypes=[], entityTypes=[])
    return {**base, **d}


def _defs(store: AtlanStore, key: str) -> list[Def]:
    out = [_served(key, d) for d in store.typedefs[key]]
    if key == "structDefs":
        names = {d.get("name") for d in out}
        out += [dict(d) for d in BUILTIN_STRUCTS if d["name"] not in names]
    return out


def get_typedefs(store: AtlanStore, types: list[str]) -> dict[str, list[Def]]:
    """GET /types/typedefs: repeated, case-insensitive `type` filters; all six arrays."""
    wanted = {t.strip().upper() for t in types if t.strip()}
    return {k: _defs(store, k) if not wanted or CATEGORIES[k] in wanted else [] for k in TYPEDEF_KEYS}


def get_typedef(store: AtlanStore, name: str) -> Def:
    found = store.typedef(name)
    if found is not None:
        return _served(*found)
    for d in BUILTIN_STRUCTS:
        if d["name"] == name:
            return dict(d)
    raise type_not_found(name)


def type_not_found(name: str) -> AtlasApiError:
    return AtlasApiError(404, "ATLAS-404-00-001", f"Given typename {name} was invalid")


# ---- writing -----------------------------------------------------------------------------

def _require_manage(store: AtlanStore, persona: dict[str, Any], action: str) -> None:
    if not persona.get("manage_typedefs"):
        raise not_authorized(store.user_of(persona), f"{action} type-def")


def _options(raw: Any) -> dict[str, str]:
    """Typedef option values are strings server-side (reference §5.1)."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = json.dumps(value)
    return out


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("the body must be an AtlasTypesDef object")
    for key in ("entityDefs", "relationshipDefs"):
        if body.get(key):
            raise bad_request(f"the sandbox does not create or change {key}")
    return body


class _Writer:
    """Stages typedef changes for one request; `commit()` writes them all."""

    def __init__(self, store: AtlanStore, persona: dict[str, Any], allow_duplicates: bool):
        self.store, self.allow_duplicates = store, allow_duplicates
        self.user, self.now = store.user_of(persona), store.now_ms()
        self.staged: list[tuple[str, Def]] = []
        self.taken: set[str] = set()

    def check_display_name(self, key: str, raw: Def, display: str, own_name: str | None = None) -> None:
        if self.allow_duplicates or raw.get("skipDisplayNameUniquenessCheck") is True:
            return
        others = [d for d in self.store.typedefs[key] if d.get("name") != own_name]
        others += [d for k, d in self.staged if k == key and d.get("name") != own_name]
        if any(d.get("displayName") == display for d in others):
            raise AtlasApiError(409, "ATLAS-409-00-012", f"Given type {display} already exists")

    def new_name(self) -> str:
        name = self.store.new_hashed_name(self.taken)
        self.taken.add(name)
        return name

    def attribute(self, raw: Any, owner: str, name: str | None = None) -> Def:
        if not isinstance(raw, dict) or not raw.get("displayName"):
            raise AtlasApiError(400, "ATLAS-400-00-09F", f'displayName is required for typedef "{owner}" attribute')
        out = {
            "name": name or self.new_name(), "displayName": raw["displayName"],
            "typeName": raw.get("typeName") or "string", "cardinality": raw.get("cardinality") or "SINGLE",
            "isOptional": raw.get("isOptional", True), "isUnique": bool(raw.get("isUnique", False)),
            "isIndexable": raw.get("isIndexable", True), "includeInNotification": bool(raw.get("includeInNotification", False)),
            "valuesMinCount": int(raw.get("valuesMinCount") or 0), "valuesMaxCount": int(raw.get("valuesMaxCount") or 1),
            "options": _options(raw.get("options")),
        }
        if raw.get("description") is not None:
            out["description"] = raw["description"]
        return out

    def attributes(self, raws: Any, owner: str, existing: list[Def]) -> list[Def]:
        """Existing attributes updated in place, new ones (unknown names) named and appended."""
        by_name = {a["name"]: a for a in existing}
        out = {a["name"]: a for a in existing}
        labels = {a.get("displayName") for a in existing if a.get("options", {}).get("isArchived") != "true"}
        for raw in raws or []:
            name = raw.get("name") if isinstance(raw, dict) else None
            if name in by_name:
                out[name] = {**by_name[name], **self.attribute(raw, owner, name)}
                continue
            attr = self.attribute(raw, owner)
            if attr["displayName"] in labels:
                raise AtlasApiError(409, "ATLAS-409-00-013", f"Given attributeDef {attr['displayName']} for type {owner} already exists")
            labels.add(attr["displayName"])
            out[attr["name"]] = attr
        return list(out.values())

    def new_def(self, key: str, raw: Any) -> Def:
        display = raw.get("displayName") if isinstance(raw, dict) else None
        if not display:
            if key == "classificationDefs":
                raise AtlasApiError(400, "ATLAS-400-00-09E", "Classification displayName is empty/null")
            raise AtlasApiError(400, "ATLAS-400-00-101", "displayName is required for typedef")
        self.check_display_name(key, raw, display)
        name = self.new_name()
        d: Def = {
            "category": CATEGORIES[key], "guid": str(uuid.uuid5(_NAMESPACE, name)), "name": name,
            "displayName": display, "typeVersion": "1.0", "serviceType": raw.get("serviceType") or "atlan",
            "options": _options(raw.get("options")), "attributeDefs": self.attributes(raw.get("attributeDefs"), display, []),
            "createdBy": self.user, "updatedBy": self.user, "createTime": self.now, "updateTime": self.now, "version": 1,
        }
        if raw.get("description") is not None:
            d["description"] = raw["description"]
        if key == "classificationDefs":
            d.update(superTypes=list(raw.get("superTypes") or []), subTypes=[], entityTypes=list(raw.get("entityTypes") or []))
        return d

    def plain_def(self, key: str, raw: Any) -> Def:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name:
            raise AtlasApiError(400, "ATLAS-400-00-011", f"Invalid type definition {raw!r}")
        if self.store.typedef(name) or any(d["name"] == name for _, d in self.staged):
            raise AtlasApiError(409, "ATLAS-409-00-001", f"Given type {name} already exists")
        return {**raw, "category": CATEGORIES[key], "createdBy": self.user, "createTime": self.now, "version": 1}

    def updated_def(self, key: str, raw: Any) -> Def:
        name = raw.get("name") if isinstance(raw, dict) else None
        current = next((d for d in self.store.typedefs[key] if d.get("name") == name), None)
        if current is None:
            raise type_not_found(str(name))
        new = dict(current)
        display = raw.get("displayName") or current.get("displayName")
        if display != current.get("displayName"):
            self.check_display_name(key, raw, display, own_name=name)
        new["displayName"] = display
        for field in ("description", "superTypes", "entityTypes"):
            if raw.get(field) is not None:
                new[field] = raw[field]
        if "options" in raw:
            new["options"] = _options(raw["options"])
        new["attributeDefs"] = self.attributes(raw.get("attributeDefs"), display, list(current.get("attributeDefs") or []))
        new.update(updatedBy=self.user, updateTime=self.now, version=int(current.get("version") or 1) + 1)
        return new

    def commit(self, replace: bool) -> dict[str, list[Def]]:
        out: dict[str, list[Def]] = {k: [] for k in TYPEDEF_KEYS}
        for key, d in self.staged:
            defs = self.store.typedefs[key]
            at = next((i for i, old in enumerate(defs) if old.get("name") == d["name"]), None) if replace else None
            if at is None:
                defs.append(d)
            else:
                defs[at] = d
            self.store.note_typedef_key(key)
            out[key].append(_served(key, d))
        self.store.reindex_typedefs()
        self.store.bump()
        return out


def create_typedefs(store: AtlanStore, persona: dict[str, Any], body: Any, allow_duplicates: bool) -> dict[str, list[Def]]:
    """POST /types/typedefs."""
    _require_manage(store, persona, "create")
    body, writer = _body(body), _Writer(store, persona, allow_duplicates)
    for key in TYPEDEF_KEYS:
        for raw in body.get(key) or []:
            d = writer.new_def(key, raw) if key in _HASHED else writer.plain_def(key, raw)
            writer.staged.append((key, d))
    return writer.commit(replace=False)


def update_typedefs(store: AtlanStore, persona: dict[str, Any], body: Any, allow_duplicates: bool) -> dict[str, list[Def]]:
    """PUT /types/typedefs: tag and custom-metadata defs, addressed by their hashed name."""
    _require_manage(store, persona, "update")
    body, writer = _body(body), _Writer(store, persona, allow_duplicates)
    for key in ("enumDefs", "structDefs"):
        if body.get(key):
            raise bad_request(f"the sandbox does not update {key}")
    for key in _HASHED:
        for raw in body.get(key) or []:
            writer.staged.append((key, writer.updated_def(key, raw)))
    return writer.commit(replace=True)


def delete_typedef(store: AtlanStore, persona: dict[str, Any], name: str) -> None:
    """DELETE /types/typedef/name/{name}; refused (409) while entities still use it."""
    _require_manage(store, persona, "delete")
    found = store.typedef(name)
    if found is None:
        raise type_not_found(name)
    key, d = found
    for ent in store.entities.values():
        used = any(c["typeName"] == name for c in ent["classifications"]) or name in ent["businessAttributes"]
        if used:
            raise AtlasApiError(409, "ATLAS-409-00-002", f"Given type {name} has references")
    store.typedefs[key] = [x for x in store.typedefs[key] if x is not d]
    store.reindex_typedefs()
    store.bump()
