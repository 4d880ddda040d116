"""Atlan write units and their bulk-upsert entities (reference §4.3, §5.3, §6.2, §7.1, §8).

A *unit* is what one entity (or one Link delete) carries:

- an asset unit: one asset with all its tag, custom metadata and announcement changes, sent
  as a partial update: qualifiedName, typeName, name and only the attributes being changed;
  tags through `addOrUpdateClassifications` / `removeClassifications` (`appendTags=true`),
  custom metadata through `businessAttributes` (merge, `replaceBusinessAttributes=true`,
  null clears), the announcement as its three attributes (null clears);
- a link unit: qatlan's Link on one asset, with the idempotent qualifiedName
  `<assetQN>/<link name>`, so a retried or repeated create updates the same Link;
- a link delete: qatlan's Link archived by GUID (`DELETE /entity/bulk`, SOFT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qatlan.plan import Action

from qatlan._apply.decide import Names
from qatlan._apply.result import Work

__all__ = ["Unit", "asset_entity", "flags_of", "link_entity", "units_of"]


@dataclass
class Unit:
    kind: str  # asset | link | link_delete
    guid: str  # the asset's GUID (link units: the Link's GUID when known)
    works: list[Work] = field(default_factory=list)
    #: the GUID to read back after the write (a created Link's comes from guidAssignments)
    written_guid: str | None = None


def units_of(works: list[Work]) -> list[Unit]:
    """Atlan value changes grouped into units, in plan order (one asset unit per asset)."""
    assets: dict[str, Unit] = {}
    out: list[Unit] = []
    for w in works:
        t = w.change.target
        if t.get("part") == "link":
            kind = "link_delete" if w.change.action is Action.DELETE else "link"
            out.append(Unit(kind, t.get("link_guid") or "", [w]))
            continue
        unit = assets.get(t["guid"])
        if unit is None:
            unit = assets[t["guid"]] = Unit("asset", t["guid"])
            out.append(unit)
        unit.works.append(w)
    return out


_TAG_FLAGS = {"propagate": False, "removePropagationsOnEntityDelete": True,
              "restrictPropagationThroughLineage": False, "restrictPropagationThroughHierarchy": False}


def asset_entity(unit: Unit, name: str, names: Names) -> dict[str, Any]:
    """The partial-update entity for an asset unit (`name` as Atlan has it)."""
    t = unit.works[0].change.target
    attrs: dict[str, Any] = {"qualifiedName": t["qualified_name"], "name": name}
    entity: dict[str, Any] = {"typeName": t["type_name"], "guid": unit.guid, "attributes": attrs}
    for w in unit.works:
        c = w.change
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


def link_entity(unit: Unit) -> dict[str, Any]:
    """The Link entity of a link unit (create or update), keyed by its idempotent QN."""
    c = unit.works[0].change
    t = c.target
    attrs = {"qualifiedName": t["link_qualified_name"], "name": c.after["name"], "link": c.after["url"]}
    entity: dict[str, Any] = {"typeName": "Link", "attributes": attrs}
    if c.action is Action.CREATE:
        attrs["asset"] = {"typeName": t["type_name"], "uniqueAttributes": {"qualifiedName": t["qualified_name"]}}
        # UNCONFIRMED: re-creating a Link whose QN matches an archived one restores it with
        # status ACTIVE (the sandbox does; Atlan's behaviour is not documented)
        entity["status"] = "ACTIVE"
    else:
        entity["guid"] = t["link_guid"]
    return entity


def flags_of(units: list[Unit]) -> dict[str, bool]:
    """The bulk flags a batch needs: appendTags for tag changes, replaceBusinessAttributes for CM."""
    parts = {w.change.target["part"] for u in units for w in u.works}
    return {"append_tags": "tag" in parts, "replace_business_attributes": "cm" in parts}
