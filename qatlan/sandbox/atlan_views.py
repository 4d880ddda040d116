"""How the sandbox Atlan shows stored entities: search hits, mutation headers, full entities.

Serialisation is NON_NULL as in the metastore (absent keys, not nulls). What the world does not
store is computed here: `entityGuid`/`entityStatus` on tags, `classificationNames`,
`displayText`, related-entity headers for `links` and a Link's `asset`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qatlan.sandbox.atlan_store import CLASSIFICATION_FLAGS, AtlanStore

__all__ = ["classification_views", "entity_header", "full_entity", "related_header", "search_response"]

Entity = dict[str, Any]


def classification_views(store: AtlanStore, ent: Entity) -> list[dict[str, Any]]:
    """Tags as the API shows them; a propagated one keeps its source's guid and status."""
    out = []
    for c in ent["classifications"]:
        source = c.get("entityGuid") or ent["guid"]
        source_ent = ent if source == ent["guid"] else store.get(source)
        view: dict[str, Any] = {
            "typeName": c["typeName"],
            "entityGuid": source,
            "entityStatus": source_ent["status"] if source_ent else "ACTIVE",
        }
        for flag in CLASSIFICATION_FLAGS:
            view[flag] = c.get(flag, CLASSIFICATION_FLAGS[flag])
        for key in ("attributes", "validityPeriods"):
            if key in c:
                view[key] = c[key]
        out.append(view)
    return out


def tag_names(ent: Entity) -> list[str]:
    return list(dict.fromkeys(c["typeName"] for c in ent["classifications"]))


def related_header(store: AtlanStore, ent: Entity, relation_attributes: Iterable[str] = ()) -> dict[str, Any]:
    """A related entity inside another one (a Link in `links`, the asset of a Link)."""
    attrs = ent["attributes"]
    shown = {k: attrs[k] for k in ("qualifiedName", "name") if attrs.get(k) is not None}
    for name in relation_attributes:
        value = _plain_value(ent, name)
        if value is not None:
            shown[name] = value
    out: dict[str, Any] = {"typeName": ent["typeName"], "guid": ent["guid"], "entityStatus": ent["status"]}
    if attrs.get("name") is not None:
        out["displayText"] = attrs["name"]
    out["uniqueAttributes"] = {"qualifiedName": attrs["qualifiedName"]}
    out["attributes"] = shown
    return out


def _plain_value(ent: Entity, name: str) -> Any:
    if "." in name:
        set_name, attr = name.split(".", 1)
        return ent["businessAttributes"].get(set_name, {}).get(attr)
    value = ent["attributes"].get(name)
    return None if name == "asset" else value


def _asset_ref(store: AtlanStore, ref: Any, relation_attributes: Iterable[str]) -> Any:
    target = store.get(ref.get("guid", "")) if isinstance(ref, dict) else None
    return related_header(store, target, relation_attributes) if target else ref


def _attribute_value(store: AtlanStore, ent: Entity, name: str, rel: list[str], deleted_ok: bool) -> Any:
    if name == "links" and ent["typeName"] != "Link":
        links = store.links_of(ent["guid"])
        return [related_header(store, link, rel) for link in links if deleted_ok or link["status"] == "ACTIVE"]
    if name == "asset":
        ref = ent["attributes"].get("asset")
        return None if ref is None else _asset_ref(store, ref, rel)
    return _plain_value(ent, name)


def entity_header(
    store: AtlanStore,
    ent: Entity,
    attributes: Iterable[str] = (),
    *,
    relation_attributes: Iterable[str] = (),
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """AtlasEntityHeader: header attributes plus the requested ones (null ones left out)."""
    opts = options or {}
    rel, deleted_ok = list(relation_attributes or ()), bool(opts.get("allowDeletedRelations"))
    attrs = ent["attributes"]
    # UNCONFIRMED: the header attribute set per type; the sandbox always shows qualifiedName and name
    shown = {k: attrs[k] for k in ("qualifiedName", "name") if attrs.get(k) is not None}
    for name in attributes or ():
        value = _attribute_value(store, ent, name, rel, deleted_ok)
        if value is not None:
            shown[name] = value
    out: dict[str, Any] = {"typeName": ent["typeName"], "guid": ent["guid"], "status": ent["status"]}
    if attrs.get("name") is not None:
        out["displayText"] = attrs["name"]
    out["attributes"] = shown
    _add_tags(store, ent, out, opts)
    if not opts.get("excludeMeanings"):
        out["meaningNames"], out["meanings"] = [], []
    out.update(labels=[], isIncomplete=False)
    _add_audit(ent, out)
    return out


def _add_tags(store: AtlanStore, ent: Entity, out: dict[str, Any], opts: dict[str, Any]) -> None:
    if not opts.get("excludeClassifications"):
        out["classificationNames"] = tag_names(ent)
        out["classifications"] = classification_views(store, ent)
    elif opts.get("includeClassificationNames"):
        out["classificationNames"] = tag_names(ent)


def _add_audit(ent: Entity, out: dict[str, Any]) -> None:
    for key in ("createdBy", "updatedBy", "createTime", "updateTime"):
        if ent.get(key) is not None:
            out[key] = ent[key]


def full_entity(store: AtlanStore, ent: Entity, *, ignore_relationships: bool = False) -> dict[str, Any]:
    """AtlasEntity as GET /entity/guid returns it (relationships only when not ignored)."""
    is_link = ent["typeName"] == "Link"
    attrs = {k: v for k, v in ent["attributes"].items() if not (is_link and k == "asset")}
    out: dict[str, Any] = {
        "typeName": ent["typeName"],
        "guid": ent["guid"],
        "status": ent["status"],
        "attributes": attrs,
        "relationshipAttributes": {} if ignore_relationships else _relationships(store, ent),
        "classifications": classification_views(store, ent),
    }
    if ent["businessAttributes"]:
        out["businessAttributes"] = {k: dict(v) for k, v in ent["businessAttributes"].items()}
    out.update(labels=[], meanings=[], isIncomplete=False, version=0)
    _add_audit(ent, out)
    return out


def _relationships(store: AtlanStore, ent: Entity) -> dict[str, Any]:
    if ent["typeName"] == "Link":
        ref = ent["attributes"].get("asset")
        return {"asset": _asset_ref(store, ref, ())} if ref else {}
    return {"links": [related_header(store, link) for link in store.links_of(ent["guid"]) if link["status"] == "ACTIVE"]}


def search_response(store: AtlanStore, body: dict[str, Any], hits: list[Entity], count: int) -> dict[str, Any]:
    """AtlasSearchResult for an indexsearch (entities left out when there are none)."""
    attributes = body.get("attributes") or []
    rel = body.get("relationAttributes") or []
    # UNCONFIRMED: searchParameters echoes the request body as sent
    out: dict[str, Any] = {"queryType": "INDEX", "searchParameters": body, "approximateCount": count}
    if hits:
        out["entities"] = [
            entity_header(store, e, attributes, relation_attributes=rel, options=body) for e in hits
        ]
        if body.get("showSearchScore"):
            out["searchScore"] = {e["guid"]: 1.0 for e in hits}
    return out
