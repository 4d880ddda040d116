"""`qatlan refresh`: read both catalogs into a new snapshot in the state.

Incremental by default, where the APIs allow it:

- Atlan: only assets whose `__modificationTimestamp` moved since the last snapshot's
  watermark (minus a safety margin) are read again; archived ones come back with status
  DELETED and are dropped; purged ones are caught by comparing the server's count of active
  assets with the merged snapshot (a mismatch falls back to a full read).
- Qualytics: the container list and the tag list are always read (cheap, and they show
  deletions); a container's fields, and the per-field check and anomaly counts, are read
  again when
  - the container's `last_profiled`, `last_scanned`, active check or anomaly count moved
    (profiles and scans: scores, new and missing fields), or qatlan itself wrote to it since;
  - a field's tags changed: one field-profile listing per tag across the synced datastores
    (`GET /field-profiles?datastore[]=...&tag[]=T`, pages of 100) shows every tagged field
    with its tags, so a tag added or removed by hand is seen on the next refresh;
  - its fields are the oldest read: each refresh re-reads the share of containers that the
    time since the last refresh is of `[qualytics] max_field_age`, oldest first, and every
    container whose fields are older than that. What no cheap signal shows (a check moved
    from one field to another without changing the container's counts) therefore waits at
    most `max_field_age`; the plan states the age of the oldest field read it relies on.

`--full` reads everything. Any part that cannot be read marks the snapshot incomplete and
says what is missing; a plan built on it removes nothing.

The bulk of a read (Qualytics fields; Atlan tables, views and columns of a full read) is not
held: each page is staged in a temporary table of the state's connection as it arrives
(`State.stage_records`), and the snapshot is saved from there in one transaction when both
sides are read, so a killed refresh still leaves the previous snapshot as it was.

Scope never shrinks silently: a datastore that matched an Atlan schema in an earlier snapshot
and matches nothing now (a persona that lost its policy on the connection looks exactly like
that) marks the snapshot incomplete, naming the connection to check, until it matches again
or `accept_scope` (`qatlan refresh --accept-scope`) takes the new scope as intended.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from qatlan.apply import settle_intents
from qatlan.clients import ASSET_TYPES, Clients, open_clients
from qatlan.config import Config
from qatlan.errors import ApiError, ConfigError
from qatlan.match import match_datastores
from qatlan.model import QContainer, QDatastore, QField, QTagDef, Snapshot
from qatlan.normalize import epoch_ms, iso_utc
from qatlan.planner import PART_TYPES
from qatlan.state import State

ProgressFn = Callable[[str, int, "int | None"], None]
T = TypeVar("T")

#: how far back of the watermark an incremental Atlan read starts (clock skew, index lag)
ATLAN_MARGIN_MS = 5 * 60 * 1000
#: watermarks: when Qualytics was last refreshed, and the oldest container field read since
REFRESHED_AT = "qualytics_refreshed_at"
OLDEST_FIELD_READ = "qualytics_oldest_field_read"
ROLLING_CARRY = "qualytics_rolling_carry"
#: what the Atlan read covered: {"cm": [set names], "link": [Link names]}
READ_SHAPE = "atlan_read_shape"


@dataclass
class RefreshResult:
    snapshot_id: int
    serial: int
    complete: bool
    missing: list[str]
    counts: dict[str, int]
    requests: dict[str, int]
    mode: dict[str, str]


@dataclass
class _Read:
    """What one side's reader produced."""

    records: list[Any] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    watermarks: dict[str, Any] = field(default_factory=dict)
    mode: str = "full"


def refresh(config: Config, state: State, **kwargs: Any) -> RefreshResult:
    """Synchronous wrapper of `refresh_async`."""
    return asyncio.run(refresh_async(config, state, **kwargs))


async def refresh_async(
    config: Config,
    state: State,
    *,
    full: bool = False,
    accept_scope: bool = False,
    progress: ProgressFn | None = None,
    clients: Clients | None = None,
    now: Callable[[], float] = time.time,
    **transports: Any,
) -> RefreshResult:
    """Read both sides and save a new snapshot; returns what was saved.

    `clients` lets a caller reuse open clients (the demo, tests); otherwise they are built
    from `config` (with optional `atlan_transport` / `qualytics_transport`).
    """
    listed = state.snapshots()
    if listed and not listed[-1]["complete"]:
        full = True  # an incomplete snapshot is no base for an incremental read
    # the part of the latest snapshot this read builds on: a full read never holds it whole
    prev = state.load_snapshot(kinds=_FULL_BASE if full else _INCREMENTAL_BASE) if listed else None
    prev_wm = state.watermarks() if prev is not None else {}
    with state.run("refresh") as run:
        if clients is None:
            async with open_clients(config, **transports) as opened:
                result = await _refresh(config, state, opened, prev, prev_wm, full, accept_scope,
                                        progress, now, run.id)
        else:
            result = await _refresh(config, state, clients, prev, prev_wm, full, accept_scope,
                                    progress, now, run.id)
        run.finish("ok" if result.complete else "error", counts=result.counts,
                   message=None if result.complete else "; ".join(result.missing))
    return result


#: what an incremental read reuses from the previous snapshot; a full read needs only the
#: containers (to price check listings), and the fields of a container whose read fails
_INCREMENTAL_BASE = ("q.container", "q.field", "a.asset")
_FULL_BASE = ("q.container",)


async def _refresh(config, state, clients, prev, prev_wm, full, accept_scope, progress, now,
                   run_id) -> RefreshResult:
    before = clients.request_counts()
    # first what an interrupted apply sent: its landed writes become qatlan's before they are
    # read into the snapshot, or the plan would take them for someone else's
    settled = await settle_intents(config, state, clients, run_id=run_id, now=now)
    if settled.total and progress is not None:
        progress("interrupted apply: writes settled", settled.total, settled.total)
    stage = _Stage(state)
    try:
        q_reader = QualyticsReader(config, clients, prev, prev_wm, full, progress, now, state, stage)
        a_reader = AtlanReader(config, clients, prev, prev_wm, full, progress, state.owned_names(),
                               stage)
        q_read, a_read = await asyncio.gather(q_reader.read(), a_reader.read())
        stage.flush()
        # what is held: everything but the staged bulk (datastores, containers, connections,
        # schemas, definitions, domains, Links): what the scope check needs
        snapshot = Snapshot.from_records([*q_read.records, *a_read.records])
        lost, matched = check_scope(config, snapshot, prev_wm.get(SCOPE_WATERMARK, {}), accept_scope)
        missing = q_read.missing + a_read.missing + lost
        watermarks = {**q_read.watermarks, **a_read.watermarks, SCOPE_WATERMARK: matched}
        taken_at = iso_utc(now())
        snapshot_id = state.save_snapshot(
            snapshot, run_id=run_id, taken_at=taken_at, complete=not missing, missing=missing,
            watermarks=watermarks, staged=True,
        )
    finally:
        state.discard_staged()
    if q_reader.dirty:
        state.clear_dirty_containers(q_reader.dirty)
    after = clients.request_counts()
    return RefreshResult(
        snapshot_id=snapshot_id,
        serial=state.serial,
        complete=not missing,
        missing=missing,
        counts=_counts(state.snapshot_info(snapshot_id)["counts"]),
        requests={k: after[k] - before.get(k, 0) for k in after},
        mode={"qualytics": q_read.mode, "atlan": a_read.mode},
    )


#: the watermark holding the datastores that matched: {datastore id: Atlan schema QN}
SCOPE_WATERMARK = "matched_datastores"


def check_scope(config: Config, snapshot: Snapshot, earlier: dict[str, str],
                accept: bool = False) -> tuple[list[str], dict[str, str]]:
    """(what is missing, the matched datastores to remember): a datastore that matched in an
    earlier snapshot, still exists in Qualytics and matches nothing now is missing, and is
    remembered until it matches again or `accept` takes the scope as it is now."""
    now = {str(ds_id): m.schema_qn for ds_id, m in match_datastores(snapshot, config.mappings).items()}
    if accept:
        return [], now
    missing, remembered = [], dict(now)
    for ds_id, schema_qn in sorted(earlier.items()):
        ds = snapshot.datastores.get(int(ds_id))
        if ds is None or ds_id in now:
            continue
        connection = "/".join(schema_qn.split("/")[:3])
        missing.append(
            f"qualytics datastore {ds.name!r} (id {ds_id}) matched the Atlan schema {schema_qn} "
            f"before and matches nothing now: check that the Atlan token's persona still has a "
            f"metadata policy on connection {connection} (Atlan → Governance → Personas); if "
            "the scope changed on purpose, run `qatlan refresh --accept-scope`")
        remembered[ds_id] = schema_qn
    return missing, remembered


def _counts(by_kind: Mapping[str, int]) -> dict[str, int]:
    """The refresh's counts from the saved snapshot's records per kind."""
    names = {"datastores": "q.datastore", "containers": "q.container", "fields": "q.field",
             "connections": "a.connection", "assets": "a.asset", "links": "a.link",
             "domains": "a.domain"}
    return {name: int(by_kind.get(kind, 0)) for name, kind in names.items()}


async def _bounded(items: Iterable[T], fn: Callable[[T], Awaitable[Any]], on_done: Callable[[], None] | None = None):
    """Run fn over items concurrently (the clients bound concurrency); capture errors per item."""

    async def one(item: T) -> tuple[T, Any, ApiError | None]:
        try:
            value = await fn(item)
            return item, value, None
        except ApiError as exc:
            return item, None, exc
        finally:
            if on_done:
                on_done()

    return await asyncio.gather(*(one(i) for i in items))


async def _each(items: Iterable[T], fn: Callable[[T], Awaitable[Any]],
                on_result: Callable[[T, Any, "ApiError | None"], None]) -> None:
    """`_bounded`, handing each result to `on_result` as it comes instead of keeping them."""

    async def one(item: T) -> None:
        try:
            value = await fn(item)
        except ApiError as exc:
            on_result(item, None, exc)
        else:
            on_result(item, value, None)

    await asyncio.gather(*(one(i) for i in items))


class _Stage:
    """The bulk of a read (Qualytics fields, Atlan tables, views and columns), set aside in
    the state as it arrives (`State.stage_records`), a few thousand records at a time: a
    refresh of a million columns holds a page of them, not the million."""

    def __init__(self, state: State, size: int = 5000):
        self.state, self.size, self.buffer = state, size, []

    def add(self, records: Iterable[Any]) -> None:
        self.buffer.extend(records)
        if len(self.buffer) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.state.stage_records(self.buffer)
            self.buffer = []


# --------------------------------------------------------------------------- Qualytics


class QualyticsReader:
    def __init__(self, config, clients, prev, prev_wm, full, progress, now, state, stage):
        self.config, self.q, self.prev, self.prev_wm = config, clients.qualytics, prev, prev_wm
        self.state = state
        self.stage = stage  # the fields go there (a `_Stage`), not into `out.records`
        self.progress = progress or (lambda *a: None)
        self.now = now
        self.full = full or prev is None
        self.dirty = set(state.dirty_containers())
        self.out = _Read(mode="full" if self.full else "incremental")

    async def read(self) -> _Read:
        started = self.now()
        datastores = await self.q.datastores()
        self._check_mapped_datastores(datastores)
        self.progress("qualytics datastores", len(datastores), len(datastores))
        containers = await self.q.containers([d.id for d in datastores])
        self.progress("qualytics containers", len(containers), len(containers))
        tags = await self.q.global_tags()
        oldest = await self._fields(datastores, containers, tags, started)
        self.out.records = [*datastores, *containers, *tags]
        self.out.watermarks[REFRESHED_AT] = started
        self.out.watermarks[OLDEST_FIELD_READ] = oldest
        return self.out

    def _check_mapped_datastores(self, datastores: list[QDatastore]) -> None:
        by_id = {d.id for d in datastores}
        by_name = {d.name for d in datastores}
        for i, m in enumerate(self.config.mappings):
            if m.datastore_id is not None and m.datastore_id not in by_id:
                raise ConfigError(
                    f"mappings[{i}].datastore_id: Qualytics has no datastore {m.datastore_id} visible to this token",
                    hint="check the id in Qualytics (Datastores page, or GET /api/datastores)",
                )
            if m.datastore is not None and m.datastore not in by_name:
                known = ", ".join(sorted(by_name)[:10])
                raise ConfigError(
                    f"mappings[{i}].datastore: Qualytics has no datastore named {m.datastore!r}",
                    hint=f"known datastores: {known}" if known else "this token sees no datastores",
                )

    def _needs_fields(self, ds: dict[int, QDatastore], c: QContainer) -> bool:
        d = ds.get(c.datastore_id)
        return c.container_type == "table" and d is not None and d.store_type != "dfs"

    async def _fields(self, datastores: list[QDatastore], containers: list[QContainer],
                      tags: list[QTagDef], now: float) -> float:
        """Stage the fields of every table container (re-read or reused); returns the time
        of the oldest field read they come from."""
        ds = {d.id: d for d in datastores}
        eligible = [c for c in containers if self._needs_fields(ds, c)]
        # a full read reuses no field; only a container whose read fails keeps its earlier
        # fields, loaded from the state when that happens (below)
        prev_fields = _fields_by_container(self.prev) if self.prev is not None and not self.full else {}
        to_read = await self._to_read(eligible, tags, prev_fields, now) if not self.full else eligible
        reread = {c.id for c in to_read}
        reuse = [c for c in eligible if c.id not in reread]
        for c in reuse:
            self.stage.add(prev_fields.get(c.id, ()))
        counts = await self._field_counts(to_read, datastores)
        read_ok: list[int] = []
        failed: list[tuple[QContainer, ApiError]] = []

        def done(c: QContainer, read: Any, err: ApiError | None) -> None:
            if err is not None:
                failed.append((c, err))
            else:
                self.stage.add(read)
                read_ok.append(c.id)
            n = len(read_ok) + len(failed)
            if n % 200 == 0 or n == len(to_read):
                self.progress("qualytics fields", n, len(to_read))

        await _each(to_read, lambda c: self.q.fields(c.id, counts), done)
        if failed and self.full and self.prev is not None:
            prev_fields = _fields_by_container(self.state.load_snapshot(kinds=("q.field",)))
        for c, err in sorted(failed, key=lambda f: f[0].id):
            self.out.missing.append(f"qualytics fields of container {c.id} ({c.name}): {err}")
            self.stage.add(prev_fields.get(c.id, ()))
        self.state.record_container_reads(read_ok, now)
        reads = self.state.container_reads()
        return min((reads.get(c.id, now) for c in eligible), default=now)

    async def _to_read(self, eligible: list[QContainer], tags: list[QTagDef],
                       prev_fields: dict[int, list[QField]], now: float) -> list[QContainer]:
        """The containers whose fields an incremental refresh re-reads (see the module doc)."""
        prev_containers = self.prev.containers
        changed = {c.id for c in eligible
                   if c.id in self.dirty or c.id not in prev_containers
                   or _signature(prev_containers[c.id]) != _signature(c)}
        retagged = await self._retagged(eligible, tags, prev_fields)
        # the previous refresh's time; a container with no read recorded (a state from before
        # these records) was read at the last full field read at the latest
        last = float(self.prev_wm.get(REFRESHED_AT) or (epoch_ms(self.prev.taken_at) or 0) / 1000)
        reads = self.state.container_reads()
        default = float(self.prev_wm.get("qualytics_fields_full_at") or last)
        read_at = {c.id: reads.get(c.id, default) for c in eligible}
        max_age = self.config.qualytics.max_field_age
        # the share of containers the time since the last refresh is of max_age, oldest
        # first (the fraction left over carries to the next refresh), and any over the age
        owed = len(eligible) * min(max_age, max(0.0, now - last)) / max_age
        owed += float(self.prev_wm.get(ROLLING_CARRY) or 0)
        share = math.floor(owed)
        self.out.watermarks[ROLLING_CARRY] = owed - share
        signalled = changed | retagged
        rest = sorted((at, cid) for cid, at in read_at.items() if cid not in signalled)
        oldest = {cid for i, (at, cid) in enumerate(rest) if i < share or now - at >= max_age}
        picked = signalled | oldest
        self.out.mode = (f"incremental ({len(picked)} of {len(eligible)} containers re-read: "
                         f"{len(changed)} changed, {len(retagged)} retagged, "
                         f"{len(oldest)} oldest)")
        return [c for c in eligible if c.id in picked]

    async def _retagged(self, eligible: list[QContainer], tags: list[QTagDef],
                        prev_fields: dict[int, list[QField]]) -> set[int]:
        """Containers with a field whose tags changed since the previous snapshot: one
        field-profile listing per tag name across the datastores that have table containers."""
        datastore_ids = sorted({c.datastore_id for c in eligible})
        container_of = {f.id: cid for cid, fs in prev_fields.items() for f in fs}
        before = {f.id: _tag_key(f.tags) for fs in prev_fields.values() for f in fs if f.tags}
        now: dict[int, frozenset] = {}
        results = await _bounded(sorted({t.name for t in tags}),
                                 lambda name: self.q.tagged_fields(datastore_ids, name))
        for name, found, err in results:
            if err is not None:
                self.out.missing.append(f"qualytics fields tagged {name!r}: {err}")
                continue
            now.update({fid: _tag_key(field_tags) for fid, field_tags in found.items()})
        changed = {fid for fid in before.keys() | now.keys() if before.get(fid) != now.get(fid)}
        return {container_of[fid] for fid in changed if fid in container_of}

    async def _field_counts(self, to_read: list[QContainer], datastores: list[QDatastore]) -> dict:
        """Per-field active check and anomaly counts for the containers being re-read."""
        busy = [c for c in to_read if (c.active_checks or 0) > 0 or (c.active_anomalies or 0) > 0]
        if not busy:
            return {}
        per_ds: dict[int, list[QContainer]] = defaultdict(list)
        for c in busy:
            per_ds[c.datastore_id].append(c)
        all_by_ds = _containers_by_datastore(self.prev, to_read)
        counts: dict = {}
        page = max(1, self.q.page_size)
        for ds_id, cs in per_ds.items():
            whole = all_by_ds.get(ds_id, cs)
            ds_cost = math.ceil(sum(c.active_checks or 0 for c in whole) / page) + math.ceil(
                sum(c.active_anomalies or 0 for c in whole) / page
            )
            per_container_cost = sum(
                math.ceil((c.active_checks or 0) / page) + math.ceil((c.active_anomalies or 0) / page) for c in cs
            )
            try:
                if ds_cost <= per_container_cost:
                    counts.update(await self.q.field_counts(datastore_id=ds_id))
                else:
                    for c in cs:
                        counts.update(await self.q.field_counts(
                            container_id=c.id, checks=bool(c.active_checks),
                            anomalies=bool(c.active_anomalies)))
            except ApiError as exc:
                self.out.missing.append(f"qualytics checks/anomalies of datastore {ds_id}: {exc}")
        return counts


def _tag_key(tags: Iterable[Any]) -> frozenset:
    return frozenset((t.name.casefold(), t.type) for t in tags)


def _signature(c: QContainer) -> tuple:
    return (c.last_profiled, c.last_scanned, c.active_checks, c.active_anomalies)


def _fields_by_container(snapshot: Snapshot) -> dict[int, list[QField]]:
    out: dict[int, list[QField]] = defaultdict(list)
    for f in snapshot.fields.values():
        out[f.container_id].append(f)
    return out


def _containers_by_datastore(prev: Snapshot | None, current: list[QContainer]) -> dict[int, list[QContainer]]:
    """Every container of each datastore (re-read now, or known from the previous snapshot):
    the cost of listing a whole datastore's checks depends on all of them."""
    merged: dict[int, QContainer] = dict(prev.containers) if prev is not None else {}
    merged.update({c.id: c for c in current})
    out: dict[int, list[QContainer]] = defaultdict(list)
    for c in merged.values():
        out[c.datastore_id].append(c)
    return out


# --------------------------------------------------------------------------- Atlan


class AtlanReader:
    """The Atlan side. Besides the configured custom metadata set and Link name, it reads
    the sets and Link names qatlan still owns values under (`owned_names`): after a rename
    of `custom_metadata_set` or `link_name` the plan moves them instead of orphaning them.
    What it reads is kept as a watermark; reading more than last time needs a full read
    (the earlier snapshot's assets lack those values)."""

    def __init__(self, config, clients, prev, prev_wm, full, progress, owned_names=None, stage=None):
        self.config, self.a, self.prev, self.prev_wm = config, clients.atlan, prev, prev_wm
        self.stage = stage  # a full read stages the tables, views and columns there
        self.staged_max_update = 0
        self.progress = progress or (lambda *a: None)
        owned_names = owned_names or {}
        self.shape = {
            "cm": sorted({config.atlan.custom_metadata_set, *owned_names.get("cm", ())}),
            "link": sorted({config.atlan.link_name, *owned_names.get("link", ())}),
        }
        self.full = (full or prev is None or not prev_wm.get("atlan_max_update_time")
                     or not _covers(prev_wm.get(READ_SHAPE), self.shape))
        self.out = _Read(mode="full" if self.full else "incremental")

    async def read(self) -> _Read:
        tag_defs = await self.a.tag_defs()
        cm_defs = await self.a.cm_defs()
        wanted = [d for d in cm_defs if d.display_name in self.shape["cm"]]
        domains = await self.a.domains()
        connections = await self.a.connections()
        self._check_mapped_connections(connections)
        conn_qns = [c.qualified_name for c in connections]
        assets = await self._assets(conn_qns, wanted)
        links = await self._links(conn_qns)
        self.out.records = [*tag_defs, *cm_defs, *domains, *connections, *assets.values(), *links.values()]
        stamps = [a.update_time or 0 for a in assets.values()]
        self.out.watermarks["atlan_max_update_time"] = max([*stamps, self.staged_max_update])
        self.out.watermarks[READ_SHAPE] = self.shape
        return self.out

    def _check_mapped_connections(self, connections) -> None:
        names = {c.qualified_name for c in connections} | {c.name for c in connections}
        for i, m in enumerate(self.config.mappings):
            if m.connection not in names:
                self.out.missing.append(
                    f"atlan connection {m.connection!r} (mappings[{i}]) is not visible to this token: "
                    "the token's persona needs a metadata policy for it (Atlan → Governance → Personas)"
                )

    async def _assets(self, conn_qns: list[str], cm_def) -> dict:
        if not conn_qns:
            return {}
        if not self.full:
            merged = await self._incremental_assets(conn_qns, cm_def)
            if merged is not None:
                return merged
            self.out.mode = "full (incremental check failed: assets were purged)"
        out, read = {}, 0
        async for asset in self.a.assets(conn_qns, type_names=ASSET_TYPES, cm_def=cm_def):
            read += 1
            if self.stage is not None and asset.type_name in PART_TYPES:
                # staged, not held (a page read twice keeps its last version, like `out`)
                self.stage.add((asset,))
                self.staged_max_update = max(self.staged_max_update, asset.update_time or 0)
            else:
                out[asset.guid] = asset
            if read % 5000 == 0:
                self.progress("atlan assets", read, None)
        self.progress("atlan assets", read, read)
        return out

    async def _incremental_assets(self, conn_qns: list[str], cm_def) -> dict | None:
        since = int(self.prev_wm["atlan_max_update_time"]) - ATLAN_MARGIN_MS
        visible = set(conn_qns)
        merged = {g: a for g, a in self.prev.assets.items() if a.connection_qn in visible}
        changed = 0
        async for asset in self.a.assets(conn_qns, type_names=ASSET_TYPES, cm_def=cm_def, modified_since_ms=since):
            changed += 1
            if asset.status != "ACTIVE":
                merged.pop(asset.guid, None)
            else:
                merged[asset.guid] = asset
        self.progress("atlan assets (changed)", changed, changed)
        total = await self.a.count_active_assets(conn_qns, ASSET_TYPES)
        if total != len(merged):
            return None
        self.out.mode = f"incremental ({changed} assets changed)"
        return merged

    async def _links(self, conn_qns: list[str]) -> dict:
        out = {}
        for name in self.shape["link"]:
            for link in await self.a.links(name=name, connection_qns=conn_qns):
                out[link.guid] = link
        return out


def _covers(earlier: Any, now: Mapping[str, list[str]]) -> bool:
    """Whether an earlier read (its READ_SHAPE watermark) read everything this one must."""
    if not isinstance(earlier, Mapping):
        # snapshots made before the watermark existed read the configured names only
        return False
    return all(set(names) <= set(earlier.get(key) or ()) for key, names in now.items())
