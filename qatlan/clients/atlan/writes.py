"""What qatlan writes to Atlan, built from plan changes (reference §4.3, §5.2, §5.3, §6.2, §7.1, §8).

- an asset's changes become one partial-update entity for the bulk upsert: qualifiedName,
  typeName, name and only the attributes being changed; tags through
  `addOrUpdateClassifications` / `removeClassifications` (`appendTags=true`), custom
  metadata through `businessAttributes` (merge, `replaceBusinessAttributes=true`, null
  clears), the announcement as its three attributes (null clears);
- a Link change becomes the Link entity with the idempotent qualifiedName
  `<assetQN>/<link name>`, so a retried or repeated create updates the same Link;
- tag and custom metadata definitions become typedef payloads as pyatlan builds them.

`Names` resolves the hashed names a change needs: from its target, else from what the
definitions turned out to be in this run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qatlan.normalize import fold
from qatlan.plan import Action, Change

__all__ = [
    "CM_TYPES",
    "Names",
    "asset_entity",
    "bulk_flags",
    "cm_attribute_payload",
    "cm_set_payload",
    "entity_of",
    "link_entity",
    "tag_def_payload",
    "typedefs_body",
]


@dataclass
class Names:
    """Hashed names of Atlan tags and of the custom metadata set, after definitions ran."""

    tags: dict[str, str] = field(default_factory=dict)  # folded display name → hashed name
    cm_set: str | None = None
    cm_attributes: dict[str, str] = field(default_factory=dict)  # display → hashed name

    def tag_hash(self, change: Change) -> str | None:
        return change.target.get("tag_hash") or self.tags.get(fold(change.target.get("tag") or ""))

    def set_hash(self, change: Change) -> str | None:
        return change.target.get("set_hash") or self.cm_set

    def attr_hash(self, change: Change, attr: str) -> str | None:
        return (change.target.get("attributes") or {}).get(attr) or self.cm_attributes.get(attr)


# --------------------------------------------------------------------------- entities

_TAG_FLAGS = {"propagate": False, "removePropagationsOnEntityDelete": True,
              "restrictPropagationThroughLineage": False, "restrictPropagationThroughHierarchy": False}


def entity_of(changes: Sequence[Change], names: Names, asset_name: str | None = None) -> dict[str, Any]:
    """The bulk-upsert entity for one asset's changes, or for one Link change."""
    if changes[0].target["part"] == "link":
        return link_entity(changes[0])
    return asset_entity(changes, asset_name or changes[0].target["qualified_name"].rsplit("/", 1)[-1], names)


def asset_entity(changes: Sequence[Change], name: str, names: Names) -> dict[str, Any]:
    """The partial-update entity for one asset's changes (`name` as Atlan has it)."""
    t = changes[0].target
    attrs: dict[str, Any] = {"qualifiedName": t["qualified_name"], "name": name}
    entity: dict[str, Any] = {"typeName": t["type_name"], "guid": t["guid"], "attributes": attrs}
    for c in changes:
        part = c.target["part"]
        if part == "tag":
            key = "removeClassifications" if c.action is Action.DELETE else "addOrUpdateClassifications"
            entity.setdefault(key, []).append({"typeName": names.tag_hash(c), **_TAG_FLAGS})
        elif part == "cm":
            values = dict.fromkeys(c.before, None) if c.action is Action.DELETE else dict(c.after)
            bucket = entity.setdefault("businessAttributes", {}).setdefault(names.set_hash(c), {})
            bucket.update({names.attr_hash(c, a): v for a, v in values.items()})
        elif part == "announcement":
            after = c.after or {}
            attrs.update(announcementType=after.get("type"), announcementTitle=after.get("title"),
                         announcementMessage=after.get("message"))
    return entity


def link_entity(change: Change) -> dict[str, Any]:
    """The Link entity of a Link change (create or update), keyed by its idempotent QN."""
    t = change.target
    attrs = {"qualifiedName": t["link_qualified_name"], "name": change.after["name"],
             "link": change.after["url"]}
    entity: dict[str, Any] = {"typeName": "Link", "attributes": attrs}
    if change.action is Action.CREATE:
        attrs["asset"] = {"typeName": t["type_name"], "uniqueAttributes": {"qualifiedName": t["qualified_name"]}}
        # UNCONFIRMED: re-creating a Link whose QN matches an archived one restores it with
        # status ACTIVE (the sandbox does; Atlan's behaviour is not documented)
        entity["status"] = "ACTIVE"
    else:
        entity["guid"] = t["link_guid"]
    return entity


def bulk_flags(changes: Sequence[Change]) -> dict[str, bool]:
    """The bulk flags a batch needs: appendTags for tag changes, replaceBusinessAttributes for CM."""
    parts = {c.target["part"] for c in changes}
    return {"append_tags": "tag" in parts, "replace_business_attributes": "cm" in parts}


# --------------------------------------------------------------------------- typedefs


def typedefs_body(**defs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A typedefs request body: all six arrays, the given ones filled."""
    keys = (
        "enumDefs", "structDefs", "classificationDefs",
        "entityDefs", "relationshipDefs", "businessMetadataDefs",
    )
    return {k: list(defs.get(k, ())) for k in keys}


def tag_def_payload(display_name: str) -> dict[str, Any]:
    """A new tag definition, as pyatlan creates one (the server assigns the hashed name)."""
    return {
        "category": "CLASSIFICATION",
        "name": display_name,
        "displayName": display_name,
        "options": {"color": "Gray", "iconName": "atlanTags", "iconType": "icon", "imageID": ""},
        "skipDisplayNameUniquenessCheck": False,
    }


#: qatlan's attribute types → (typeName, options.primitiveType, options.customType)
CM_TYPES: dict[str, tuple[str, str, str | None]] = {
    "string": ("string", "string", None),
    "int": ("int", "int", None),
    "float": ("float", "float", None),
    "boolean": ("boolean", "boolean", None),
    "date": ("date", "date", None),
    "url": ("string", "url", "url"),
}
_ASSET_TYPES = ["Schema", "Table", "View", "MaterialisedView", "Column", "Database"]


def cm_attribute_payload(
    display_name: str, kind: str, applicable_connections: Sequence[str] | None = None
) -> dict[str, Any]:
    """A new custom metadata attribute (atlan-api reference §5.2)."""
    if kind not in CM_TYPES:
        raise ValueError(f"unknown custom metadata type {kind!r}; use one of {sorted(CM_TYPES)}")
    type_name, primitive, custom = CM_TYPES[kind]
    options: dict[str, Any] = {
        "customMetadataVersion": "v2",
        "primitiveType": primitive,
        "applicableEntityTypes": json.dumps(["Asset"]),
        "allowFiltering": True,
        "allowSearch": False,
        "multiValueSelect": False,
        "showInOverview": False,
        "isEnum": False,
        "isRichText": False,
        "maxStrLength": "100000000",
        "assetTypesList": json.dumps(_ASSET_TYPES),
    }
    if custom:
        options["customType"] = custom
    if applicable_connections:
        # UNCONFIRMED: pyatlan sends every connection when none is given; qatlan sends none
        options["applicableConnections"] = json.dumps(sorted(applicable_connections))
    return {
        "displayName": display_name, "name": "", "isNew": True, "typeName": type_name,
        "cardinality": "SINGLE", "isIndexable": True, "isOptional": True, "isUnique": False,
        "includeInNotification": False, "valuesMinCount": 0, "valuesMaxCount": 1, "options": options,
    }


def cm_set_payload(
    display_name: str,
    attributes: Sequence[tuple[str, str]],
    applicable_connections: Sequence[str] | None = None,
) -> dict[str, Any]:
    return {
        "category": "BUSINESS_METADATA",
        "name": display_name,
        "displayName": display_name,
        "description": None,
        "options": {"emoji": "📊", "isLocked": False, "logoType": "emoji"},
        "attributeDefs": [cm_attribute_payload(n, k, applicable_connections) for n, k in attributes],
    }
