"""A pure, in-memory apply: what both sides look like after a plan, and what qatlan then owns.

Used by the convergence properties: `plan(simulate(snapshot, plan(snapshot)))` is empty.
Like a careful apply, it checks every change's `before` against the current object and fails
loudly (AssertionError) when they disagree, so a planner bug cannot hide behind it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from qatlan.model import (
    AAsset,
    ACMAttribute,
    ACMDef,
    ALink,
    Announcement,
    ATagDef,
    QTag,
    Snapshot,
)
from qatlan.normalize import fold, normalize
from qatlan.plan import Action, Change, Plan, own


class _Sim:
    def __init__(self, s: Snapshot):
        self.s = s
        self.assets = dict(s.assets)
        self.links = dict(s.links)
        self.tag_defs = dict(s.tag_defs)
        self.cm_defs = dict(s.cm_defs)
        self.q = {"datastore": dict(s.datastores), "container": dict(s.containers),
                  "field": dict(s.fields)}

    def snapshot(self) -> Snapshot:
        return dataclasses.replace(
            self.s, assets=self.assets, links=self.links, tag_defs=self.tag_defs,
            cm_defs=self.cm_defs, datastores=self.q["datastore"],
            containers=self.q["container"], fields=self.q["field"],
        )

    # ---- definitions
    def typedef(self, c: Change) -> None:
        t = c.target
        if t["category"] == "tag":
            h = f"simTag{len(self.tag_defs):04d}"
            assert all(fold(d.display_name) != fold(t["display_name"]) for d in self.tag_defs.values())
            self.tag_defs[h] = ATagDef(h, c.after["name"])
            return
        existing = next((d for d in self.cm_defs.values() if d.display_name == t["display_name"]), None)
        attrs = list(existing.attributes) if existing else []
        names = {a.display_name for a in attrs}
        for a in c.after["attributes"]:
            if a["name"] not in names:
                attrs.append(ACMAttribute(f"simAttr{len(attrs):03d}", a["name"], a["type"]))
        h = existing.hashed_name if existing else "simCmSet0001"
        self.cm_defs[h] = ACMDef(h, t["display_name"], tuple(attrs))

    # ---- Atlan
    def atlan(self, c: Change) -> None:
        a = self.assets[c.target["guid"]]
        part = c.target["part"]
        if c.action is Action.ADOPT:
            assert normalize(self._atlan_value(a, c)) == normalize(c.before), c.address
            return
        if part == "cm":
            self.assets[a.guid] = self._cm(a, c)
        elif part == "tag":
            self.assets[a.guid] = self._tag(a, c)
        elif part == "announcement":
            current = None if a.announcement is None else {
                "type": a.announcement.type, "title": a.announcement.title,
                "message": a.announcement.message}
            assert normalize(current) == normalize(c.before), (c.address, current, c.before)
            ann = None if c.after is None else Announcement(**c.after)
            self.assets[a.guid] = dataclasses.replace(a, announcement=ann)
        elif part == "link":
            self._link(a, c)
        else:
            raise AssertionError(f"unknown part {part}")

    def _atlan_value(self, a: AAsset, c: Change) -> Any:
        """What a careful apply re-reads for an adoption: the value as the plan shows it."""
        part = c.target["part"]
        if part == "cm":
            _, hashes = self._cm_hashes(c.target["set"])
            values = dict(a.cm)
            return {attr: values.get(hashes[attr]) for attr in c.before}
        if part == "announcement":
            return None if a.announcement is None else {
                "type": a.announcement.type, "title": a.announcement.title,
                "message": a.announcement.message}
        if part == "link":
            link = self.links[c.target["link_guid"]]
            return {"name": link.name, "url": link.url}
        raise AssertionError(f"{c.address}: nothing of part {part} is adopted in Atlan")

    def _cm_hashes(self, set_name: str) -> tuple[str, dict[str, str]]:
        d = next(d for d in self.cm_defs.values() if d.display_name == set_name)
        return d.hashed_name, {x.display_name: x.hashed_name for x in d.attributes}

    def _cm(self, a: AAsset, c: Change) -> AAsset:
        _, hashes = self._cm_hashes(c.target["set"])
        values = dict(a.cm)
        for attr, before in (c.before or {}).items():
            have = values.get(hashes[attr])
            assert normalize(have) == normalize(before), (c.address, attr, have, before)
        for attr in (c.before or {}) if c.action is Action.DELETE else ():
            values.pop(hashes[attr], None)
        for attr, value in (c.after or {}).items():
            if value is None:
                values.pop(hashes[attr], None)
            else:
                values[hashes[attr]] = value
        return dataclasses.replace(a, cm=tuple(sorted(values.items())))

    def _tag_hash(self, display: str) -> str:
        return min(h for h, d in self.tag_defs.items() if fold(d.display_name) == fold(display))

    def _tag(self, a: AAsset, c: Change) -> AAsset:
        tags = set(a.tags)
        if c.action is Action.CREATE:
            h = c.target.get("tag_hash") or self._tag_hash(c.target["tag"])
            assert h not in tags, c.address
            tags.add(h)
        else:
            assert c.target["tag_hash"] in tags, c.address
            tags.discard(c.target["tag_hash"])
        return dataclasses.replace(a, tags=tuple(sorted(tags)))

    def _link(self, a: AAsset, c: Change) -> None:
        t = c.target
        if c.action is Action.CREATE:
            assert t["link_qualified_name"] not in {l.qualified_name for l in self.links.values()}
            guid = f"simLink-{t['link_qualified_name']}"
            self.links[guid] = ALink(guid, t["link_qualified_name"], c.after["name"],
                                     c.after["url"], a.guid)
            return
        link = self.links[t["link_guid"]]
        assert {"name": link.name, "url": link.url} == c.before, c.address
        if c.action is Action.DELETE:
            del self.links[link.guid]
        else:
            self.links[link.guid] = dataclasses.replace(link, name=c.after["name"], url=c.after["url"])

    # ---- Qualytics
    def qualytics(self, c: Change, integration_id: int | None) -> None:
        t = c.target
        bucket = self.q[t["kind"]]
        obj = bucket[t["id"]]
        name = fold(t["tag"])
        tags = list(obj.tags)
        if c.action is Action.ADOPT:
            assert any(fold(x.name) == name and x.external for x in tags), c.address
            return
        if c.action is Action.CREATE:
            assert all(fold(x.name) != name for x in tags), c.address
            tags.append(QTag(c.after["name"], "external", integration_id))
        elif c.action is Action.UPDATE:
            i = next(i for i, x in enumerate(tags) if fold(x.name) == name and not x.external)
            assert tags[i].type == c.before["type"], c.address
            tags[i] = QTag(tags[i].name, "external", integration_id)
        else:
            i = next(i for i, x in enumerate(tags) if fold(x.name) == name and x.external)
            del tags[i]
        bucket[t["id"]] = dataclasses.replace(obj, tags=tuple(tags))


def simulate(snapshot: Snapshot, plan: Plan, owned: Mapping[str, Any]) -> tuple[Snapshot, dict[str, Any]]:
    """Apply `plan` to `snapshot` in memory: (the snapshot after, ownership after)."""
    sim = _Sim(snapshot)
    new_owned = dict(owned)
    integration_id = plan.settings.get("integration_id")
    ordered = sorted(plan.changes, key=lambda c: c.target.get("part") != "typedef")
    for c in ordered:
        if c.target.get("part") == "typedef":
            sim.typedef(c)
        elif c.target["side"] == "atlan":
            sim.atlan(c)
        else:
            sim.qualytics(c, integration_id)
        key, value = own(new_owned, c)
        if value is None:
            new_owned.pop(key, None)
        else:
            new_owned[key] = value
    return sim.snapshot(), new_owned
