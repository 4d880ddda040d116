"""The Qualytics side of apply: external tags on datastores, containers and fields.

Qualytics replaces an asset's whole tag list on write, so every write is read-modify-write
from a fresh read: the asset's current tag names, minus the external tags the plan removes,
plus the ones it adds. Reads: `GET /containers?id=...` (100 ids a page), `GET
/containers/{id}/fields` per container, `GET /datastores/{id}`. Writes: `PATCH /containers`
and `PATCH /fields` in batches of `[qualytics] batch_size`, `PUT /datastores/{id}`. The write
answers (the updated objects) are the read-back. Containers written to are marked dirty so
the next refresh re-reads their fields.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from qatlan.errors import ApiError, NotFound
from qatlan.normalize import fold
from qatlan.plan import Action

from qatlan._apply.batching import Sent, error_text, send_split
from qatlan._apply.context import Ctx, settle_decided
from qatlan._apply.decide import MISSING, qualytics_current
from qatlan._apply.result import Outcome, Work

__all__ = ["apply_qualytics"]

Key = tuple[str, int]  # (kind, id)
#: datastore keys sent back on `PUT /datastores/{id}` besides `tags`
# UNCONFIRMED: the PUT is documented as a full update; these are the CreateJdbcDatastore keys
# a GET returns (the sandbox accepts a partial body)
_DATASTORE_KEYS = ("name", "connection_id", "database", "schema", "description", "enrichment_only",
                   "enrichment_prefix", "enrichment_source_record_limit",
                   "enrichment_remediation_strategy", "high_count_rollup_threshold")


def _key(w: Work) -> Key:
    return w.change.target["kind"], int(w.change.target["id"])


async def apply_qualytics(ctx: Ctx, works: list[Work], converted: set[str]) -> None:
    """Apply the open Qualytics tag changes (tag definitions are prepared before)."""
    works = [w for w in works if w.open]
    if not works:
        return
    try:
        objects = await _read(ctx.clients.qualytics, works)
    except ApiError as exc:
        for w in works:
            w.settle(Outcome.FAILED, f"re-reading the targets failed: {error_text(exc)}")
        ctx.journal.record(works)
        return
    todo = _decide(works, objects, converted)
    ctx.journal.record(w for w in works if not w.open)
    await _write(ctx, todo, objects)


def _decide(works: list[Work], objects: dict[Key, Any], converted: set[str]) -> dict[Key, list[Work]]:
    todo: dict[Key, list[Work]] = defaultdict(list)
    for w in works:
        current = qualytics_current(w.change, objects.get(_key(w)))
        if w.change.action is Action.UPDATE:
            _settle_conversion(w, current, converted)
        elif settle_decided(w, current):
            todo[_key(w)].append(w)
    return todo


def _settle_conversion(w: Work, current: Any, converted: set[str]) -> None:
    """overwrite_tags: the tag was converted before (qtags); here only its result is read."""
    if current is MISSING or current is None:
        w.settle(Outcome.DRIFTED, "the tag is no longer on this asset; run `qatlan plan` again")
    elif current.get("type") != "external":
        w.settle(Outcome.FAILED, f"the tag {current['name']!r} is still a {current.get('type')} tag")
    else:
        w.settle(Outcome.APPLIED if fold(current["name"]) in converted else Outcome.ALREADY)


# --------------------------------------------------------------------------- reading


async def _read(q: Any, works: list[Work]) -> dict[Key, Any]:
    """The current objects the changes are about; a missing object maps to None."""
    ids: dict[str, set[int]] = defaultdict(set)
    field_containers: set[int] = set()
    for w in works:
        kind, id_ = _key(w)
        ids[kind].add(id_)
        if kind == "field":
            field_containers.add(int(w.change.target["container_id"]))
    out: dict[Key, Any] = {}
    await asyncio.gather(
        _read_datastores(q, sorted(ids["datastore"]), out),
        _read_containers(q, sorted(ids["container"]), out),
        *(_read_fields(q, cid, out) for cid in sorted(field_containers)),
    )
    return out


async def _read_datastores(q: Any, ids: list[int], out: dict[Key, Any]) -> None:
    async def one(i: int) -> None:
        try:
            out[("datastore", i)] = await q.get_datastore(i)
        except NotFound:
            out[("datastore", i)] = None

    await asyncio.gather(*(one(i) for i in ids))


async def _read_containers(q: Any, ids: list[int], out: dict[Key, Any]) -> None:
    for i in range(0, len(ids), 100):
        async for c in q.paged("/containers", {"id": ids[i:i + 100]}):
            out[("container", int(c["id"]))] = c


async def _read_fields(q: Any, container_id: int, out: dict[Key, Any]) -> None:
    try:
        items = await q.container_fields(container_id)
    except NotFound:
        return
    for f in items:
        if not f.get("deleted_at"):
            out[("field", int(f["id"]))] = f


# --------------------------------------------------------------------------- writing


def new_tags(obj: dict[str, Any], works: list[Work]) -> list[str]:
    """The object's tag names after the changes: current ones, minus removals, plus additions."""
    drop = {fold(w.change.target["tag"]) for w in works if w.change.action is Action.DELETE}
    names = [str(t["name"]) for t in obj.get("global_tags") or () if fold(str(t.get("name"))) not in drop]
    have = {fold(n) for n in names}
    for w in works:
        if w.change.action is Action.CREATE and fold(w.change.after["name"]) not in have:
            names.append(w.change.after["name"])
            have.add(fold(w.change.after["name"]))
    return names


async def _write(ctx: Ctx, todo: dict[Key, list[Work]], objects: dict[Key, Any]) -> None:
    q, size = ctx.clients.qualytics, ctx.config.qualytics.batch_size
    items: dict[str, list[tuple[Key, list[Work]]]] = defaultdict(list)
    for key, ws in sorted(todo.items()):
        items[key[0]].append((key, ws))
    total, done = sum(len(ws) for ws in todo.values()), [0]

    async def send(kind: str, batch: list[tuple[Key, list[Work]]]) -> None:
        async with ctx.gate:
            sent = await send_split(batch, lambda b: _send(q, kind, b, objects))
        done[0] += _settle(ctx, kind, sent)
        ctx.progress("qualytics", done[0], total)

    jobs = [send(kind, batch) for kind in ("container", "field")
            for batch in (items[kind][i:i + size] for i in range(0, len(items[kind]), size))]
    jobs += [send("datastore", [entry]) for entry in items["datastore"]]
    await asyncio.gather(*jobs)


async def _send(q: Any, kind: str, batch: list[tuple[Key, list[Work]]], objects: dict[Key, Any]) -> list[Any]:
    bodies = [(key[1], new_tags(objects[key], ws)) for key, ws in batch]
    if kind == "container":
        return list(await q.patch_containers([{"id": i, "tags": t} for i, t in bodies]) or [])
    if kind == "field":
        return list(await q.patch_fields([{"id": i, "tags": t} for i, t in bodies]) or [])
    (i, tags), = bodies
    current = objects[batch[0][0]]
    body = {k: current[k] for k in _DATASTORE_KEYS if current.get(k) is not None}
    return [await q.update_datastore(i, {**body, "tags": tags})]


def _settle(ctx: Ctx, kind: str, sent: list[Sent[tuple[Key, list[Work]]]]) -> int:
    n = 0
    for s in sent:
        answers = {int(o["id"]): o for o in s.answer or () if isinstance(o, dict) and "id" in o}
        dirty = []
        for key, ws in s.items:
            for w in ws:
                if s.error is not None:
                    w.settle(Outcome.FAILED, error_text(s.error))
                    continue
                w.settle(Outcome.APPLIED)
                ctx.check(w, qualytics_current(w.change, answers.get(key[1])))
            if s.error is None and kind != "datastore":
                dirty.append(int(ws[0].change.target["container_id"]))
            n += len(ws)
        ctx.journal.record((w for _, ws in s.items for w in ws), dirty)
    return n
