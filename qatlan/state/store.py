"""`State`: qatlan's SQLite state (sqlite-utils), the only code that runs SQL.

    with State.open("state/qatlan.db") as state, state.locked("apply"):
        with state.run("apply") as run:
            snap = state.load_snapshot()
            ...
            run.finish("ok", counts={"updated": 1})

`meta` holds the lineage (a uuid4 set once, when the file is created) and the serial, which
moves only when a saved snapshot's content differs from the previous one (Terraform-style).
Tables and columns are documented in docs/state.md. Tokens are never stored: nothing here
takes one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from sqlite_utils import Database

from qatlan.model import Snapshot
from qatlan.normalize import iso_utc
from qatlan.plan import Plan
from qatlan.planner import Part
from qatlan.state import history, journal, locks, partitions, plans, prune, runs, schema, snapshots, spill, watchq
from qatlan.state.base import write_transaction
from qatlan.state.locks import LockInfo
from qatlan.state.snapshots import RecordVersion

__all__ = ["State"]


class State:
    """An open state database. Create with `State.open(path)`; close with `close()`."""

    def __init__(self, db: Database, path: Path | str):
        self._db = db
        self.path = path

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, create: bool = True, busy_timeout: float = 10.0
    ) -> "State":
        """Open the state at `path` (":memory:" for a throwaway one), creating and migrating
        it as needed. StateError when the file is not a qatlan state, or is newer."""
        target = path if str(path) == ":memory:" else Path(path)
        return cls(schema.connect(target, create=create, busy_timeout=busy_timeout), target)

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> "State":
        """Open the state at `path` for reading only: works on a read-only mount or an
        archived copy, never creates, migrates (on disk) or writes; any write fails.
        StateError when there is no state there."""
        target = Path(path)
        return cls(schema.connect_readonly(target, busy_timeout=busy_timeout), target)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<State {str(self.path)!r}>"

    @contextlib.contextmanager
    def transaction(self) -> Iterator["State"]:
        """An atomic block (BEGIN IMMEDIATE; nested blocks are savepoints)."""
        with write_transaction(self._db):
            yield self

    # ----------------------------------------------------------------------- meta

    def meta(self) -> dict[str, Any]:
        """lineage, serial, schema_version and created_at."""
        cursor = self._db.execute("SELECT lineage, serial, schema_version, created_at FROM meta")
        return dict(zip(("lineage", "serial", "schema_version", "created_at"), cursor.fetchone()))

    @property
    def lineage(self) -> str:
        return self.meta()["lineage"]

    @property
    def serial(self) -> int:
        return self.meta()["serial"]

    # ----------------------------------------------------------------------- runs

    def run(self, command: str, *, plan_checksum: str | None = None, run_id: int | None = None):
        """Record a run around a block (see `qatlan.state.runs`): a context manager giving a
        `RunRecord`; `run.finish(outcome, counts, message)` says how it ended. `run_id`: a run
        already started with `start_run`, which the block finishes."""
        return runs.recorded_run(self._db, command, plan_checksum, run_id)

    def start_run(self, command: str, plan_checksum: str | None = None) -> int:
        """Record a run that starts now (outcome `running`); returns its id."""
        return runs.start_run(self._db, command, plan_checksum)

    def finish_run(self, run_id: int, outcome: str, counts: Mapping[str, Any] | None = None,
                   message: str | None = None) -> None:
        """Close run `run_id` with outcome ok, error or interrupted."""
        runs.finish_run(self._db, run_id, outcome, counts, message)

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Past runs, newest first (counts decoded)."""
        return runs.list_runs(self._db, limit)

    def last_run(self, command: str) -> dict[str, Any] | None:
        """The newest run of `command` (with its `plan_checksum` for an apply), or None."""
        return runs.last_run(self._db, command)

    # ----------------------------------------------------------------------- plans

    def save_plan(self, plan: Plan, run_id: int | None = None,
                  tee: Callable[[bytes], None] | None = None, inputs: str | None = None) -> str:
        """Store `plan` (for audit and resuming); returns its checksum. `tee` receives each
        piece of the plan's canonical JSON as it is encoded; `inputs` is the digest of what
        it was computed from (see `plans.save_plan`)."""
        return plans.save_plan(self._db, plan, run_id, tee, inputs)

    def plan_by_inputs(self, inputs: str) -> int | None:
        """The id of the stored plan holding the changes of the newest plan computed from
        `inputs` (for `save_repeat`), or None."""
        if str(self.path) == ":memory:":  # a repeat reads its changes from the file later
            return None
        return plans.plan_by_inputs(self._db, inputs)

    @contextlib.contextmanager
    def change_spill(self) -> Iterator[spill.ChangeSpill]:
        """A temporary file beside the state for a plan's changes while it is planned
        (`qatlan.planner.plan_partitioned(sink=...)`); removed on leaving."""
        folder = None if str(self.path) == ":memory:" else str(Path(self.path).parent)
        sink = spill.ChangeSpill(folder)
        try:
            yield sink
        finally:
            sink.close()

    def stored_changes(self, plan: Plan, checksum: str) -> Plan:
        """`plan` (stored with `checksum`) with its changes read from the state on demand
        (`plans.StoredChanges`), so the caller holds none of them."""
        if str(self.path) == ":memory:":  # nothing to read them back from later
            return dataclasses.replace(plan, changes=tuple(plan.changes))
        plan_id = self.plan_id(checksum)
        counts = self._db.execute("SELECT tally FROM plans WHERE id = ?", [plan_id]).fetchone()[0]
        return dataclasses.replace(plan, changes=plans.StoredChanges(
            str(self.path), plan_id, json.loads(counts)))

    def save_repeat(self, twin: int, base: Mapping[str, Any], created_at: str,
                    run_id: int | None = None, tee: Callable[[bytes], None] | None = None,
                    inputs: str | None = None) -> tuple[str, Plan]:
        """Store stored plan `twin` again with a new base and time, unread; returns (its
        checksum, the plan, whose changes stay in the state until walked). See
        `plans.save_repeat`."""
        return plans.save_repeat(self._db, str(self.path), twin, base, created_at, run_id, tee,
                                 inputs)

    @property
    def owned_serial(self) -> int:
        """Moves with every write to what qatlan owns (a trigger counts them)."""
        return self._db.execute("SELECT owned_serial FROM meta").fetchone()[0]

    def load_plan(self, checksum: str, lazy: bool = False) -> Plan | None:
        """The stored plan with this checksum, or None. `lazy`: its changes stay in the
        state (`plans.StoredChanges`: counted from the tally, streamed one at a time) when
        the plan recorded where they sit; otherwise they are decoded."""
        on_disk = lazy and str(self.path) != ":memory:"
        return plans.load_plan(self._db, checksum, str(self.path) if on_disk else None)

    def plan_id(self, checksum: str) -> int | None:
        return plans.plan_id(self._db, checksum)

    # ----------------------------------------------------------------------- journal

    def journal(self, checksum: str) -> dict[str, tuple[str, str | None]]:
        """address → (outcome, error) of every change of the plan that apply journaled."""
        return journal.journal_rows(self._db, checksum)

    def open_intents(self) -> dict[str, list[str]]:
        """plan checksum → addresses journaled as `intent` (sent, answer not recorded)."""
        return journal.open_intents(self._db)

    def record_outcomes(self, checksum: str, run_id: int | None, plan_id: int | None,
                        outcomes: Iterable[tuple[str, str, str, str | None]],
                        owned: Iterable[tuple[str, Any]] = (), dirty: Iterable[int] = (),
                        at: str | None = None) -> None:
        """Journal outcomes `(address, action, outcome, error)` with the ownership they imply
        `(address, value or None to forget)` and containers to re-read, in one transaction."""
        journal.record(self._db, checksum, run_id, plan_id, outcomes, owned, dirty, at)

    # ----------------------------------------------------------------------- snapshots

    def save_snapshot(
        self,
        snapshot: Snapshot,
        *,
        run_id: int | None = None,
        taken_at: str | None = None,
        complete: bool | None = None,
        missing: Iterable[str] | None = None,
        watermarks: Mapping[str, Any] | None = None,
        staged: bool = False,
    ) -> int:
        """Store `snapshot` as the newest snapshot in one transaction; returns its id.

        taken_at, complete and missing default to the snapshot's own values. Only new or
        changed record versions are written; the serial moves only when content changed.
        With `staged`, what `stage_records` put aside is part of the snapshot too."""
        return snapshots.save_snapshot(
            self._db,
            snapshot,
            run_id=run_id,
            taken_at=taken_at if taken_at is not None else snapshot.taken_at,
            complete=snapshot.complete if complete is None else complete,
            missing=snapshot.missing if missing is None else missing,
            watermarks=watermarks or {},
            staged=staged,
        )

    def stage_records(self, records: Iterable[Any]) -> None:
        """Put records aside (encoded, in a temporary table of this connection) for the next
        `save_snapshot(..., staged=True)`; see `snapshots.stage_records`."""
        snapshots.stage_records(self._db, records)

    def discard_staged(self) -> None:
        """Forget what `stage_records` put aside."""
        snapshots.discard_staged(self._db)

    def save_patch(self, records: Iterable[Any], scope: Iterable[tuple[str, str]], *,
                   run_id: int | None = None, taken_at: str | None = None) -> int:
        """A new snapshot: the latest with `records` read again and the `scope` keys they
        lack removed (`qatlan.state.snapshots.save_patch`); returns its id."""
        return snapshots.save_patch(self._db, records, scope, run_id=run_id,
                                    taken_at=taken_at or iso_utc())

    # ---- qatlan watch: the work queue and watermarks (qatlan.state.watchq)
    def enqueue(self, keys: Iterable[str], *, now: float, debounce: float, source: str,
                updates: Mapping[str, Iterable[tuple[str, int]]] | None = None) -> int:
        return watchq.enqueue(self._db, keys, now=now, debounce=debounce, source=source, updates=updates)

    def own_writes(self, due: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The due keys whose events all reported qatlan's own writes (`watchq.own_writes`)."""
        return watchq.own_writes(self._db, due)

    def due_keys(self, now: float, limit: int) -> list[dict[str, Any]]:
        return watchq.due(self._db, now, limit)

    def keys_done(self, taken: Iterable[dict[str, Any]]) -> None:
        watchq.done(self._db, taken)

    def keys_retry(self, keys: Iterable[str], *, now: float) -> None:
        watchq.retry(self._db, keys, now=now)

    def rebase_queue(self, debounce: float) -> None:
        watchq.rebase(self._db, debounce)

    def next_due(self) -> float | None:
        return watchq.next_due(self._db)

    def queue_depth(self) -> int:
        return watchq.queue_depth(self._db)

    def watch_mark(self, name: str, default: Any = None) -> Any:
        return watchq.get_mark(self._db, name, default)

    def set_watch_mark(self, name: str, value: Any) -> None:
        watchq.set_mark(self._db, name, value)

    def record_echoes(self, stamps: Iterable[tuple[str, int, int]]) -> None:
        """(asset GUID, update time before, after) of qatlan's writes (`watchq.record_echoes`)."""
        watchq.record_echoes(self._db, stamps)

    def echo_stamps(self, guids: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
        return watchq.echo_stamps(self._db, guids)

    def load_snapshot(self, snapshot_id: int | None = None,
                      kinds: Iterable[str] | None = None) -> Snapshot:
        """Snapshot `snapshot_id` (the latest when None) as it was saved; with `kinds`, only
        the records of those kinds (e.g. `("q.container",)`)."""
        return snapshots.load_snapshot(self._db, snapshot_id, kinds)

    def load_shared(self, snapshot_id: int, extra_qns: Iterable[str] = ()) -> Snapshot:
        """The shared part of a snapshot for the partitioned planner (`qatlan.state.partitions`)."""
        return partitions.load_shared(self._db, snapshot_id, extra_qns)

    def load_part(self, snapshot_id: int, datastore_id: int, prefix: str) -> Part:
        """One matched datastore's part of a snapshot (`qatlan.state.partitions`)."""
        return partitions.load_part(self._db, snapshot_id, datastore_id, prefix)

    def load_by_key(self, snapshot_id: int, kind: str, keys: Iterable[Any]) -> dict[str, Any]:
        """Records of one kind by key (`qatlan.state.partitions.load_by_key`)."""
        return partitions.load_by_key(self._db, snapshot_id, kind, keys)

    def used_domains(self, snapshot_id: int) -> set[str]:
        return partitions.used_domains(self._db, snapshot_id)

    def tagged_assets(self, snapshot_id: int) -> Iterator[tuple[str, list[str]]]:
        return partitions.tagged_assets(self._db, snapshot_id)

    def snapshots(self) -> list[dict[str, Any]]:
        """Every snapshot, oldest first: id, taken_at, complete, missing, run_id, serial
        (after it was saved), counts (records by kind), changes (added/changed/removed),
        watermarks."""
        return snapshots.list_snapshots(self._db)

    def snapshot_info(self, snapshot_id: int | None = None) -> dict[str, Any]:
        """The `snapshots` row of `snapshot_id` (latest when None), JSON columns decoded;
        StateError when there is none."""
        return snapshots.require_snapshot(self._db, snapshot_id)

    def prune(self, *, keep_snapshots: int | None = None, older_than_days: float | None = None,
              now: float | None = None) -> "prune.PruneResult":
        """Drop snapshots before the newest `keep_snapshots` and/or older than
        `older_than_days`, the record versions only they held and their unapplied plans;
        VACUUM. Every kept snapshot reads exactly as before (`qatlan.state.prune`)."""
        older = None if older_than_days is None else older_than_days * 86400.0
        return prune.prune(self._db, self.path, keep_snapshots=keep_snapshots, older_than=older,
                           now=now)

    @property
    def history(self) -> "history.History":
        """Read-only questions about the past: record versions at or between snapshots, the
        records behind an asset, its planned and applied changes (`qatlan.audit`)."""
        return history.History(self._db)

    def latest_snapshot_id(self) -> int | None:
        return snapshots.latest_id(self._db)

    def record_history(self, kind: str, key: str | int) -> list[RecordVersion]:
        """Every stored version of one record, oldest first: `(span, data)` pairs."""
        return snapshots.record_history(self._db, kind, key)

    def find_records(self, text: str) -> list[dict[str, Any]]:
        """Records whose guid/id/key, qualifiedName or name is `text` (for `state show`)."""
        return snapshots.find_records(self._db, text)

    def watermarks(self, snapshot_id: int | None = None) -> dict[str, Any]:
        """The free-form JSON a refresh stored with snapshot `snapshot_id` (latest: None)."""
        row = snapshots.snapshot_row(self._db, snapshot_id)
        if row is None and snapshot_id is not None:
            snapshots.require_snapshot(self._db, snapshot_id)
        return {} if row is None else row["watermarks"]

    # ----------------------------------------------------------------------- ownership

    def owned(self, prefixes: Iterable[str] | None = None) -> dict[str, Any]:
        """address -> the value qatlan last wrote there; with `prefixes`, only the addresses
        that start with one of them (ranges of the primary key: `qatlan watch` reads what it
        owns on a few datastores, not everything)."""
        if prefixes is None:
            rows = self._db.execute("SELECT address, value FROM ownership ORDER BY address")
            return {address: json.loads(value) for address, value in rows}
        out: dict[str, Any] = {}
        for prefix in sorted(set(prefixes)):
            # every address starting with `prefix` sorts in [prefix, prefix + U+10FFFF)
            for address, value in self._db.execute(
                    "SELECT address, value FROM ownership WHERE address >= ? AND address < ? "
                    "ORDER BY address", [prefix, prefix + "\U0010ffff"]):
                out[address] = json.loads(value)
        return dict(sorted(out.items()))

    def owned_at(self, addresses: Iterable[str]) -> dict[str, Any]:
        """address -> the value qatlan last wrote there, for these exact addresses (those it
        owns nothing at are left out): an apply's journal reads only what its changes touch."""
        rows = self._db.execute("SELECT address, value FROM ownership WHERE address IN "
                                "(SELECT value FROM json_each(?))", [json.dumps(sorted(set(addresses)))])
        return {address: json.loads(value) for address, value in rows}

    def owned_item_count(self) -> int:
        """Items qatlan owns, counted as `qatlan.planner.owned_item_count` counts them (each
        custom metadata attribute is one item), in SQL."""
        row = self._db.execute(
            "SELECT coalesce(sum(CASE WHEN instr(address, '#cm:') > 0 AND json_type(value) = 'object' "
            "THEN (SELECT count(*) FROM json_each(ownership.value)) ELSE 1 END), 0) FROM ownership").fetchone()
        return int(row[0])

    def owned_names(self) -> dict[str, list[str]]:
        """The Link names and custom metadata sets qatlan owns values under, from all of its
        records: `{"link": [...], "cm": [...]}` (refresh reads these too, so that a renamed
        `link_name` or `custom_metadata_set` can be moved rather than orphaned)."""
        links = self._db.execute(
            "SELECT DISTINCT json_extract(value, '$.name') FROM ownership WHERE address LIKE '%#link'")
        sets = self._db.execute(
            "SELECT DISTINCT substr(address, instr(address, '#cm:') + 4) FROM ownership "
            "WHERE address LIKE 'atlan:%#cm:%' AND address NOT LIKE 'atlan:typedef#%'")
        return {"link": sorted(n for (n,) in links if n), "cm": sorted(n for (n,) in sets if n)}

    def set_owned(self, address: str, value: Any, run_id: int | None = None,
                  plan_id: int | None = None) -> None:
        """Record that qatlan wrote `value` at `address` (insert or replace); `value` None
        forgets the address (qatlan removed what it wrote there)."""
        journal.set_owned(self._db, [(address, value)], run_id, plan_id)

    # ----------------------------------------------------------------------- refresh hints

    def container_reads(self) -> dict[int, float]:
        """When refresh last read each Qualytics container's fields (epoch seconds)."""
        return snapshots.container_reads(self._db)

    def record_container_reads(self, container_ids: Iterable[int], at: float) -> None:
        snapshots.record_container_reads(self._db, container_ids, at)

    def dirty_containers(self) -> list[int]:
        """Qualytics containers qatlan wrote to since the last refresh read their fields."""
        return snapshots.dirty_containers(self._db)

    def mark_dirty_containers(self, container_ids: Iterable[int], run_id: int | None = None) -> None:
        snapshots.mark_dirty_containers(self._db, container_ids, run_id)

    def clear_dirty_containers(self, container_ids: Iterable[int]) -> None:
        snapshots.clear_dirty_containers(self._db, container_ids)

    # ----------------------------------------------------------------------- lock

    def lock_info(self) -> LockInfo | None:
        """Who holds the lock, or None."""
        return locks.read_lock(self._db)

    def acquire_lock(self, command: str, timeout: float = 0.0, *,
                     plan_checksum: str | None = None) -> LockInfo:
        """Take the lock, waiting up to `timeout` seconds; LockError names the holder. With
        `plan_checksum`, the run is recorded with the lock, atomically (`LockInfo.run_id`)."""
        return locks.acquire(self._db, command, timeout, plan_checksum=plan_checksum)

    def release_lock(self, lock_id: str) -> bool:
        """Release our lock; False if it was no longer ours (force-unlocked meanwhile)."""
        return locks.release(self._db, lock_id)

    def force_unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        """Remove lock `lock_id` left by a killed run; StateError for any other id, and for a
        holder still running on this host unless `force`."""
        return locks.force_unlock(self._db, lock_id, force=force)

    @contextlib.contextmanager
    def locked(self, command: str, timeout: float = 0.0, *,
               plan_checksum: str | None = None) -> Iterator[LockInfo]:
        """Hold the lock for the block; released on exit, also on errors."""
        info = self.acquire_lock(command, timeout, plan_checksum=plan_checksum)
        try:
            yield info
        finally:
            self.release_lock(info.id)
