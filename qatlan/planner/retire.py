"""Retiring what qatlan owns on assets whose other side is gone.

- Atlan side: an Atlan table/view (column) that qatlan wrote to, in a matched datastore's
  schema (a matched table), that no Qualytics container (field) claims any more, not even by a
  case-insensitive name or a rename: its owned values, tags, Link and announcement go.
  Schemas, assets of unmatched datastores and assets still claimed (ambiguous, out of the
  domains) are left alone: qatlan cannot tell they are gone.
- Qualytics side: a container or field skipped as `unmatched` (its Atlan asset is gone) loses
  the external tags qatlan attached. Not done with a domain filter, where "gone" and "moved out
  of the domains" look the same.
"""

from __future__ import annotations

from collections import defaultdict

from qatlan.match import TABLE_TYPES, in_scope, rules_by_datastore
from qatlan.model import AAsset
from qatlan.normalize import fold
from qatlan.planner.cm import plan_cm
from qatlan.planner.context import Context
from qatlan.planner.resources import plan_announcement, plan_link
from qatlan.planner.tags import retire_atlan_tags, retire_q_tags, split_q_tags
from qatlan.planner.walk import container_address, q_target


def retire(ctx: Context) -> None:
    if ctx.settings.push:
        _retire_atlan(ctx)
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

