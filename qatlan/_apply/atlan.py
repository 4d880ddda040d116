"""The Atlan side of apply, chunk by chunk: re-read, decide, write in batches, read back.

Units (see `atlan_payload`) are cut into chunks of at most 100 (whole batches: 100 with
batches of 20 or 50, 90 with 30). Links to create have no GUID yet: before the first chunk,
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
from typing import Any

from qatlan.errors import ApiError, NotFound, PermissionDenied

from qatlan._apply.atlan_payload import Unit, asset_entity, flags_of, link_entity, units_of
from qatlan._apply.batching import Sent, error_text, send_split
from qatlan._apply.context import Ctx, settle_decided
from qatlan._apply.decide import MISSING, atlan_current, link_current
from qatlan._apply.definitions import unresolved
from qatlan._apply.result import Outcome, Work

__all__ = ["READ_LIMIT", "apply_atlan"]

#: GUIDs per `GET /entity/bulk` and Link qualifiedNames per search
READ_LIMIT = 100
BULK = "/api/meta/entity/bulk"


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
    try:
        links = await find_links(ctx.clients.atlan, _link_creates(units), ctx.config.atlan.page_size)
    except ApiError as exc:  # the Links to create fail; every other change goes ahead
        creates = [u for u in units if _is_link_create(u)]
        _fail(ctx, creates, f"looking up the Links to create failed: {error_text(exc)}")
        units, links = [u for u in units if not _is_link_create(u)], {}
    total, done = len(units), [0]

    async def run(chunk: list[Unit]) -> None:
        async with ctx.gate:
            await _Chunk(ctx, chunk, links).run()
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
    def __init__(self, ctx: Ctx, units: list[Unit], links: dict[str, Any]):
        self.ctx, self.units, self.atlan, self.links = ctx, units, ctx.clients.atlan, links

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

    async def _read(self, units: list[Unit]) -> dict[str, Any]:
        guids = [u.guid for u in units if u.kind != "link" or u.guid]
        guids += [u.works[0].change.target["guid"] for u in units if u.kind == "link"]
        return await get_entities(self.atlan, guids)

    def _decide(self, entities: dict[str, Any], links: dict[str, Any]) -> list[Unit]:
        todo = []
        for u in self.units:
            keep = []
            for w in u.works:
                if u.kind == "asset":
                    current = atlan_current(w.change, entities.get(u.guid), self.ctx.names)
                elif u.kind == "link" and w.change.target["guid"] not in entities:
                    current = MISSING  # the asset the Link belongs to is gone
                elif u.guid:
                    current = link_current(entities.get(u.guid))
                else:
                    current = link_current(links.get(w.change.target["link_qualified_name"]))
                if settle_decided(w, current):
                    keep.append(w)
            if keep:
                todo.append(Unit(u.kind, u.guid, keep))
        return todo

    # ---- writing

    async def _write(self, units: list[Unit], entities: dict[str, Any]) -> list[Unit]:
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

    async def _upsert(self, units: list[Unit], entities: dict[str, Any]) -> Any:
        payload = [asset_entity(u, _name(u, entities), self.ctx.names) if u.kind == "asset" else link_entity(u)
                   for u in units]
        return await self.atlan.bulk_upsert(payload, **flags_of(units))

    async def _delete(self, units: list[Unit]) -> Any:
        params = {"guid": [u.guid for u in units], "deleteType": "SOFT"}
        # AtlanClient has no delete call yet: bulk archive by GUID (reference §8.5)
        return await self.atlan.http.request("DELETE", BULK, params=params, idempotent=True)

    def _settle(self, sent: list[Sent[Unit]]) -> list[Unit]:
        ok: list[Unit] = []
        for s in sent:
            self.ctx.sizer.observe(s.seconds)
            if s.error is not None:
                for u in s.items:
                    for w in u.works:
                        w.settle(Outcome.FAILED, error_text(s.error))
            else:
                assigned = (s.answer or {}).get("guidAssignments") or {}
                for i, u in enumerate(s.items):
                    for w in u.works:
                        w.settle(Outcome.APPLIED)
                    u.written_guid = u.guid or assigned.get(f"-{i + 1}")
                    ok.append(u)
            self.ctx.journal.record(w for u in s.items for w in u.works)
        return ok

    # ---- reading back

    async def _verify(self, units: list[Unit]) -> None:
        guids = [u.written_guid for u in units if u.written_guid]
        try:
            entities = await get_entities(self.atlan, guids)
        except ApiError:
            entities = {}
        for u in units:
            found = entities.get(u.written_guid or "")
            for w in u.works:
                current = atlan_current(w.change, found, self.ctx.names) if u.kind == "asset" else link_current(found)
                self.ctx.check(w, current)


def _name(unit: Unit, entities: dict[str, Any]) -> str:
    """The asset's name as Atlan has it (the last part of its qualifiedName if unread)."""
    name = ((entities.get(unit.guid) or {}).get("attributes") or {}).get("name")
    return str(name or unit.works[0].change.target["qualified_name"].rsplit("/", 1)[-1])


# --------------------------------------------------------------------------- reads


async def get_entities(atlan: Any, guids: list[str]) -> dict[str, Any]:
    """Entities by GUID, `READ_LIMIT` per request; GUIDs Atlan no longer has are left out.

    `GET /entity/bulk` refuses the whole request when one GUID is unknown (404) or not
    readable (403): such a request is split until the culprit stands alone.
    """
    out: dict[str, Any] = {}
    unique = list(dict.fromkeys(g for g in guids if g))
    parts = [unique[i:i + READ_LIMIT] for i in range(0, len(unique), READ_LIMIT)]
    await asyncio.gather(*(_get_some(atlan, p, out) for p in parts))
    return out


async def _get_some(atlan: Any, guids: list[str], out: dict[str, Any]) -> None:
    try:
        for e in await atlan.get_entities(guids):
            out[str(e.get("guid"))] = e
    except (NotFound, PermissionDenied):
        if len(guids) == 1:
            return
        half = len(guids) // 2
        await _get_some(atlan, guids[:half], out)
        await _get_some(atlan, guids[half:], out)


async def find_links(atlan: Any, qns: list[str], per_search: int = 300) -> dict[str, Any]:
    """ACTIVE Links by qualifiedName: an index search per `per_search` names, concurrently.

    With `per_search` at most the search page size, each search is answered in one page.
    """
    out: dict[str, Any] = {}
    unique = list(dict.fromkeys(qns))
    per = max(1, per_search)

    async def one(part: list[str]) -> None:
        query = {"bool": {"filter": [
            {"term": {"__typeName.keyword": {"value": "Link"}}},
            {"terms": {"qualifiedName": part}},
            {"term": {"__state": {"value": "ACTIVE"}}},
        ]}}
        async for hit in atlan.search(query, attributes=["name", "qualifiedName", "link"]):
            qn = (hit.get("attributes") or {}).get("qualifiedName")
            if qn:
                out[qn] = hit

    await asyncio.gather(*(one(unique[i:i + per]) for i in range(0, len(unique), per)))
    return out
