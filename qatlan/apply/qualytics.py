"""The Qualytics side of apply: external tags on datastores, containers and fields.

Qualytics replaces an asset's whole tag list on write and has no add/remove-tag operation
and no version or ETag to condition a write on (reference §7: tags are applied by name
through `PATCH /containers`, `PATCH /fields` and `PUT /datastores/{id}`). So each batch is
compare-and-write, as close as the API allows:

1. read the batch's objects right before writing them (containers by id, one request per
   100; each container's fields; a datastore by id): the tag lists the write starts from;
2. decide each change from that read (already / drifted / write) and journal the settled ones;
3. journal the batch's changes as `intent`, then send the new lists: the read's tag names,
   minus the external tags the plan removes, plus the ones it adds;
4. the write answer (the updated objects' tags) is the read-back: a tag the write kept that
   the answer lacks is written back once; a change whose tag is not as planned is an
   inconsistent result. A lost answer (a 5xx after the retries, a broken connection) is
   settled by reading the objects again.

What remains: a tag someone adds to the same object between step 1 and the server applying
step 3 (one request's time, the journal commit between them) is replaced by qatlan's list.
Batches run up to `parallelism` at once, so an object is never read at the start of a long
apply and written minutes later. Fields are batched by container, so a batch reads few
containers' fields. Containers written to are marked dirty so the next refresh re-reads
their fields.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from qatlan.apply.batching import UNSURE_WRITE, Sent, error_text, send_split
from qatlan.apply.context import Ctx, settle_decided, settle_read_back
from qatlan.apply.decide import MISSING, qualytics_current
from qatlan.apply.result import Outcome, Work
from qatlan.clients import QualyticsClient
from qatlan.errors import ApiError, NotFound
from qatlan.model import QTag
from qatlan.normalize import fold
from qatlan.plan import Action

__all__ = ["apply_qualytics", "read_back_qualytics"]

Key = tuple[str, int]  # (kind, id)
#: an object's tags, or None when it is gone
Tags = tuple[QTag, ...] | None
Batch = list[tuple[Key, list[Work]]]


def _key(w: Work) -> Key:
    return w.change.target["kind"], int(w.change.target["id"])


def _order(item: tuple[Key, list[Work]]) -> tuple:
    """Fields by container, then id: a batch of fields reads as few containers as it can."""
    (kind, id_), ws = item
    return kind, int(ws[0].change.target.get("container_id") or 0), id_


def batches_of(works: Iterable[Work], size: int) -> list[tuple[str, Batch]]:
    """The open changes grouped by object, cut into write batches: containers and fields
    `size` objects a request, a datastore alone."""
    by_key: dict[Key, list[Work]] = defaultdict(list)
    for w in works:
        by_key[_key(w)].append(w)
    items: dict[str, Batch] = defaultdict(list)
    for key, ws in sorted(by_key.items(), key=_order):
        items[key[0]].append((key, ws))
    out = [(kind, items[kind][i:i + size]) for kind in ("container", "field")
           for i in range(0, len(items[kind]), size)]
    return out + [("datastore", [entry]) for entry in items["datastore"]]


async def apply_qualytics(ctx: Ctx, works: list[Work], converted: set[str]) -> None:
    """Apply the open Qualytics tag changes (tag definitions are prepared before)."""
    works = [w for w in works if w.open]
    if not works:
        return
    batches = batches_of(works, ctx.config.qualytics.batch_size)
    total, done = len(works), [0]

    async def run(kind: str, batch: Batch) -> None:
        async with ctx.gate:
            await _Batch(ctx, kind, batch, converted).run()
        done[0] += sum(len(ws) for _, ws in batch)
        ctx.progress("qualytics", done[0], total)

    await asyncio.gather(*(run(kind, batch) for kind, batch in batches))


async def read_back_qualytics(q: QualyticsClient, works: list[Work]) -> None:
    """Settle changes whose write may or may not have landed from a fresh read: landed →
    applied, not landed → failed, else drifted. Raises ApiError when the read fails."""
    objects = await _read(q, works)
    for w in works:
        settle_read_back(w, qualytics_current(w.change, objects.get(_key(w))))


class _Batch:
    def __init__(self, ctx: Ctx, kind: str, batch: Batch, converted: set[str]):
        self.ctx, self.kind, self.batch, self.converted = ctx, kind, batch, converted
        self.q = ctx.clients.qualytics

    @property
    def works(self) -> list[Work]:
        return [w for _, ws in self.batch for w in ws]

    async def run(self) -> None:
        works = self.works
        try:
            objects = await _read(self.q, works)  # the lists this write starts from
        except ApiError as exc:
            for w in works:
                w.settle(Outcome.FAILED, f"re-reading the targets failed: {error_text(exc)}")
            self.ctx.journal.record(works)
            return
        todo = _decide(works, objects, self.converted)
        self.ctx.journal.record(w for w in works if not w.open)
        if not todo:
            return
        items = sorted(todo.items(), key=_order)
        self.ctx.journal.intend(w for _, ws in items for w in ws)
        sent = await send_split(items, lambda b: _send(self.q, self.kind, b, objects))
        await self._settle(sent, objects)

    async def _settle(self, sent: list[Sent[tuple[Key, list[Work]]]], objects: dict[Key, Tags]) -> None:
        for s in sent:
            works = [w for _, ws in s.items for w in ws]
            if isinstance(s.error, UNSURE_WRITE):  # it may have landed: read it back
                for w in works:
                    w.settle(Outcome.FAILED, error_text(s.error))
                try:
                    await read_back_qualytics(self.q, works)
                except ApiError:
                    continue  # the intents stay open: the next command settles them
            elif s.error is not None:
                for w in works:
                    w.settle(Outcome.FAILED, error_text(s.error))
            else:
                answers = await self._keep_tags(s.items, objects, s.answer or {})
                for key, ws in s.items:
                    for w in ws:
                        w.settle(Outcome.APPLIED)
                        self.ctx.check(w, qualytics_current(w.change, answers.get(key[1])))
            landed = s.error is None or isinstance(s.error, UNSURE_WRITE)
            dirty = [int(ws[0].change.target["container_id"]) for _, ws in s.items
                     if landed and self.kind != "datastore"]
            self.ctx.journal.record(works, dirty)

    async def _keep_tags(self, items: list[tuple[Key, list[Work]]], objects: dict[Key, Tags],
                         answers: dict[int, tuple[QTag, ...]]) -> dict[int, tuple[QTag, ...]]:
        """The read-back: a tag the write meant to keep (or add) that the answer lacks is
        written back once, in one more request for the objects concerned."""
        again = []
        for key, ws in items:
            if key[1] not in answers:
                continue
            now = [t.name for t in answers[key[1]]]
            have = {fold(n) for n in now}
            lost = [n for n in new_tags(objects.get(key) or (), ws) if fold(n) not in have]
            if lost:
                again.append((key[1], now + lost))
        if not again:
            return answers
        try:
            fixed = await _write_lists(self.q, self.kind, again)
        except ApiError:
            return answers  # the check reports what is missing
        return {**answers, **fixed}


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


async def _send(q: QualyticsClient, kind: str, batch: list[tuple[Key, list[Work]]],
                objects: dict[Key, Tags]) -> dict[int, tuple[QTag, ...]]:
    """Write the batch's new tag lists; returns the tags each object has now, by id."""
    return await _write_lists(q, kind, [(key[1], new_tags(objects[key] or (), ws)) for key, ws in batch])


async def _write_lists(q: QualyticsClient, kind: str,
                       tags: list[tuple[int, list[str]]]) -> dict[int, tuple[QTag, ...]]:
    if kind == "container":
        return await q.set_container_tags(tags)
    if kind == "field":
        return await q.set_field_tags(tags)
    (i, names), = tags
    return {i: await q.set_datastore_tags(i, names)}
