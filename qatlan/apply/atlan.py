"""The Atlan side of apply, chunk by chunk: re-read, decide, write in batches, read back.

A *unit* is what one entity (or one Link delete) carries: one asset with all its tag, custom
metadata and announcement changes; qatlan's Link on one asset (created or updated); or
qatlan's Link archived by GUID (`qatlan.clients.atlan.writes` builds the entities). Units
are cut into chunks of at most 100 (whole batches: 100 with batches of 20 or 50, 90 with
30). For each chunk, up to `parallelism` at once:

1. re-read the targets: `GET /entity/bulk` (one request: assets, and Links by GUID). When the
   chunk creates Links, the same request returns the assets' `links` relationship: every
   Link on the asset, a person's included, so a Link of the configured name that appeared
   since the plan is found (one more read, only then, fetches such Links' URLs);
2. decide each change (already / drifted / write) and journal the settled ones;
3. journal each batch's changes as `intent`, then write it in a bulk upsert of the current
   batch size (Link deletes by GUID), and journal its outcome as soon as it returns;
4. read the written entities back (`GET /entity/bulk`) and record any inconsistent result,
   and each written asset's update time before (step 1) and after (this read) the write: an
   *echo stamp*, by which `qatlan watch`'s poll knows the update for qatlan's own. A Link's
   asset is read back too: attaching a Link moves the asset's update time (the sandbox does;
   UNCONFIRMED for Atlan, where Atlas relationship writes are believed to touch both ends).
   A batch whose answer was lost (a 5xx after the retries, a broken connection) is read
   back the same way: what landed is applied and owned, the rest failed.

Reads use `GET /entity/bulk`, which is consistent right after a write (an index search may
lag a write by about a second).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from qatlan.apply.batching import UNSURE_WRITE, Sent, error_text, send_split
from qatlan.apply.context import Ctx, settle_decided, settle_read_back
from qatlan.apply.decide import MISSING, atlan_current, link_current
from qatlan.apply.definitions import unresolved
from qatlan.apply.result import Outcome, Work
from qatlan.clients import READ_LIMIT, Entities, Names
from qatlan.errors import ApiError
from qatlan.model import ACMAttribute, ACMDef, ALink
from qatlan.plan import Action

__all__ = ["Unit", "apply_atlan", "chunks_of", "read_back_atlan", "units_of"]


@dataclass
class Unit:
    kind: str  # asset | link | link_delete
    guid: str  # the asset's GUID (link units: the Link's GUID when known)
    works: list[Work] = field(default_factory=list)
    #: the GUID to read back after the write (a created Link's is assigned by Atlan)
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


def cm_def_of(works: list[Work], names: Names) -> tuple[ACMDef, ...]:
    """The custom metadata sets (hashed names only) the re-reads must return values of: the
    configured one, and a renamed-away one whose values qatlan removes."""
    sets: dict[str, dict[str, str]] = {}
    for w in works:
        c = w.change
        if c.target.get("part") != "cm":
            continue
        set_hash = names.set_hash(c)
        if not set_hash:
            continue
        attrs = sets.setdefault(set_hash, {})
        for a in set(c.before or {}) | set(c.after or {}):
            h = names.attr_hash(c, a)
            if h:
                attrs[h] = a
    return tuple(ACMDef(s, s, tuple(ACMAttribute(h, a) for h, a in sorted(attrs.items())))
                 for s, attrs in sorted(sets.items()))


def chunks_of(units: list[Unit], batch_size: int) -> list[list[Unit]]:
    per = max(1, batch_size) if batch_size >= READ_LIMIT else (READ_LIMIT // batch_size) * batch_size
    return [units[i:i + per] for i in range(0, len(units), per)]


async def apply_atlan(ctx: Ctx, works: list[Work]) -> None:
    """Apply the open Atlan value changes in `works` (definitions are done before)."""
    for w in works:
        why = unresolved(w, ctx.names) if w.open else None
        if why:
            w.settle(Outcome.SKIPPED, why)
    ctx.journal.record(w for w in works if not w.open)
    units = units_of([w for w in works if w.open])
    if not units:
        return
    cm_def = cm_def_of([w for u in units for w in u.works], ctx.names)
    total, done = len(units), [0]

    async def run(chunk: list[Unit]) -> None:
        async with ctx.gate:
            await _Chunk(ctx, chunk, cm_def).run()
        done[0] += len(chunk)
        ctx.progress("atlan", done[0], total)

    await asyncio.gather(*(run(c) for c in chunks_of(units, ctx.config.atlan.batch_size)))


async def read_back_atlan(ctx: Ctx, works: list[Work], cm_def: tuple[ACMDef, ...] = ()) -> None:
    """Settle Atlan changes whose write may or may not have landed (an open intent, a lost
    answer) from a fresh read: landed → applied, not landed → failed, else drifted.
    Raises ApiError when the targets cannot be read (the changes stay open)."""
    units = units_of(works)
    cm_def = cm_def or cm_def_of(works, ctx.names)
    for chunk in chunks_of(units, READ_LIMIT):
        entities = await read_targets(ctx, chunk, cm_def)
        for u in chunk:
            for w in u.works:
                settle_read_back(w, current_value(u, w, entities, ctx.names))


def _is_link_create(u: Unit) -> bool:
    return u.kind == "link" and not u.guid


async def read_targets(ctx: Ctx, units: list[Unit], cm_def: tuple[ACMDef, ...]) -> Entities:
    """The chunk's assets and Links (`GET /entity/bulk`); with Links to create, every Link
    of the configured name already on those assets too."""
    atlan = ctx.clients.atlan
    guids = [u.guid for u in units if u.kind != "link" or u.guid]
    guids += [_asset_of(u) for u in units if u.kind == "link"]
    creates = [u for u in units if _is_link_create(u)]
    entities = await atlan.read_entities(guids, cm_def, related_links=bool(creates))
    named = [link.guid for u in creates for link in _same_name(u, entities)
             if link.guid not in entities.links]
    if named:  # rare: a Link of the name already there (a person's, or a killed run's)
        entities.links.update((await atlan.read_entities(named)).links)
    return entities


def _same_name(u: Unit, entities: Entities) -> list[ALink]:
    t = u.works[0].change.target
    return [link for link in entities.related_links.get(t["guid"], ()) if link.name == t["link_name"]]


def current_value(u: Unit, w: Work, entities: Entities, names: Names) -> Any:
    """The change's target value now, in the shape of its before/after (MISSING: gone)."""
    if u.kind == "asset":
        return atlan_current(w.change, entities.assets.get(u.guid), names)
    if u.kind == "link" and w.change.target["guid"] not in entities.assets:
        return MISSING  # the asset the Link belongs to is gone
    if u.guid:
        return link_current(entities.links.get(u.guid))
    # a Link to create: any Link of that name on the asset, whoever made it
    found = [entities.links.get(link.guid) or link for link in _same_name(u, entities)]
    want = w.change.after
    for link in found:
        if link_current(link) == want:
            return want
    return link_current(found[0]) if found else None


def _fail(ctx: Ctx, units: list[Unit], why: str) -> None:
    for u in units:
        for w in u.works:
            w.settle(Outcome.FAILED, why)
    ctx.journal.record(w for u in units for w in u.works)


class _Chunk:
    def __init__(self, ctx: Ctx, units: list[Unit], cm_def: tuple[ACMDef, ...]):
        self.ctx, self.units, self.atlan, self.cm_def = ctx, units, ctx.clients.atlan, cm_def
        self.unsure: list[Unit] = []

    async def run(self) -> None:
        try:
            entities = await read_targets(self.ctx, self.units, self.cm_def)
        except ApiError as exc:
            _fail(self.ctx, self.units, f"re-reading the targets failed: {error_text(exc)}")
            return
        todo = self._decide(entities)
        self.ctx.journal.record(w for u in self.units for w in u.works if not w.open)
        written = await self._write(todo, entities)
        if written:
            await self._verify(written, entities)
        if self.unsure:
            await self._read_back(self.unsure)

    def _decide(self, entities: Entities) -> list[Unit]:
        todo = []
        for u in self.units:
            keep = []
            for w in u.works:
                current = current_value(u, w, entities, self.ctx.names)
                if _is_link_create(u) and current not in (None, MISSING) and current != w.change.after:
                    w.settle(Outcome.DRIFTED, f"the asset has a Link named {w.change.target['link_name']!r} "
                                              "that qatlan did not create; no second one is added")
                elif settle_decided(w, current):
                    keep.append(w)
            if keep:
                todo.append(Unit(u.kind, u.guid, keep))
        return todo

    # ---- writing

    async def _write(self, units: list[Unit], entities: Entities) -> list[Unit]:
        upserts = [u for u in units if u.kind != "link_delete"]
        deletes = [u for u in units if u.kind == "link_delete"]
        written: list[Unit] = []
        while upserts:
            batch, upserts = upserts[:self.ctx.sizer.size], upserts[self.ctx.sizer.size:]
            self.ctx.journal.intend(w for u in batch for w in u.works)
            written += self._settle(await send_split(batch, lambda b: self._upsert(b, entities)))
        size = self.ctx.config.atlan.batch_size
        for i in range(0, len(deletes), size):
            self.ctx.journal.intend(w for u in deletes[i:i + size] for w in u.works)
            written += self._settle(await send_split(deletes[i:i + size], self._delete))
        return written

    async def _upsert(self, units: list[Unit], entities: Entities) -> dict[int, str]:
        return await self.atlan.upsert_changes(
            [([w.change for w in u.works], _name(u, entities)) for u in units], self.ctx.names)

    async def _delete(self, units: list[Unit]) -> None:
        await self.atlan.delete_entities([u.guid for u in units])

    def _settle(self, sent: list[Sent[Unit]]) -> list[Unit]:
        ok: list[Unit] = []
        for s in sent:
            self.ctx.sizer.observe(s.seconds)
            if isinstance(s.error, UNSURE_WRITE):  # it may have landed: read back, intent stays
                for u in s.items:
                    for w in u.works:
                        w.settle(Outcome.FAILED, error_text(s.error))
                self.unsure += s.items
                continue
            if s.error is not None:
                for u in s.items:
                    for w in u.works:
                        w.settle(Outcome.FAILED, error_text(s.error))
            else:
                assigned = s.answer or {}
                for i, u in enumerate(s.items):
                    for w in u.works:
                        w.settle(Outcome.APPLIED)
                    u.written_guid = u.guid or assigned.get(i)
                    ok.append(u)
            self.ctx.journal.record(w for u in s.items for w in u.works)
        return ok

    # ---- reading back

    async def _read_back(self, units: list[Unit]) -> None:
        works = [w for u in units for w in u.works]
        try:
            await read_back_atlan(self.ctx, works, self.cm_def)
        except ApiError:
            return  # the intents stay open: the next command settles them
        self.ctx.journal.record(works)

    async def _verify(self, units: list[Unit], before: Entities) -> None:
        guids = [u.written_guid for u in units if u.written_guid]
        guids += [_asset_of(u) for u in units if u.kind == "link"]
        try:
            entities = await self.atlan.read_entities(guids, self.cm_def)
        except ApiError:
            entities = Entities.empty()
        stamps = {}
        for u in units:
            g = _asset_of(u) if u.kind == "link" else u.guid if u.kind == "asset" else ""
            was, now = before.assets.get(g), entities.assets.get(g)
            if was is not None and now is not None and was.update_time and now.update_time:
                stamps[g] = (g, was.update_time, now.update_time)
        self.ctx.journal.echoes(stamps.values())
        for u in units:
            key = u.written_guid or ""
            for w in u.works:
                if u.kind == "asset":
                    current = atlan_current(w.change, entities.assets.get(key), self.ctx.names)
                else:
                    current = link_current(entities.links.get(key))
                self.ctx.check(w, current)


def _asset_of(unit: Unit) -> str:
    """A Link unit's asset GUID."""
    return unit.works[0].change.target["guid"]


def _name(unit: Unit, entities: Entities) -> str | None:
    """The asset's name as Atlan has it (None when unread: the client uses its QN's end)."""
    asset = entities.assets.get(unit.guid) if unit.kind == "asset" else None
    return asset.name if asset is not None else None
