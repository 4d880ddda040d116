"""Retiring what qatlan owns on assets whose other side is gone.

- Atlan side: an Atlan table/view (column) that qatlan wrote to, in a matched datastore's
  schema (a matched table), that no Qualytics container (field) claims any more, not even by a
  case-insensitive name or a rename: its owned values, tags, Link and announcement go.
  Schemas, assets of unmatched datastores and assets still claimed (ambiguous, out of the
  domains) are left alone: qatlan cannot tell they are gone.
- Qualytics side: a container or field skipped as `unmatched` (its Atlan asset is gone) loses
  the external tags qatlan attached. Not done with a domain filter, where "gone" and "moved out
  of the domains" look the same.
- A renamed `custom_metadata_set`: the values qatlan wrote in the set it used before are
  removed (the new set gets them through the walk), on every asset in scope, as long as they
  still hold what qatlan wrote. A renamed `link_name` is not retired but renamed in place
  (`qatlan.planner.resources.plan_link`).
"""

from __future__ import annotations

from collections import defaultdict

from qatlan import addresses
from qatlan.match import TABLE_TYPES, in_scope, rules_by_datastore
from qatlan.model import CM_KIND, AAsset, ACMDef
from qatlan.normalize import fold, normalize_cm
from qatlan.plan import Action
from qatlan.planner.cm import plan_cm
from qatlan.planner.context import Context, atlan_target
from qatlan.planner.resources import plan_announcement, plan_link
from qatlan.planner.tags import retire_atlan_tags, retire_q_tags, split_q_tags
from qatlan.planner.walk import container_address, q_target


def retire(ctx: Context) -> None:
    if ctx.settings.push:
        _retire_atlan(ctx)
        _retire_renamed_sets(ctx)
    if ctx.settings.pull and ctx.matches.domain_guids is None:
        _retire_qualytics(ctx)


def _retire_atlan(ctx: Context) -> None:
    pending = sorted(p for p in ctx.owned_atlan if p not in ctx.visited)
    if not pending:
        return
    claims = _Claims(ctx)
    for prefix in pending:
        found = claims.by_qn.get(prefix[len("atlan:"):], [])
        if len(found) == 1 and claims.released(found[0]):
            _retire_asset(ctx, found[0])


def _retire_asset(ctx: Context, asset: AAsset) -> None:
    plan_cm(ctx, asset, {})
    if ctx.settings.push_tags:
        retire_atlan_tags(ctx, asset)
    plan_link(ctx, asset, None)
    if ctx.settings.announcements:
        plan_announcement(ctx, asset, None)


def _retire_renamed_sets(ctx: Context) -> None:
    s, current = ctx.snapshot, ctx.settings.cm_set_name
    old = []
    for key in ctx.owned:
        asset, part = addresses.parse(key)
        if (part.startswith("cm:") and part[3:] != current and addresses.side(key) == "atlan"
                and not addresses.is_typedef(key)):
            old.append((key, asset, part[3:]))
    if not old:
        return
    by_qn: dict[str, list[AAsset]] = defaultdict(list)
    for a in s.assets.values():
        if a.status == "ACTIVE":
            by_qn[a.qualified_name].append(a)
    for key, prefix, set_name in sorted(old):
        found = by_qn.get(prefix[len("atlan:"):], [])
        cm_def = next(iter(sorted((d for d in s.cm_defs.values() if d.display_name == set_name),
                                  key=lambda d: d.hashed_name)), None)
        if len(found) != 1 or cm_def is None or not in_scope(found[0], ctx.matches.domain_guids):
            continue  # gone, ambiguous, out of scope, or the set itself was deleted
        _retire_set_values(ctx, found[0], key, cm_def, set_name)


def _retire_set_values(ctx: Context, asset: AAsset, key: str, cm_def: ACMDef, set_name: str) -> None:
    hash_of = {a.display_name: a.hashed_name for a in cm_def.attributes}
    have = dict(asset.cm)
    owned = ctx.owned.get(key) or {}
    remove = {}
    for attr, value in sorted(owned.items()):
        kind = CM_KIND.get(attr, "string")
        current = have.get(hash_of.get(attr, ""))
        if current is not None and normalize_cm(kind, current) == normalize_cm(kind, value):
            remove[attr] = current
    if not remove:
        return  # nothing of qatlan's is left there (removed or edited by someone)
    target = atlan_target(asset, "cm", set=set_name, set_hash=cm_def.hashed_name,
                          attributes={a: hash_of[a] for a in remove})
    ctx.add(key, Action.DELETE, remove, None, target,
            f"custom_metadata_set is now {ctx.settings.cm_set_name!r}: qatlan's values in "
            f"{set_name!r} move there")


class _Claims:
    """Which Atlan tables and columns some Qualytics container or field still names."""

    def __init__(self, ctx: Context):
        s, m = ctx.snapshot, ctx.matches
        self.ctx = ctx
        self.by_qn: dict[str, list[AAsset]] = defaultdict(list)
        for a in s.assets.values():
            if a.status == "ACTIVE":
                self.by_qn[a.qualified_name].append(a)
        self.schema_ds = {dm.schema_qn: ds_id for ds_id, dm in m.datastores.items()}
        self.table_container = {guid: cid for cid, guid in m.containers.items()}
        self.rules = rules_by_datastore(s, ctx.rules)
        self._tables: dict[int, set[str]] | None = None
        self._columns: dict[int, set[str]] | None = None

    def released(self, asset: AAsset) -> bool:
        if asset.type_name in TABLE_TYPES:
            ds_id = self.schema_ds.get(asset.parent_qn or "")
            return (ds_id is not None and in_scope(asset, self.ctx.matches.domain_guids)
                    and fold(asset.name) not in self.tables().get(ds_id, set()))
        if asset.type_name == "Column":
            tables = self.by_qn.get(asset.parent_qn or "", [])
            if len(tables) != 1:
                return False
            cid = self.table_container.get(tables[0].guid)
            if cid is None:
                return self.released(tables[0])
            return fold(asset.name) not in self.columns().get(cid, set())
        return False

    def tables(self) -> dict[int, set[str]]:
        if self._tables is None:
            self._tables = defaultdict(set)
            for c in self.ctx.snapshot.containers.values():
                rule = self.rules.get(c.datastore_id)
                self._tables[c.datastore_id].add(fold(rule.table(c.name) if rule else c.name))
        return self._tables

    def columns(self) -> dict[int, set[str]]:
        if self._columns is None:
            s = self.ctx.snapshot
            self._columns = defaultdict(set)
            for f in s.fields.values():
                c = s.containers.get(f.container_id)
                rule = self.rules.get(c.datastore_id) if c else None
                name = rule.column(c.name, f.name) if rule and c else f.name
                self._columns[f.container_id].add(fold(name))
        return self._columns


def _retire_qualytics(ctx: Context) -> None:
    if not ctx.owned_tags:
        return
    s = ctx.snapshot
    for skip in ctx.matches.skipped:
        if skip.reason != "unmatched" or skip.level not in ("container", "field"):
            continue
        if skip.level == "container":
            c = s.containers[skip.id]
            address, tags = container_address(ctx, c), c.tags
            target = q_target("container", c.id, c.datastore_id, c.id)
        else:
            f = s.fields[skip.id]
            c = s.containers.get(f.container_id)
            if c is None:
                continue
            address, tags = container_address(ctx, c, f.name), f.tags
            target = q_target("field", f.id, c.datastore_id, c.id)
        if address in ctx.owned_tags:
            retire_q_tags(ctx, address, target, split_q_tags(tags)[1], keep={})

