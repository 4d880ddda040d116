"""The Atlan side of apply, chunk by chunk: re-read, decide, write in batches, read back.

A *unit* is what one entity (or one Link delete) carries: one asset with all its tag, custom
metadata and announcement changes; qatlan's Link on one asset (created or updated); or
qatlan's Link archived by GUID (`qatlan.clients.atlan.writes` builds the entities). Units
are cut into chunks of at most 100 (whole batches: 100 with batches of 20 or 50, 90 with
30). Links to create have no GUID yet: before the first chunk,
one index search per page (`[atlan] page_size` qualifiedNames, 300 by default) finds the ones
that already exist, for the whole run. Then for each chunk, up to `parallelism` at once:

1. re-read the targets: `GET /entity/bulk` (one request: assets, and Links by GUID);
2. decide each change (already / drifted / write) and journal the settled ones;
3. write the rest in bulk upserts of the current batch size (Link deletes by GUID), journal
   each batch as soon as it returns;
4. read the written entities back (`GET /entity/bulk`) and record any inconsistent result.

Reads use `GET /entity/bulk`, which is consistent right after a write. The index search for
Links not created yet may lag a write by about a second, and a Link created by someone else
after it ran is not seen: either only costs a repeat of an idempotent upsert, because a
Link's qualifiedName is deterministic (`<asset qualifiedName>/<link name>`) and the bulk
upsert matches an existing entity by (typeName, qualifiedName).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from qatlan.apply.batching import Sent, error_text, send_split
from qatlan.apply.context import Ctx, settle_decided
from qatlan.apply.decide import MISSING, atlan_current, link_current
from qatlan.apply.definitions import unresolved
from qatlan.apply.result import Outcome, Work
from qatlan.clients import READ_LIMIT, Entities, Names
from qatlan.errors import ApiError
from qatlan.model import ACMAttribute, ACMDef, ALink
from qatlan.plan import Action

__all__ = ["Unit", "apply_atlan", "chunks_of", "units_of"]


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


def cm_def_of(works: list[Work], names: Names) -> ACMDef | None:
    """The custom metadata set (hashed names only) the re-reads must return values of."""
    set_hash, attrs = None, {}
    for w in works:
        c = w.change
        if c.target.get("part") != "cm":
            continue
        set_hash = set_hash or names.set_hash(c)
        for a in set(c.before or {}) | set(c.after or {}):
            h = names.attr_hash(c, a)
            if h:
                attrs[h] = a
    if set_hash is None:
        return None
    return ACMDef(set_hash, set_hash, tuple(ACMAttribute(h, a) for h, a in sorted(attrs.items())))


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
    try:
        links = await ctx.clients.atlan.find_links(_link_creates(units), ctx.config.atlan.page_size)
    except ApiError as exc:  # the Links to create fail; every other change goes ahead
        creates = [u for u in units if _is_link_create(u)]
        _fail(ctx, creates, f"looking up the Links to create failed: {error_text(exc)}")
        units, links = [u for u in units if not _is_link_create(u)], {}
    total, done = len(units), [0]

    async def run(chunk: list[Unit]) -> None:
        async with ctx.gate:
            await _Chunk(ctx, chunk, links, cm_def).run()
        done[0] += len(chunk)
        ctx.progress("atlan", done[0], total)

    await asyncio.gather(*(run(c) for c in chunks_of(units, ctx.config.atlan.batch_size)))


def _is_link_create(u: Unit) -> bool:
    return u.kind == "link" and not u.guid


def _link_creates(units: list[Unit]) -> list[str]:
    return [u.works[0].change.target["link_qualified_name"] for u in units if _is_link_create(u)]


def _fail(ctx: Ctx, units: list[Unit], why: str) -> None:
    for u in units:
        for w in u.works:
            w.settle(Outcome.FAILED, why)
    ctx.journal.record(w for u in units for w in u.works)


class _Chunk:
    def __init__(self, ctx: Ctx, units: list[Unit], links: dict[str, ALink], cm_def: ACMDef | None):
        self.ctx, self.units, self.atlan, self.links = ctx, units, ctx.clients.atlan, links
        self.cm_def = cm_def

    async def run(self) -> None:
        try:
            entities = await self._read(self.units)
        except ApiError as exc:
            _fail(self.ctx, self.units, f"re-reading the targets failed: {error_text(exc)}")
            return
        todo = self._decide(entities, self.links)
        self.ctx.journal.record(w for u in self.units for w in u.works if not w.open)
        written = await self._write(todo, entities)
        if written:
            await self._verify(written)

    # ---- reading

    async def _read(self, units: list[Unit]) -> Entities:
        guids = [u.guid for u in units if u.kind != "link" or u.guid]
        guids += [u.works[0].change.target["guid"] for u in units if u.kind == "link"]
        return await self.atlan.read_entities(guids, self.cm_def)

    def _decide(self, entities: Entities, links: dict[str, ALink]) -> list[Unit]:
        todo = []
        for u in self.units:
            keep = []
            for w in u.works:
                if u.kind == "asset":
                    current = atlan_current(w.change, entities.assets.get(u.guid), self.ctx.names)
                elif u.kind == "link" and w.change.target["guid"] not in entities.assets:
                    current = MISSING  # the asset the Link belongs to is gone
                elif u.guid:
                    current = link_current(entities.links.get(u.guid))
                else:
                    current = link_current(links.get(w.change.target["link_qualified_name"]))
                if settle_decided(w, current):
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
            written += self._settle(await send_split(batch, lambda b: self._upsert(b, entities)))
        size = self.ctx.config.atlan.batch_size
        for i in range(0, len(deletes), size):
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

    async def _verify(self, units: list[Unit]) -> None:
        guids = [u.written_guid for u in units if u.written_guid]
        try:
            entities = await self.atlan.read_entities(guids, self.cm_def)
        except ApiError:
            entities = Entities({}, {})
        for u in units:
            key = u.written_guid or ""
            for w in u.works:
                if u.kind == "asset":
                    current = atlan_current(w.change, entities.assets.get(key), self.ctx.names)
                else:
                    current = link_current(entities.links.get(key))
                self.ctx.check(w, current)


def _name(unit: Unit, entities: Entities) -> str | None:
    """The asset's name as Atlan has it (None when unread: the client uses its QN's end)."""
    asset = entities.assets.get(unit.guid) if unit.kind == "asset" else None
    return asset.name if asset is not None else None
