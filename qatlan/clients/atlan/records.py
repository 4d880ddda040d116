"""Pure conversions from Atlan JSON to `qatlan.model` records.

Search hits and `GET /entity/...` entities share one shape (`guid`, `typeName`, `status`,
`attributes`, `classifications`, ...), so one converter reads both. Tags are the *direct* ones
only: a classification whose `entityGuid` is another asset's GUID was propagated to this one.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from qatlan.errors import ApiResponseError
from qatlan.model import (
    AAsset,
    ACMAttribute,
    ACMDef,
    AConnection,
    ADomain,
    ALink,
    Announcement,
    ATagDef,
)

__all__ = [
    "ASSET_ATTRIBUTES",
    "asset_record",
    "cm_def_record",
    "cm_defs_of",
    "connection_qn_of",
    "connection_record",
    "direct_tags",
    "domain_record",
    "link_asset_qn",
    "link_record",
    "related_link_records",
    "tag_def_record",
]

#: attributes requested for every asset (custom metadata attributes are added per set)
ASSET_ATTRIBUTES: tuple[str, ...] = (
    "name",
    "qualifiedName",
    "connectionQualifiedName",
    "databaseQualifiedName",
    "schemaQualifiedName",
    "tableQualifiedName",
    "viewQualifiedName",
    "domainGUIDs",
    "announcementType",
    "announcementTitle",
    "announcementMessage",
    "announcementUpdatedBy",
)
#: where each type keeps its parent's qualifiedName, in order of preference
_PARENT_ATTRS: dict[str, tuple[str, ...]] = {
    "Database": ("connectionQualifiedName",),
    "Schema": ("databaseQualifiedName",),
    "Table": ("schemaQualifiedName",),
    "View": ("schemaQualifiedName",),
    "MaterialisedView": ("schemaQualifiedName",),
    "Column": ("tableQualifiedName", "viewQualifiedName"),
}


# --------------------------------------------------------------------------- entities


def direct_tags(entity: Mapping[str, Any]) -> tuple[str, ...]:
    """Hashed names of the tags attached to this entity itself (not propagated), sorted."""
    guid = entity.get("guid")
    names = {
        str(c["typeName"])
        for c in entity.get("classifications") or ()
        if isinstance(c, Mapping) and c.get("typeName") and c.get("entityGuid") in (None, guid)
    }
    return tuple(sorted(names))


def cm_defs_of(cm_def: ACMDef | Sequence[ACMDef] | None) -> tuple[ACMDef, ...]:
    """One custom metadata set, several, or none, as a tuple."""
    if cm_def is None:
        return ()
    return (cm_def,) if isinstance(cm_def, ACMDef) else tuple(cm_def)


def asset_record(entity: Mapping[str, Any], cm_def: ACMDef | Sequence[ACMDef] | None = None) -> AAsset:
    """An `AAsset` from a search hit or an entity; `cm_def` picks the custom metadata set (or
    sets) to keep. Values are keyed by attribute hashed name, which Atlan makes unique across
    sets (qatlan reads more than one set only while retiring a renamed one)."""
    attrs = entity.get("attributes") or {}
    type_name = _required(entity, "typeName")
    qn = attrs.get("qualifiedName")
    if not isinstance(qn, str) or not entity.get("guid"):
        raise _bad(entity, "guid and attributes.qualifiedName")
    parent_qn = _parent_qn(type_name, attrs, qn)
    # names that repeat across assets are interned: a snapshot holds each once
    return AAsset(
        guid=str(entity["guid"]),
        type_name=sys.intern(str(type_name)),
        qualified_name=qn,
        name=str(attrs.get("name") or entity.get("displayText") or qn.rsplit("/", 1)[-1]),
        connection_qn=sys.intern(str(attrs.get("connectionQualifiedName") or connection_qn_of(qn) or "")),
        parent_qn=sys.intern(parent_qn) if parent_qn is not None else None,
        status=sys.intern(str(entity.get("status") or "ACTIVE")),
        domain_guids=tuple(sorted(str(g) for g in attrs.get("domainGUIDs") or ())),
        tags=direct_tags(entity),
        announcement=_announcement(attrs),
        cm=_cm_values(entity, cm_def) if cm_def else (),
        update_time=entity.get("updateTime"),
        updated_by=entity.get("updatedBy"),
    )


def _parent_qn(type_name: str, attrs: Mapping[str, Any], qn: str) -> str | None:
    for key in _PARENT_ATTRS.get(type_name, ()):
        if attrs.get(key):
            return str(attrs[key])
    return qn.rsplit("/", 1)[0] if "/" in qn else None


def _announcement(attrs: Mapping[str, Any]) -> Announcement | None:
    kind = attrs.get("announcementType")
    if not kind:
        return None
    return Announcement(
        type=str(kind),
        title=attrs.get("announcementTitle"),
        message=attrs.get("announcementMessage"),
        updated_by=attrs.get("announcementUpdatedBy"),
    )


def _cm_values(entity: Mapping[str, Any], cm_def: ACMDef | Sequence[ACMDef]) -> tuple[tuple[str, Any], ...]:
    """Values of the sets' attributes: flat `<set>.<attr>` keys (search) or `businessAttributes`."""
    attrs = entity.get("attributes") or {}
    values = {}
    for d in cm_defs_of(cm_def):
        nested = (entity.get("businessAttributes") or {}).get(d.hashed_name) or {}
        for attr in d.attributes:
            value = attrs.get(f"{d.hashed_name}.{attr.hashed_name}")
            if value is None:
                value = nested.get(attr.hashed_name)
            if value is not None:
                values[attr.hashed_name] = value
    return tuple(sorted(values.items()))


def _identity(entity: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, str]]:
    """The hit's attributes and its guid / qualified_name / name (a hit without both → error)."""
    attrs = entity.get("attributes") or {}
    qn = attrs.get("qualifiedName")
    if not isinstance(qn, str) or not entity.get("guid"):
        raise _bad(entity, "guid and attributes.qualifiedName")
    return attrs, {"guid": str(entity["guid"]), "qualified_name": qn, "name": str(attrs.get("name") or qn)}


def connection_record(entity: Mapping[str, Any]) -> AConnection:
    attrs, ident = _identity(entity)
    qn = ident["qualified_name"]
    connector = attrs.get("connectorName") or (qn.split("/")[1] if qn.count("/") >= 2 else None)
    return AConnection(**ident, connector=connector)


def domain_record(entity: Mapping[str, Any]) -> ADomain:
    attrs, ident = _identity(entity)
    return ADomain(**ident, parent_qn=attrs.get("parentDomainQualifiedName"))


def link_record(entity: Mapping[str, Any]) -> ALink:
    attrs = entity.get("attributes") or {}
    asset = attrs.get("asset") or (entity.get("relationshipAttributes") or {}).get("asset")
    if not entity.get("guid"):
        raise _bad(entity, "guid")
    return ALink(
        guid=str(entity["guid"]),
        qualified_name=str(attrs.get("qualifiedName") or ""),
        name=str(attrs.get("name") or ""),
        url=attrs.get("link"),
        asset_guid=asset.get("guid") if isinstance(asset, Mapping) else None,
    )


def related_link_records(entity: Mapping[str, Any]) -> list[ALink]:
    """The ACTIVE Links in an asset's `relationshipAttributes.links` (AtlasRelatedObjectId
    headers: GUID, `displayText` = name, `entityStatus`, sometimes `uniqueAttributes`); the
    URL is not in a header, so it is None. UNCONFIRMED whether Atlan also lists links whose
    relationship (not entity) was deleted: `relationshipStatus` DELETED ones are left out."""
    out = []
    for ref in (entity.get("relationshipAttributes") or {}).get("links") or ():
        if not isinstance(ref, Mapping) or not ref.get("guid"):
            continue
        if ref.get("entityStatus", "ACTIVE") != "ACTIVE" or ref.get("relationshipStatus", "ACTIVE") != "ACTIVE":
            continue
        attrs = ref.get("attributes") or {}
        unique = ref.get("uniqueAttributes") or {}
        out.append(ALink(
            guid=str(ref["guid"]),
            qualified_name=str(unique.get("qualifiedName") or attrs.get("qualifiedName") or ""),
            name=str(ref.get("displayText") or attrs.get("name") or ""),
            url=None,
            asset_guid=str(entity.get("guid")),
        ))
    return out


def link_asset_qn(entity: Mapping[str, Any]) -> str | None:
    """The qualifiedName of a Link's asset, when the hit carries it."""
    asset = (entity.get("attributes") or {}).get("asset")
    if not isinstance(asset, Mapping):
        return None
    for key in ("uniqueAttributes", "attributes"):
        qn = (asset.get(key) or {}).get("qualifiedName")
        if qn:
            return str(qn)
    return None


def connection_qn_of(qualified_name: str | None) -> str | None:
    """`default/snowflake/1657037873` from any SQL asset's qualifiedName, else None."""
    if not qualified_name:
        return None
    parts = qualified_name.split("/")
    if len(parts) < 3 or parts[0] != "default" or not parts[2]:
        return None
    return "/".join(parts[:3])


# --------------------------------------------------------------------------- typedefs


def tag_def_record(d: Mapping[str, Any]) -> ATagDef:
    return ATagDef(hashed_name=str(d["name"]), display_name=str(d.get("displayName") or d["name"]))


def cm_def_record(d: Mapping[str, Any]) -> ACMDef:
    """An `ACMDef`; archived attributes (`options.isArchived` true) are left out."""
    attributes = []
    for a in d.get("attributeDefs") or ():
        options = a.get("options") or {}
        if str(options.get("isArchived", "false")).lower() == "true":
            continue
        kind = options.get("customType") or options.get("primitiveType") or a.get("typeName") or "string"
        attributes.append(ACMAttribute(str(a["name"]), str(a.get("displayName") or a["name"]), str(kind)))
    return ACMDef(
        hashed_name=str(d["name"]),
        display_name=str(d.get("displayName") or d["name"]),
        attributes=tuple(attributes),
    )


# --------------------------------------------------------------------------- helpers


def _required(entity: Mapping[str, Any], key: str) -> str:
    value = entity.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(entity, key)
    return value


def _bad(entity: Any, what: str) -> ApiResponseError:
    guid = entity.get("guid") if isinstance(entity, Mapping) else None
    return ApiResponseError(
        f"Atlan returned an entity (guid {guid}) without {what}",
        service="atlan",
        hint="the server may not be the Atlan API qatlan expects",
    )
