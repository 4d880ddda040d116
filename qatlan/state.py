"""qatlan's SQLite state (sqlite-utils): snapshots, runs, ownership and the lock.

    state = State.open("state/qatlan.db")
    with state.locked("apply") as lock:
        run = state.start_run("apply")
        snap = state.load_snapshot()
        with state.transaction():
            state.set_owned("atlan:default/x/1/DB/S/T#link", {"url": "..."}, run)
        state.finish_run(run, "ok", counts={"updated": 1})
    state.close()

`meta` holds the lineage (a uuid4 set once, when the file is created) and the serial, which
moves only when a saved snapshot's content differs from the previous one (Terraform-style).
Tables and columns are documented in docs/state.md. Tokens are never stored: nothing here
takes one. The code lives in `qatlan/_state/`; this module is the public face.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from sqlite_utils import Database

from qatlan._state import locks, schema, snapshots
from qatlan._state.base import utcnow, whoami, write_transaction
from qatlan._state.locks import LockInfo
from qatlan._state.snapshots import RecordVersion
from qatlan.errors import StateError
from qatlan.model import Snapshot

__all__ = ["RUN_OUTCOMES", "SCHEMA_VERSION", "LockInfo", "RecordVersion", "State"]

SCHEMA_VERSION = schema.SCHEMA_VERSION
#: what finish_run accepts; a run is `running` until then
RUN_OUTCOMES = ("ok", "error", "interrupted")


class State:
    """An open state database. Create with `State.open(path)`; close with `close()`."""

    def __init__(self, db: Database, path: Path | str):
        self.db = db  #: the sqlite_utils.Database, for tables later issues add
        self.path = path

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, create: bool = True, busy_timeout: float = 10.0
    ) -> "State":
        """Open the state at `path` (":memory:" for a throwaway one), creating and migrating
        it as needed. StateError when the file is not a qatlan state, or is newer."""
        target = path if str(path) == ":memory:" else Path(path)
        return cls(schema.connect(target, create=create, busy_timeout=busy_timeout), target)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<State {str(self.path)!r}>"

    @contextlib.contextmanager
    def transaction(self) -> Iterator["State"]:
        """An atomic block (BEGIN IMMEDIATE; nested blocks are savepoints)."""
        with write_transaction(self.db):
            yield self

    # ----------------------------------------------------------------------- meta

    def meta(self) -> dict[str, Any]:
        """lineage, serial, schema_version and created_at."""
        cursor = self.db.execute("SELECT lineage, serial, schema_version, created_at FROM meta")
        return dict(zip(("lineage", "serial", "schema_version", "created_at"), cursor.fetchone()))

    @property
    def lineage(self) -> str:
        return self.meta()["lineage"]

    @property
    def serial(self) -> int:
        return self.meta()["serial"]

    # ----------------------------------------------------------------------- runs

    def start_run(self, command: str) -> int:
        """Record a run that starts now (outcome `running`); returns its id."""
        user, host, pid = whoami()
        row = {"command": command, "started_at": utcnow(), "outcome": "running",
               "user": user, "host": host, "pid": pid}
        with self.transaction():
            return self.db["runs"].insert(row).last_pk

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        counts: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        """Close run `run_id` with outcome ok, error or interrupted."""
        if outcome not in RUN_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(RUN_OUTCOMES)}, not {outcome!r}")
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE runs SET ended_at = ?, outcome = ?, counts = ?, message = ? WHERE id = ?",
                [utcnow(), outcome, None if counts is None else json.dumps(dict(counts)),
                 message, run_id],
            )
        if cursor.rowcount == 0:
            raise StateError(f"the state has no run {run_id}")

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Past runs, newest first (counts decoded)."""
        sql = "SELECT * FROM runs ORDER BY id DESC"
        cursor = self.db.execute(sql + (" LIMIT ?" if limit is not None else ""),
                                 [limit] if limit is not None else [])
        columns = [c[0] for c in cursor.description]
        out = [dict(zip(columns, row)) for row in cursor]
        for run in out:
            run["counts"] = None if run["counts"] is None else json.loads(run["counts"])
        return out

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
    ) -> int:
        """Store `snapshot` as the newest snapshot in one transaction; returns its id.

        taken_at, complete and missing default to the snapshot's own values. Only new or
        changed record versions are written; the serial moves only when content changed."""
        return snapshots.save_snapshot(
            self.db,
            snapshot,
            run_id=run_id,
            taken_at=taken_at if taken_at is not None else snapshot.taken_at,
            complete=snapshot.complete if complete is None else complete,
            missing=snapshot.missing if missing is None else missing,
            watermarks=watermarks or {},
        )

    def load_snapshot(self, snapshot_id: int | None = None) -> Snapshot:
        """Snapshot `snapshot_id` (the latest when None) as it was saved."""
        return snapshots.load_snapshot(self.db, snapshot_id)

    def snapshots(self) -> list[dict[str, Any]]:
        """Every snapshot, oldest first: id, taken_at, complete, missing, run_id, serial
        (after it was saved), counts (records by kind), changes (added/changed/removed),
        watermarks."""
        return snapshots.list_snapshots(self.db)

    def latest_snapshot_id(self) -> int | None:
        return snapshots.latest_id(self.db)

    def record_history(self, kind: str, key: str | int) -> list[RecordVersion]:
        """Every stored version of one record, oldest first: `(span, data)` pairs."""
        return snapshots.record_history(self.db, kind, key)

    def find_records(self, text: str) -> list[dict[str, Any]]:
        """Records whose guid/id/key, qualifiedName or name is `text` (for `state show`)."""
        return snapshots.find_records(self.db, text)

    def watermarks(self, snapshot_id: int | None = None) -> dict[str, Any]:
        """The free-form JSON a refresh stored with snapshot `snapshot_id` (latest: None)."""
        row = snapshots.snapshot_row(self.db, snapshot_id)
        if row is None and snapshot_id is not None:
            snapshots.require_snapshot(self.db, snapshot_id)
        return {} if row is None else row["watermarks"]

    # ----------------------------------------------------------------------- ownership

    def owned(self) -> dict[str, Any]:
        """address -> the value qatlan last wrote there."""
        rows = self.db.execute("SELECT address, value FROM ownership ORDER BY address")
        return {address: json.loads(value) for address, value in rows}

    def set_owned(
        self, address: str, value: Any, run_id: int | None = None, plan_id: int | None = None
    ) -> None:
        """Record that qatlan wrote `value` at `address` (insert or replace)."""
        row = {"address": address, "value": json.dumps(value, sort_keys=True),
               "run_id": run_id, "plan_id": plan_id, "updated_at": utcnow()}
        with self.transaction():
            self.db["ownership"].upsert(row, pk="address")

    def drop_owned(self, address: str) -> None:
        """Forget `address` (qatlan removed what it wrote there)."""
        with self.transaction():
            self.db.execute("DELETE FROM ownership WHERE address = ?", [address])

    # ----------------------------------------------------------------------- refresh hints

    def dirty_containers(self) -> list[int]:
        """Qualytics containers qatlan wrote to since the last refresh read their fields."""
        rows = self.db.execute("SELECT key FROM refresh_hints WHERE kind = 'q.container'")
        return sorted(int(key) for (key,) in rows)

    def mark_dirty_containers(self, container_ids: Iterable[int], run_id: int | None = None) -> None:
        rows = [{"kind": "q.container", "key": str(c), "run_id": run_id} for c in container_ids]
        if rows:
            with self.transaction():
                self.db["refresh_hints"].upsert_all(rows, pk=("kind", "key"))

    def clear_dirty_containers(self, container_ids: Iterable[int]) -> None:
        keys = [str(c) for c in container_ids]
        with self.transaction():
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                self.db.execute(
                    f"DELETE FROM refresh_hints WHERE kind = 'q.container' AND key IN ({','.join('?' * len(chunk))})",
                    chunk,
                )

    # ----------------------------------------------------------------------- lock

    def lock_info(self) -> LockInfo | None:
        """Who holds the lock, or None."""
        return locks.read_lock(self.db)

    def acquire_lock(self, command: str, timeout: float = 0.0) -> LockInfo:
        """Take the lock, waiting up to `timeout` seconds; LockError names the holder."""
        return locks.acquire(self.db, command, timeout)

    def release_lock(self, lock_id: str) -> bool:
        """Release our lock; False if it was no longer ours (force-unlocked meanwhile)."""
        return locks.release(self.db, lock_id)

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove lock `lock_id` left by a killed run; StateError for any other id."""
        return locks.force_unlock(self.db, lock_id)

    @contextlib.contextmanager
    def locked(self, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the lock for the block; released on exit, also on errors."""
        info = self.acquire_lock(command, timeout)
        try:
            yield info
        finally:
            self.release_lock(info.id)
