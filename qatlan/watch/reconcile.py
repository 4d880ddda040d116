"""One reconcile of `qatlan watch`: work keys in, the tables they name read again, planned,
and what may go without a person applied through the same journaled path as `qatlan apply`.

    reconciler = Reconciler(config, "state/qatlan.db")
    outcome = reconciler.tables(["q:c:42", "a:default/snowflake/1/DB/SCH/ORDERS"])
    outcome = reconciler.everything(full=False)        # a poll's or a resync's: refresh + plan

Events are hints, never state: a key only says which table to read again. For a batch:

1. the keys become tables: a container id (`q:c:`), every container of a datastore
   (`q:d:`), an Atlan table qualifiedName (`a:`), matched the other way through the latest
   snapshot (so a key from either side reads both sides of its table);
2. **targeted refresh**: those containers and their fields (with their check and anomaly
   counts), their datastores, the Atlan tables with their columns and the Links on them,
   saved as a new snapshot in which everything else carries on (`State.save_patch`);
3. the same pure planner (`plan_partitioned`, restricted to those datastores, walking only
   the batch's containers), its changes kept to the batch's tables and datastores;
4. changes of the kinds in `[watch] auto_apply` are stored as a plan and applied
   (`apply_plan`: journaled, re-read before writing, resumable); tag removals only within
   `max_removal_share`; everything else is stored as a plan and saved to a file under
   `<state folder>/watch/` for a person to review (`qatlan apply FILE`).

Each reconcile holds the state's lock (`watch`), waiting up to `lock_timeout` seconds for a
`qatlan plan`/`apply` run by hand; those wait for it the same way (`--lock-timeout`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qatlan import addresses
from qatlan.apply import apply_plan, find_interrupted, settle_open_intents
from qatlan.clients import open_clients
from qatlan.config import Config
from qatlan.errors import PlanRefused
from qatlan.match import match
from qatlan.model import AAsset, ALink, QContainer
from qatlan.normalize import iso_utc
from qatlan.pipeline import PlanOptions, make_stored_plan, settings_from
from qatlan.plan import Change, Plan, write_plan_file
from qatlan.planner import (
    Part,
    check_removals,
    human_tag_names,
    owned_tag_index,
    part_snapshot,
    plan_partitioned,
    removal_count,
    schema_holder,
    scope,
)
from qatlan.state import State
from qatlan.watch.events import parse_key
from qatlan.watch.poll import poll_keys

__all__ = ["Outcome", "Reconciler", "kind_of", "split_by_kind"]

#: Atlan read shape watermark that refresh keeps (qatlan.refresh.READ_SHAPE)
_READ_SHAPE = "atlan_read_shape"


def kind_of(change: Change) -> str:
    """The `[watch] auto_apply` kind of a change."""
    target = change.target
    if target.get("side") == "qualytics":
        return "external_tags"
    part = target.get("part")
    return {"typedef": "definitions", "cm": "custom_metadata", "link": "links",
            "announcement": "announcements", "tag": "atlan_tags"}.get(part, "custom_metadata")


def split_by_kind(changes: Iterable[Change], kinds: Iterable[str]) -> tuple[list[Change], list[Change]]:
    """(changes that may go without a person, the rest). A change that needs a definition
    that is held is held too."""
    allowed = set(kinds)
    auto, held = [], []
    for c in changes:
        (auto if kind_of(c) in allowed else held).append(c)
    held_defs = {c.address for c in held if kind_of(c) == "definitions"}
    if held_defs:
        waiting = [c for c in auto if held_defs & set(c.target.get("needs") or ())]
        auto = [c for c in auto if c not in waiting]
        held += waiting
    return auto, held


@dataclass
class Outcome:
    """What one reconcile did."""

    keys: list[str]
    containers: int = 0
    tables: int = 0
    applied: int = 0
    failed: int = 0
    held: int = 0
    held_file: str | None = None
    plan_checksum: str | None = None
    requests: dict[str, int] = field(default_factory=lambda: {"atlan": 0, "qualytics": 0})
    rate_limited: dict[str, int] = field(default_factory=lambda: {"atlan": 0, "qualytics": 0})
    note: str = ""

    def counts(self) -> dict[str, int]:
        """What the run records: keys, containers and tables read, changes applied, failed, held."""
        return {"keys": len(self.keys), "containers": self.containers, "tables": self.tables,
                "applied": self.applied, "failed": self.failed, "held": self.held}


@dataclass
class _Batch:
    datastores: dict[int, str]  # datastore id → part prefix
    containers: dict[int, QContainer] = field(default_factory=dict)  # as the state had them
    container_ids: set[int] = field(default_factory=set)  # what to read (known or not)
    tables: set[str] = field(default_factory=set)  # Atlan table qualifiedNames
    parts: dict[int, Part] = field(default_factory=dict)
    #: datastores a key named whole (`q:d:`): their changed containers are found by listing
    named: set[int] = field(default_factory=set)
    table_of: dict[int, str] = field(default_factory=dict)  # container id → its table's QN
    names: dict[int, str] = field(default_factory=dict)  # datastore id → its name


class Reconciler:
    """Reconciles batches of work keys against the state at `state_path` (each call opens
    the state itself: a reconcile runs on a worker thread)."""

    def __init__(self, config: Config, state_path: str | Path, *, lock_timeout: float = 600.0,
                 now: Callable[[], float] = time.time, transports: Mapping[str, Any] | None = None):
        self.path = Path(state_path)
        self.lock_timeout, self.now = lock_timeout, now
        self.transports = dict(transports or {})
        # polls run beside reconciles, each with its own clients: they split Atlan's request
        # budget (a quarter for polls, which usually make one or two requests) so that
        # together they stay within it
        rpm = config.atlan.requests_per_minute
        poll_rpm = max(1, rpm // 4) if rpm else 0
        self.config = _with_atlan_rpm(config, rpm - poll_rpm if rpm else 0)
        self.poll_config = _with_atlan_rpm(config, poll_rpm)
        self.settings = settings_from(config)
        self.held_dir = self.path.parent / "watch"

    # ---- a batch of tables
    def tables(self, keys: Sequence[str]) -> Outcome:
        out = Outcome(list(keys))
        with State.open(self.path) as st, st.locked("watch", self.lock_timeout), \
                st.run("watch") as run:
            settle_open_intents(self.config, st, run_id=run.id, now=self.now, **self.transports)
            sid = st.latest_snapshot_id()
            if sid is None:
                raise RuntimeError("the state holds no snapshot yet: a full resync comes first")
            batch = self._batch(st, sid, keys)
            if batch.datastores:
                records, gone = asyncio.run(self._read(st, sid, batch, out))
                out.containers, out.tables = len(batch.container_ids), len(batch.tables)
                new_sid = st.save_patch(records, gone, run_id=run.id)
                self._apply(st, self._plan(st, new_sid, batch), out)
            else:
                out.note = "no key names a synced table"
            run.finish("ok", counts=out.counts(), message=f"watch: {len(keys)} key(s)")
        return out

    def _batch(self, st: State, sid: int, keys: Sequence[str]) -> _Batch:
        shared = st.load_shared(sid)
        used = st.used_domains(sid) if self.settings.domains else None
        sc = scope(shared, self.settings, self.config.mappings, used)
        by_schema = {prefix: ds_id for ds_id, prefix in sc.prefixes.items()}
        want_ds: set[int] = set()
        named_ds: set[int] = set()  # q:d: keys: every container of the datastore
        want_c: set[int] = set()
        tables: set[str] = set()
        for key in keys:
            kind, value = parse_key(key)
            if kind == "datastore":
                named_ds.add(int(value))
            elif kind == "container":
                want_c.add(int(value))
            else:
                tables.add(str(value))
                want_ds.update(schema_holder(str(value), by_schema))
        known = {c.id: c for c in st.load_by_key(sid, "q.container", want_c).values()}
        want_ds |= named_ds | {c.datastore_id for c in known.values()}
        batch = _Batch({i: sc.prefixes[i] for i in sorted(want_ds) if i in sc.prefixes})
        batch.named = named_ds & set(batch.datastores)
        batch.names = {i: shared.datastores[i].name for i in batch.datastores if i in shared.datastores}
        batch.container_ids = {i for i in want_c if i not in known or known[i].datastore_id in batch.datastores}
        for ds_id, prefix in batch.datastores.items():
            part = batch.parts[ds_id] = st.load_part(sid, ds_id, prefix)
            m = match(part_snapshot(shared, part), self.config.mappings, sc.domain_guids)
            table_of = {cid: part.assets[g].qualified_name for cid, g in m.containers.items()}
            batch.table_of.update(table_of)
            container_of = {qn: cid for cid, qn in table_of.items()}
            batch.container_ids |= {container_of[t] for t in tables if t in container_of}
            batch.tables |= {table_of[c] for c in batch.container_ids if c in table_of}
            batch.tables |= {t for t in tables if t.startswith(prefix)}
            batch.containers.update({c: part.containers[c] for c in batch.container_ids
                                     if c in part.containers})
        return batch

    async def _read(self, st: State, sid: int, batch: _Batch, out: Outcome
                    ) -> tuple[list[Any], list[tuple[str, str]]]:
        """The batch's records read again from both sides, and the (kind, key) pairs the
        new snapshot drops when they were not read again (gone since)."""
        shape = st.watermarks(sid).get(_READ_SHAPE) or {}
        cm_names = {self.config.atlan.custom_metadata_set, *shape.get("cm", ())}
        link_names = {self.config.atlan.link_name, *shape.get("link", ())}
        shared = st.load_shared(sid)
        cm_defs = [d for d in shared.cm_defs.values() if d.display_name in cm_names]
        definitions: list[Any] = []
        async with open_clients(self.config, **self.transports) as clients:
            q, a = clients.qualytics, clients.atlan
            if not any(d.display_name == self.config.atlan.custom_metadata_set for d in cm_defs):
                # the snapshot predates qatlan's custom metadata set (a first apply made it):
                # read the definitions again, or every value would look missing
                definitions = [*await a.tag_defs(), *await a.cm_defs()]
                cm_defs = [d for d in definitions if d.kind == "a.cmdef" and d.display_name in cm_names]
            if batch.named:  # first: it adds the moved containers' tables to the batch
                await self._changed_in(q, batch)

            async def qualytics_side() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
                datastores = await asyncio.gather(*(q.datastore(i) for i in batch.datastores))
                containers = await q.containers_by_id(batch.container_ids)
                dfs = {d.id for d in datastores if d.store_type == "dfs"}
                tables = [c for c in containers
                          if c.container_type == "table" and c.datastore_id not in dfs]
                fields = await asyncio.gather(*(self._fields(q, c) for c in tables))
                return list(datastores), containers, tables, list(fields)

            async def atlan_side() -> tuple[list[Any], list[Any], list[Any]]:
                schemas = [prefix[:-1] for prefix in batch.datastores.values()]
                assets = [x async for x in a.assets_under(batch.tables, exact=schemas, cm_def=cm_defs)]
                known = set(shared.tag_defs) | {d.hashed_name for d in definitions if d.kind == "a.tagdef"}
                made = []
                if any(h not in known for x in assets for h in x.tags):
                    # a tag made since the snapshot (its events carry only the hashed name)
                    made = [d for d in await a.tag_defs() if d.hashed_name not in shared.tag_defs]
                links = await self._links(a, [x.guid for x in assets if x.qualified_name in batch.tables],
                                          link_names)
                return assets, links, made

            # both sides at once: a reconcile waits for the slower, not for the sum
            (datastores, containers, tables, fields), (assets, links, made) = await asyncio.gather(
                qualytics_side(), atlan_side())
            definitions += made
            for side, http in (("atlan", clients.atlan_http), ("qualytics", clients.qualytics_http)):
                out.requests[side] += http.stats.total
                out.rate_limited[side] += http.stats.rate_limited
        records: list[Any] = [*definitions, *datastores, *containers, *(f for fs in fields for f in fs),
                              *assets, *links]
        gone: list[tuple[str, str]] = [("q.container", str(i)) for i in batch.container_ids]
        read = {c.id for c in tables}
        for part in batch.parts.values():
            gone += [("q.field", str(f.id)) for f in part.fields.values() if f.container_id in read]
            under = {g for g, x in part.assets.items() if _under(x, batch.tables)}
            gone += [("a.asset", g) for g in under]
            gone += [("a.link", k) for k, link in part.links.items() if link.asset_guid in under]
        return records, gone

    @staticmethod
    async def _changed_in(q: Any, batch: _Batch) -> None:
        """A `q:d:` key (an operation ended on a datastore; the event names no container):
        the datastore's containers whose profile, scan or counts moved, or that are new or
        gone, join the batch (a container listing, not every container's fields)."""
        listed = {c.id: c for c in await q.containers(sorted(batch.named))}
        for ds_id in batch.named:
            known = batch.parts[ds_id].containers
            mine = {i for i, c in listed.items() if c.datastore_id == ds_id}
            moved = {i for i in mine if i not in known or _signature(known[i]) != _signature(listed[i])}
            moved |= set(known) - mine
            batch.container_ids |= moved
            batch.containers.update({i: known[i] for i in moved if i in known})
            batch.tables |= {batch.table_of[i] for i in moved if i in batch.table_of}

    @staticmethod
    async def _fields(q: Any, c: QContainer) -> list[Any]:
        counts = {}
        if (c.active_checks or 0) > 0 or (c.active_anomalies or 0) > 0:
            counts = await q.field_counts(container_id=c.id, checks=bool(c.active_checks),
                                          anomalies=bool(c.active_anomalies))
        return await q.fields(c.id, counts)

    @staticmethod
    async def _links(a: Any, table_guids: list[str], names: set[str]) -> list[ALink]:
        """The Links (of qatlan's names) on these tables: the tables' `links` relationship,
        then the Links themselves by GUID (for their URL): two bulk reads per 100 tables."""
        if not table_guids:
            return []
        related = await a.read_entities(table_guids, related_links=True)
        on = {link.guid: g for g in table_guids for link in related.related_links.get(g, ())
              if link.name in names}
        if not on:
            return []
        found = await a.read_entities(list(on))
        # read by GUID without relationships, a Link does not name its asset: the table
        # whose relationship listed it does
        return [link if link.asset_guid else dataclasses.replace(link, asset_guid=on[guid])
                for guid, link in found.links.items() if guid in on]

    def _plan(self, st: State, sid: int, batch: _Batch) -> Plan:
        shared = st.load_shared(sid)
        used = st.used_domains(sid) if self.settings.domains else None
        sc = scope(shared, self.settings, self.config.mappings, used)
        only = frozenset(i for i in batch.datastores if i in sc.prefixes)
        human = None
        if self.settings.overwrite_tags:  # which tags people use in Atlan: all of ownership
            owned = st.owned()
            display = {h: d.display_name for h, d in shared.tag_defs.items()}
            human = human_tag_names(st.tagged_assets(sid), owned_tag_index(owned), display)
        else:  # what qatlan owns on the batch's schemas, tables, columns and containers
            owned = st.owned(_owned_prefixes(shared, sc.prefixes, only, batch))
        parts = (st.load_part(sid, i, sc.prefixes[i]) for i in sorted(only))
        base = {"lineage": st.lineage, "serial": st.serial, "snapshot_id": sid}
        whole = plan_partitioned(shared, parts, self.settings, rules=self.config.mappings,
                                 owned=owned, human_tags=human, scope_=sc, only=only, base=base,
                                 focus=frozenset(batch.container_ids), created_at=iso_utc(self.now()))
        keep = [c for c in whole.changes if _in_batch(c, batch)]
        needed = {n for c in keep for n in c.target.get("needs") or ()}
        keep += [c for c in whole.changes if c.address in needed and c not in keep]
        conflicts = tuple(c for c in whole.conflicts if _address_in_batch(c.address, batch))
        return dataclasses.replace(whole, changes=tuple(sorted(keep, key=lambda c: (c.address, c.action.value))),
                                   conflicts=conflicts, skipped=(), unchanged=0)

    def _apply(self, st: State, plan: Plan, out: Outcome) -> None:
        auto, held = split_by_kind(plan.changes, self.config.watch.auto_apply)
        auto_plan = dataclasses.replace(plan, changes=tuple(auto), conflicts=(),
                                        definitions_needed=())
        try:
            if removal_count(auto_plan):  # counting what qatlan owns costs a pass over it
                check_removals(auto_plan, st.owned_item_count(), self.settings)
        except PlanRefused:
            removals = [c for c in auto if c.action.value == "delete"]
            held += removals
            auto = [c for c in auto if c not in removals]
            auto_plan = dataclasses.replace(auto_plan, changes=tuple(auto))
        if held:
            self._hold(st, dataclasses.replace(plan, changes=tuple(sorted(
                held, key=lambda c: (c.address, c.action.value)))), out)
        if not auto:
            return
        out.plan_checksum = st.save_plan(auto_plan)
        result = apply_plan(self.config, st, auto_plan, now=self.now, **self.transports)
        counts = result.counts()
        out.applied += counts.get("applied", 0)
        out.failed += counts.get("failed", 0) + counts.get("inconsistent", 0)
        for side, n in result.requests.items():
            out.requests[side] = out.requests.get(side, 0) + int(n)

    def _hold(self, st: State, plan: Plan, out: Outcome) -> None:
        """Store the changes no one approved as a plan, and save it as a file to review."""
        st.save_plan(plan)
        self.held_dir.mkdir(parents=True, exist_ok=True)
        path = self.held_dir / f"held-{iso_utc(self.now()).replace(':', '')}.json"
        write_plan_file(plan, path)
        out.held, out.held_file = len(plan.changes), str(path)

    # ---- polling
    def poll(self, stopping: Callable[[], bool] = lambda: False
             ) -> tuple[list[str], dict[str, int], dict[str, int]]:
        """(keys of the tables that changed on either side since the state saw them, requests
        made by side, 429s by side): `qatlan.watch.poll.poll_keys` with its own clients."""
        async def run() -> tuple[list[str], dict[str, int], dict[str, int]]:
            async with open_clients(self.poll_config, **self.transports) as clients:
                keys = await poll_keys(st, clients, self.settings, self.config.mappings, stopping)
                https = {"atlan": clients.atlan_http, "qualytics": clients.qualytics_http}
                return (keys, {s: h.stats.total for s, h in https.items()},
                        {s: h.stats.rate_limited for s, h in https.items()})

        with State.open(self.path) as st:
            return asyncio.run(run())

    # ---- everything: a resync
    def everything(self, *, full: bool) -> Outcome:
        """Refresh (full or incremental), plan everything, apply what may go without a
        person: a cron's `plan && apply`, restricted to `[watch] auto_apply`."""
        out = Outcome([])
        with State.open(self.path) as st, st.locked("watch", self.lock_timeout), \
                st.run("watch") as run:
            self._resume(st, out)
            plan, _ = make_stored_plan(self.config, st, PlanOptions(full_refresh=full),
                                       now=self.now, **self.transports)
            self._apply(st, plan, out)
            run.finish("ok", counts=out.counts(), message="watch: full resync" if full else "watch: resync")
        return out

    def resume(self) -> Outcome:
        """Finish an apply a kill interrupted, if any (at `qatlan watch` start)."""
        out = Outcome([])
        with State.open(self.path) as st, st.locked("watch", self.lock_timeout):
            self._resume(st, out)
        return out

    def _resume(self, st: State, out: Outcome) -> None:
        """Finish an apply a kill interrupted (journaled changes are not repeated)."""
        left = find_interrupted(st)
        if left is None or left.stale:
            return
        result = apply_plan(self.config, st, left.plan, now=self.now, **self.transports)
        out.applied += result.counts().get("applied", 0)
        out.note = f"resumed the interrupted apply of plan {left.checksum[:12]}"


def _with_atlan_rpm(config: Config, rpm: int) -> Config:
    return config.model_copy(update={"atlan": config.atlan.model_copy(update={"requests_per_minute": rpm})})


def _signature(c: QContainer) -> tuple:
    return (c.last_profiled, c.last_scanned, c.active_checks, c.active_anomalies, c.score)


def _owned_prefixes(shared: Any, prefixes: Mapping[int, str], only: Iterable[int], batch: _Batch) -> list[str]:
    """Ownership address prefixes of a batch: its datastores' schemas and Qualytics
    datastores (themselves only), its tables (themselves and their columns) and its
    containers (themselves and their fields)."""
    out = []
    for ds_id in only:
        ds = shared.datastores.get(ds_id)
        out += [f"atlan:{prefixes[ds_id][:-1]}#", f"{addresses.qualytics_asset(ds.name if ds else str(ds_id))}#"]
    for table in batch.tables:
        out += [f"atlan:{table}#", f"atlan:{table}/"]
    for c in batch.containers.values():
        mine = addresses.qualytics_asset(batch.names.get(c.datastore_id, str(c.datastore_id)), c.name)
        out += [f"{mine}#", f"{mine}/"]
    return out


def _under(asset: AAsset, tables: set[str]) -> bool:
    qn = asset.qualified_name
    return qn in tables or (asset.parent_qn or "") in tables


def _in_batch(change: Change, batch: _Batch) -> bool:
    t = change.target
    if t.get("side") == "qualytics":
        cid = t.get("container_id")
        return cid in batch.container_ids if cid is not None else t.get("datastore_id") in batch.datastores
    if t.get("part") == "typedef":
        return False  # kept only when a kept change needs it
    return _address_in_batch(change.address, batch)


def _address_in_batch(address: str, batch: _Batch) -> bool:
    """Whether an address is about one of the batch's tables (or its columns), or one of its
    datastores' schemas."""
    asset = address.partition("#")[0]
    if asset.startswith("atlan:"):
        qn = asset[len("atlan:"):]
        parent = qn.rpartition("/")[0]
        return (qn in batch.tables or parent in batch.tables
                or any(qn + "/" == prefix for prefix in batch.datastores.values()))
    if asset.startswith("qualytics:"):
        for c in batch.containers.values():
            mine = addresses.qualytics_asset(batch.names.get(c.datastore_id, str(c.datastore_id)), c.name)
            if asset == mine or asset.startswith(mine + "/"):
                return True
    return False
