"""The planning context: indices over the snapshot and ownership, and the collected output."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qatlan import addresses
from qatlan.config import MappingConfig
from qatlan.match import MatchResult
from qatlan.model import CM_ATTRIBUTES, CM_KIND, AAsset, ACMDef, ALink, Announcement, Snapshot
from qatlan.normalize import fold, normalize
from qatlan.plan import Action, Change, Conflict
from qatlan.planner.settings import PlanSettings


def atlan_target(asset: AAsset, part: str, **extra: Any) -> dict[str, Any]:
    return {"side": "atlan", "part": part, "guid": asset.guid, "type_name": asset.type_name,
            "qualified_name": asset.qualified_name, **extra}


def announcement_value(a: Announcement | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"type": a.type, "title": a.title, "message": a.message}


def cm_definition(ctx: Context) -> Change | None:
    """The definitions change the set needs (None when the set and every attribute exist)."""
    wanted = [{"name": attr, "type": kind} for attr, kind in CM_ATTRIBUTES]
    target = {"side": "atlan", "part": "typedef", "category": "cm",
              "display_name": ctx.settings.cm_set_name,
              "hashed_name": ctx.cm_def.hashed_name if ctx.cm_def else None}
    if ctx.cm_def is None:
        after = {"name": ctx.settings.cm_set_name, "attributes": wanted}
        return Change(ctx.cm_typedef_address, Action.CREATE, None, after,
                      "the custom metadata set does not exist", target)
    missing = [w for w in wanted if w["name"] not in ctx.cm_attr_hash]
    if not missing:
        return None
    present = [{"name": a.display_name, "type": a.type_name} for a in ctx.cm_def.attributes]
    before = {"name": ctx.cm_def.display_name, "attributes": present}
    after = {"name": ctx.cm_def.display_name, "attributes": present + missing}
    return Change(ctx.cm_typedef_address, Action.UPDATE, before, after,
                  "attributes missing: " + ", ".join(m["name"] for m in missing), target)


def owned_tag_index(owned: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Owned tag keys by asset address and folded tag name (the first key of a name wins)."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for key in owned:
        asset, part = addresses.parse(key)
        if part.startswith("tag:"):
            out[asset].setdefault(fold(part[4:]), key)
    return out


def human_tag_names(tagged: Iterable[tuple[str, Sequence[str]]],
                    owned_tags: Mapping[str, Mapping[str, str]],
                    tag_display: Mapping[str, str]) -> set[str]:
    """Folded display names of the tags on Atlan assets that qatlan did not put there.

    `tagged`: (qualifiedName, hashed tag names) of every asset carrying a tag, across the
    whole snapshot; `owned_tags`: asset address → {folded name: owned key}."""
    names: set[str] = set()
    for qn, tags in tagged:
        mine = owned_tags.get(addresses.atlan_asset(qn), {})
        for h in tags:
            display = tag_display.get(h)
            if display is not None and (f := fold(display)) not in mine:
                names.add(f)
    return names


def tag_definition(name: str) -> Change:
    """The definitions change that creates the Atlan tag `name`."""
    return Change(addresses.typedef_tag(name), Action.CREATE, None, {"name": name},
                  "the Atlan tag does not exist",
                  {"side": "atlan", "part": "typedef", "category": "tag",
                   "display_name": name, "hashed_name": None})


class Context:
    """Read-only indices plus the lists the planner appends to."""

    def __init__(self, snapshot: Snapshot, settings: PlanSettings, matches: MatchResult,
                 owned: Mapping[str, Any], rules: Sequence[MappingConfig],
                 human_tag_names: set[str] | None = None):
        self.snapshot, self.settings, self.matches = snapshot, settings, matches
        self.owned, self.rules = owned, rules
        self._index_tags(snapshot)
        self._index_cm(snapshot, settings.cm_set_name)
        self.cm_definition = cm_definition(self)
        self.cm_incomplete = self.cm_definition is not None
        self.cm_set_hash = self.cm_def.hashed_name if self.cm_def else None
        self._index_owned(owned)
        self._links: dict[str, list[ALink]] | None = None
        #: None: computed from this snapshot's assets when first needed; a partitioned plan
        #: passes the set computed over the whole snapshot (`human_tag_names`)
        self._human_tag_names: set[str] | None = human_tag_names
        self.changes: list[Change] = []
        self.conflicts: list[Conflict] = []
        self.unchanged = 0
        self.needed: dict[str, Change] = {}
        #: definition address → addresses of the value changes waiting for it
        self.waiting: dict[str, list[str]] = defaultdict(list)
        self.tag_definitions: dict[str, Change] = {}
        #: folded tag name → every spelling a definition was asked for under (`settle_tag_definitions`)
        self.tag_spellings: dict[str, set[str]] = defaultdict(set)
        self.hash_maps: dict[tuple[str, ...], dict[str, str | None]] = {}
        self.visited: set[str] = set()

    # ---- indices
    def _index_tags(self, snapshot: Snapshot) -> None:
        self.tag_display = {h: d.display_name for h, d in snapshot.tag_defs.items()}
        #: Qualytics' own tag definitions (not external) by folded name, attached or not
        self.q_own_tag_defs = {fold(n): t for n, t in snapshot.q_tags.items() if t.type != "external"}
        by_fold: dict[str, tuple[str, str]] = {}
        for h, display in sorted(self.tag_display.items(), key=lambda kv: (kv[1], kv[0])):
            by_fold.setdefault(fold(display), (h, display))
        self.tag_by_fold = by_fold

    def _index_cm(self, snapshot: Snapshot, set_name: str) -> None:
        found = sorted((d for d in snapshot.cm_defs.values() if d.display_name == set_name),
                       key=lambda d: d.hashed_name)
        self.cm_def: ACMDef | None = found[0] if found else None
        self.cm_typedef_address = addresses.typedef_cm(set_name)
        self.cm_attr_hash: dict[str, str] = {}
        self.cm_hash_attr: dict[str, str] = {}
        if self.cm_def is not None:
            for a in self.cm_def.attributes:
                if a.display_name in CM_KIND and a.display_name not in self.cm_attr_hash:
                    self.cm_attr_hash[a.display_name] = a.hashed_name
                    self.cm_hash_attr[a.hashed_name] = a.display_name

    def _index_owned(self, owned: Mapping[str, Any]) -> None:
        """Owned tags by asset and folded name; every Atlan asset that qatlan owns something on."""
        self.owned_tags = owned_tag_index(owned)
        self.owned_atlan: set[str] = set()
        for key in owned:
            if addresses.side(key) == "atlan" and not addresses.is_typedef(key):
                self.owned_atlan.add(addresses.parse(key)[0])

    def links_of(self, guid: str) -> list[ALink]:
        if self._links is None:
            self._links = defaultdict(list)
            for link in self.snapshot.links.values():
                if link.asset_guid:
                    self._links[link.asset_guid].append(link)
        return self._links.get(guid, [])

    # ---- reading current values
    def atlan_owned_tag_names(self) -> set[str]:
        """Folded names of tags attached in Atlan by someone other than qatlan (computed once):
        with overwrite_tags these are Atlan's, so qatlan does not push a tag of that name."""
        if self._human_tag_names is None:
            self._human_tag_names = human_tag_names(
                ((a.qualified_name, a.tags) for a in self.snapshot.assets.values() if a.tags),
                self.owned_tags, self.tag_display)
        return self._human_tag_names

    def atlan_tags(self, asset: AAsset) -> dict[str, str]:
        """Direct tags of an asset with a known definition: folded name → display name."""
        return {f: d for f, (d, _) in self.atlan_tag_hashes(asset).items()}

    def atlan_tag_hashes(self, asset: AAsset) -> dict[str, tuple[str, str]]:
        """Direct tags with a known definition: folded name → (display name, hashed name)."""
        out: dict[str, tuple[str, str]] = {}
        for h in asset.tags:
            display = self.tag_display.get(h)
            if display is None:
                continue
            f = fold(display)
            if f not in out or (display, h) < out[f]:
                out[f] = (display, h)
        return out

    def current_cm(self, asset: AAsset) -> dict[str, Any]:
        """The set's values on an asset as stored ({attribute: value}, None values dropped)."""
        hash_attr = self.cm_hash_attr
        out: dict[str, Any] = {}
        for h, value in asset.cm:
            attr = hash_attr.get(h)
            if attr is not None and value is not None:
                out[attr] = value
        return out

    def owned_value(self, key: str) -> Any:
        value = self.owned.get(key)
        return None if value is None else normalize(value)

    # ---- output
    def add(self, address: str, action: Action, before: Any, after: Any, target: dict,
            reason: str | None = None) -> None:
        self.changes.append(Change(address, action, before, after, reason, target))

    def conflict(self, address: str, rule: str, message: str) -> None:
        self.conflicts.append(Conflict(address, rule, message))

    def need(self, definition: Change, address: str) -> bool:
        """Record that the change at `address` depends on `definition`; True when it may go
        ahead (definitions are planned), False when it waits."""
        self.needed.setdefault(definition.address, definition)
        if self.settings.create_definitions:
            return True
        self.waiting[definition.address].append(address)
        return False
