"""The Qualytics side of apply: external tags on datastores, containers and fields.

Qualytics replaces an asset's whole tag list on write, so every write is read-modify-write
from a fresh read: the asset's current tag names, minus the external tags the plan removes,
plus the ones it adds. Reads: containers by id (100 ids a page), each container's fields,
each datastore. Writes: container and field tag lists in batches of `[qualytics]
batch_size`, a datastore's one at a time. The write answers (the updated objects' tags) are
the read-back. Containers written to are marked dirty so the next refresh re-reads their
fields.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from qatlan.apply.batching import Sent, error_text, send_split
from qatlan.apply.context import Ctx, settle_decided
from qatlan.apply.decide import MISSING, qualytics_current
from qatlan.apply.result import Outcome, Work
from qatlan.clients import QualyticsClient
from qatlan.errors import ApiError, NotFound
from qatlan.model import QTag
from qatlan.normalize import fold
from qatlan.plan import Action

__all__ = ["apply_qualytics"]

Key = tuple[str, int]  # (kind, id)
#: an object's tags, or None when it is gone
Tags = tuple[QTag, ...] | None


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


def _decide(works: list[Work], objects: dict[Key, Tags], converted: set[str]) -> dict[Key, list[Work]]:
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


async def _read(q: QualyticsClient, works: list[Work]) -> dict[Key, Tags]:
    """The current tags of the objects the changes are about; a missing object maps to None."""
    ids: dict[str, set[int]] = defaultdict(set)
    field_containers: set[int] = set()
    for w in works:
        kind, id_ = _key(w)
        ids[kind].add(id_)
        if kind == "field":
            field_containers.add(int(w.change.target["container_id"]))
    out: dict[Key, Tags] = {}
    await asyncio.gather(
        _read_datastores(q, sorted(ids["datastore"]), out),
        _read_containers(q, sorted(ids["container"]), out),
        *(_read_fields(q, cid, out) for cid in sorted(field_containers)),
    )
    return out


async def _read_datastores(q: QualyticsClient, ids: list[int], out: dict[Key, Tags]) -> None:
    async def one(i: int) -> None:
        try:
            out[("datastore", i)] = (await q.datastore(i)).tags
        except NotFound:
            out[("datastore", i)] = None

    await asyncio.gather(*(one(i) for i in ids))


async def _read_containers(q: QualyticsClient, ids: list[int], out: dict[Key, Tags]) -> None:
    for c in await q.containers_by_id(ids):
        out[("container", c.id)] = c.tags


async def _read_fields(q: QualyticsClient, container_id: int, out: dict[Key, Tags]) -> None:
    try:
        fields = await q.fields(container_id)
    except NotFound:
        return
    for f in fields:
        out[("field", f.id)] = f.tags


# --------------------------------------------------------------------------- writing


def new_tags(tags: tuple[QTag, ...], works: list[Work]) -> list[str]:
    """The object's tag names after the changes: current ones, minus removals, plus additions."""
    drop = {fold(w.change.target["tag"]) for w in works if w.change.action is Action.DELETE}
    names = [t.name for t in tags if fold(t.name) not in drop]
    have = {fold(n) for n in names}
    for w in works:
        if w.change.action is Action.CREATE and fold(w.change.after["name"]) not in have:
            names.append(w.change.after["name"])
            have.add(fold(w.change.after["name"]))
    return names


async def _write(ctx: Ctx, todo: dict[Key, list[Work]], objects: dict[Key, Tags]) -> None:
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


async def _send(q: QualyticsClient, kind: str, batch: list[tuple[Key, list[Work]]],
                objects: dict[Key, Tags]) -> dict[int, tuple[QTag, ...]]:
    """Write the batch's new tag lists; returns the tags each object has now, by id."""
    tags = [(key[1], new_tags(objects[key] or (), ws)) for key, ws in batch]
    if kind == "container":
        return await q.set_container_tags(tags)
    if kind == "field":
        return await q.set_field_tags(tags)
    (i, names), = tags
    return {i: await q.set_datastore_tags(i, names)}


def _settle(ctx: Ctx, kind: str, sent: list[Sent[tuple[Key, list[Work]]]]) -> int:
    n = 0
    for s in sent:
        answers = s.answer or {}
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
