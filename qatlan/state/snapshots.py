"""Snapshots stored as shared record versions.

Each record version is one row of `records`: (kind, key, hash, data, valid_from, valid_to).
A version belongs to snapshot S when `valid_from <= S` and (`valid_to` is NULL or
`valid_to > S`): `valid_to` is the first snapshot that no longer has it. Saving a snapshot
inserts only new or changed versions and closes the versions of records that changed or
disappeared, all in one transaction; the serial moves only when something did.

`data` is the record as compact JSON (keys in the model's field order) and `hash` its
SHA-1: a content fingerprint in the spirit of `sqlite_utils.utils.hash_record`, computed
with pydantic-core because this is the hot path for 400,000+ records. Loading validates
the JSON straight into the record dataclasses with pydantic (one validator per record kind,
built in Rust), 2.5x faster than `json.loads` plus Python constructors; its JSON parser
caches short strings, so most names that repeat across records are held once.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections import Counter
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

import pydantic_core
from pydantic import ConfigDict, TypeAdapter
from sqlite_utils import Database

from qatlan.errors import StateError
from qatlan.model import (
    RECORD_TYPES,
    Announcement,
    ACMAttribute,
    QTag,
    QualityScore,
    Snapshot,
)
from qatlan.normalize import iso_utc
from qatlan.state.base import write_transaction

def _to_json(record: Any) -> bytes:
    """A record as compact JSON in the model's field order (NaN/inf become null: SQLite's
    JSON rejects them). pydantic-core serialises the frozen dataclasses in Rust, about 3x
    faster than the stdlib encoder with sort_keys; the field order is fixed by model.py, so
    the text is canonical for a given qatlan version."""
    return pydantic_core.to_json(record, inf_nan_mode="null", fallback=repr)


def _refuse_unknown_fields() -> None:
    # a record with a field this qatlan does not know was written by a newer qatlan: refuse
    # it (StateError below) rather than drop what it says
    for cls in (*RECORD_TYPES.values(), Announcement, ACMAttribute, QTag, QualityScore):
        cls.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


_refuse_unknown_fields()


@functools.cache
def _reader(kind: str) -> TypeAdapter:
    """The validator that turns one record's JSON back into its dataclass (built once)."""
    return TypeAdapter(RECORD_TYPES[kind])


class RecordVersion(NamedTuple):
    """One version of a record: present from snapshot `span[0]` up to, not including,
    snapshot `span[1]` (None: still in the latest snapshot)."""

    span: tuple[int, int | None]
    data: dict[str, Any]


# --------------------------------------------------------------------------- saving


def save_snapshot(
    db: Database,
    snapshot: Snapshot,
    *,
    run_id: int | None,
    taken_at: str,
    complete: bool,
    missing: Iterable[str],
    watermarks: Mapping[str, Any],
    staged: bool = False,
) -> int:
    """Store `snapshot` as the newest snapshot and return its id (one transaction).

    Records are encoded a chunk at a time (same kind) and compared with the open versions of
    the same keys, looked up through the (kind, key) index; only new and changed ones are
    kept and inserted. Saving holds one chunk and the ids of the open versions it matched,
    never the snapshot's JSON or all open versions' hashes.

    With `staged`, the records `stage_records` put aside during the read are part of the
    snapshot too (they must not also be in `snapshot`), and the staging table is emptied."""
    counts: Counter[str] = Counter()
    with write_transaction(db):
        snap_id = _insert_snapshot(db, run_id, taken_at, complete, missing, watermarks)
        chunks = _encoded(snapshot.records())
        staged = staged and _has_staged(db)
        if staged:
            chunks = itertools.chain(chunks, _staged_chunks(db))
        added, changed, closed, matched = _store_encoded(db, chunks, snap_id, counts)
        # open versions no record of this snapshot carries on: removed
        closed += [rid for (rid,) in db.execute(
            "SELECT id FROM records WHERE valid_to IS NULL AND valid_from < ?", [snap_id])
            if rid not in matched]
        _finish_snapshot(db, snap_id, closed, added, changed, counts)
        if staged:
            db.execute("DELETE FROM temp.staged_records")
    return snap_id


#: a record as stored: (key, JSON text, SHA-1 of the JSON)
Encoded = tuple[str, str, str]


def stage_records(db: Database, records: Iterable[Any]) -> None:
    """Put records aside, encoded, in a connection-private temporary table, for the next
    `save_snapshot(..., staged=True)`: a refresh reading a million columns keeps their JSON
    on disk instead of their objects in memory. A record staged twice (a page read twice)
    keeps its last version, as the snapshot's dicts do. Writing the temporary table takes no
    lock on the state: other processes go on reading and writing it meanwhile."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS staged_records (kind TEXT NOT NULL, "
               "key TEXT NOT NULL, data TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (kind, key))")
    for kind, chunk in _encoded(records):
        db.conn.executemany("INSERT OR REPLACE INTO temp.staged_records (kind, key, data, hash) "
                            "VALUES (?, ?, ?, ?)", ((kind, *row) for row in chunk))


def discard_staged(db: Database) -> None:
    """Forget what `stage_records` put aside (a refresh that failed)."""
    db.execute("DROP TABLE IF EXISTS temp.staged_records")


def _has_staged(db: Database) -> bool:
    return db.execute("SELECT 1 FROM temp.sqlite_master WHERE name = 'staged_records'").fetchone() is not None


def _staged_chunks(db: Database) -> Iterator[tuple[str, list[Encoded]]]:
    """The staged records, a chunk of one kind at a time (read a page at a time)."""
    after = ("", "")
    while True:
        rows = db.execute(
            "SELECT kind, key, data, hash FROM temp.staged_records WHERE (kind, key) > (?, ?) "
            "ORDER BY kind, key LIMIT ?", [*after, _CHUNK]).fetchall()
        if not rows:
            return
        kind, chunk = rows[0][0], []
        for k, key, data, digest in rows:
            if k != kind:
                yield kind, chunk
                kind, chunk = k, []
            chunk.append((key, data, digest))
        yield kind, chunk
        after = (rows[-1][0], rows[-1][1])


def save_patch(db: Database, records: Iterable[Any], scope: Iterable[tuple[str, str]], *,
               run_id: int | None, taken_at: str) -> int:
    """A new snapshot that is the latest one with `records` in place of their earlier
    versions, and without the keys of `scope` ((kind, key) pairs) that `records` lack: what
    `qatlan watch` read again of a few tables (their containers, fields, Atlan assets,
    Links), the rest carried on as it is. Watermarks, completeness and what was missing
    carry over from the latest snapshot, so the next refresh still reads everything since
    its last one. Returns the new snapshot's id."""
    prev = require_snapshot(db, None)
    with write_transaction(db):
        snap_id = _insert_snapshot(db, run_id, taken_at, prev["complete"], prev["missing"],
                                   prev["watermarks"])
        kept: set[tuple[str, str]] = set()

        def remember(items: Iterable[Any]) -> Iterator[Any]:
            for r in items:
                kept.add((r.kind, str(r.key)))
                yield r

        added, changed, closed, _ = _store_versions(db, remember(records), snap_id, Counter())
        gone = sorted({(kind, str(key)) for kind, key in scope} - kept)
        for kind, key in gone:
            closed += [rid for (rid,) in db.execute(
                "SELECT id FROM records WHERE kind = ? AND key = ? AND valid_to IS NULL "
                "AND valid_from < ?", [kind, key, snap_id])]
        _finish_snapshot(db, snap_id, closed, added, changed, Counter())
        # the latest snapshot's counts, plus what this one added, minus what it closed
        counts = Counter(prev["counts"])
        for sign, column in ((1, "valid_from"), (-1, "valid_to")):
            for kind, n in db.execute(f"SELECT kind, count(*) FROM records WHERE {column} = ? "
                                      "GROUP BY kind", [snap_id]).fetchall():
                counts[kind] += sign * n
        db.execute("UPDATE snapshots SET counts = ? WHERE id = ?",
                   [json.dumps({k: n for k, n in sorted(counts.items()) if n}), snap_id])
    return snap_id


def _store_versions(db: Database, records: Iterable[Any], snap_id: int, counts: Counter
                    ) -> tuple[int, int, list[int], set[int]]:
    """Insert the records that are new or changed since the open versions of their keys (a
    chunk of one kind at a time, one probe of the (kind, key) index per chunk). Returns
    (added, changed, ids of the versions they close, ids of the open versions they carry on)."""
    return _store_encoded(db, _encoded(records), snap_id, counts)


def _encoded(records: Iterable[Any]) -> Iterator[tuple[str, list[Encoded]]]:
    sha1, to_json = hashlib.sha1, _to_json
    for kind, chunk in _chunks(records):
        yield kind, [(str(r.key), data.decode(), sha1(data).hexdigest())
                     for r in chunk for data in (to_json(r),)]


def _store_encoded(db: Database, chunks: Iterable[tuple[str, list[Encoded]]], snap_id: int,
                   counts: Counter) -> tuple[int, int, list[int], set[int]]:
    """`_store_versions` of records encoded already."""
    added = changed = 0
    closed: list[int] = []
    matched: set[int] = set()
    pending: list[tuple[str, str, str, str, int]] = []
    for kind, encoded in chunks:
        counts[kind] += len(encoded)
        current = {key: (rid, digest) for key, rid, digest in db.execute(
            "SELECT key, id, hash FROM records WHERE kind = ? AND valid_to IS NULL "
            "AND key IN (SELECT value FROM json_each(?))",
            [kind, json.dumps([key for key, _, _ in encoded])])}
        for key, data, digest in encoded:
            old = current.get(key)
            if old is None:
                added += 1
            else:
                matched.add(old[0])
                if old[1] == digest:
                    continue
                changed += 1
                closed.append(old[0])
            pending.append((kind, key, digest, data, snap_id))
        if len(pending) >= _CHUNK:
            _insert_versions(db, pending)
    _insert_versions(db, pending)
    return added, changed, closed, matched


def _finish_snapshot(db: Database, snap_id: int, closed: list[int], added: int, changed: int,
                     counts: Counter) -> None:
    """Close the versions in `closed`, move the serial when anything changed, and record the
    snapshot's counts and changes."""
    db.conn.executemany("UPDATE records SET valid_to = ? WHERE id = ?",
                        [(snap_id, rid) for rid in closed])
    if added or closed:
        db.execute("UPDATE meta SET serial = serial + 1")
    changes = {"added": added, "changed": changed, "removed": len(closed) - changed}
    db.execute(
        "UPDATE snapshots SET serial = (SELECT serial FROM meta), counts = ?, changes = ? "
        "WHERE id = ?",
        [json.dumps(dict(sorted(counts.items()))), json.dumps(changes), snap_id],
    )


def _chunks(records: Iterable[Any]) -> Iterator[tuple[str, list[Any]]]:
    """(kind, up to _CHUNK records of that kind), in the order given."""
    kind, chunk = None, []
    for record in records:
        if record.kind != kind or len(chunk) >= _CHUNK:
            if chunk:
                yield kind, chunk
            kind, chunk = record.kind, []
        chunk.append(record)
    if chunk:
        yield kind, chunk


#: records compared (one index probe) and record versions inserted per statement while saving
_CHUNK = 5000


def _insert_versions(db: Database, pending: list) -> None:
    db.conn.executemany(
        "INSERT INTO records (kind, key, hash, data, valid_from) VALUES (?, ?, ?, ?, ?)", pending)
    pending.clear()


def _insert_snapshot(db, run_id, taken_at, complete, missing, watermarks) -> int:
    cursor = db.execute(
        "INSERT INTO snapshots (taken_at, complete, missing, run_id, serial, counts, changes, "
        "watermarks) VALUES (?, ?, ?, ?, 0, '{}', '{}', ?)",
        [taken_at or iso_utc(), int(bool(complete)), json.dumps(list(missing)), run_id,
         json.dumps(dict(watermarks), sort_keys=True)],
    )
    return cursor.lastrowid


# --------------------------------------------------------------------------- reading


def latest_id(db: Database) -> int | None:
    row = db.execute("SELECT max(id) FROM snapshots").fetchone()
    return row[0] if row else None


def snapshot_row(db: Database, snapshot_id: int | None) -> dict[str, Any] | None:
    """The snapshots row (decoded) of `snapshot_id`, or of the latest when None."""
    sid = latest_id(db) if snapshot_id is None else snapshot_id
    if sid is None:
        return None
    cursor = db.execute("SELECT * FROM snapshots WHERE id = ?", [sid])
    row = cursor.fetchone()
    if row is None:
        return None
    out = dict(zip([c[0] for c in cursor.description], row))
    out["complete"] = bool(out["complete"])
    for column in ("missing", "counts", "changes", "watermarks"):
        out[column] = json.loads(out[column])
    return out


def require_snapshot(db: Database, snapshot_id: int | None) -> dict[str, Any]:
    row = snapshot_row(db, snapshot_id)
    if row is not None:
        return row
    if snapshot_id is None:
        raise StateError("the state holds no snapshot yet", hint="run `qatlan refresh`")
    raise StateError(
        f"the state holds no snapshot {snapshot_id}",
        hint="`qatlan state list` shows the snapshots it holds",
    )


def load_snapshot(db: Database, snapshot_id: int | None = None,
                  kinds: Iterable[str] | None = None) -> Snapshot:
    """The snapshot `snapshot_id` (latest when None) exactly as it was saved; with `kinds`,
    only the records of those kinds (the rest of the snapshot is empty)."""
    meta = require_snapshot(db, snapshot_id)
    sid = meta["id"]
    if sid == latest_id(db):
        sql, args = "SELECT kind, key, data FROM records WHERE valid_to IS NULL", []
    else:
        sql = ("SELECT kind, key, data FROM records WHERE valid_from <= ? "
               "AND (valid_to IS NULL OR valid_to > ?)")
        args = [sid, sid]
    if kinds is not None:
        wanted = sorted(set(kinds))
        sql += f" AND kind IN ({', '.join('?' * len(wanted))})"
        args += wanted
    sql += " ORDER BY id"
    records = [_decode(kind, key, data, sid) for kind, key, data in db.execute(sql, args)]
    return Snapshot.from_records(
        records, id=sid, taken_at=meta["taken_at"], complete=meta["complete"],
        missing=tuple(meta["missing"]),
    )


def _decode(kind: str, key: str, data: str, sid: int) -> Any:
    try:
        return _reader(kind).validate_json(data)
    except (KeyError, TypeError, ValueError) as exc:  # ValueError: pydantic's ValidationError
        raise StateError(
            f"snapshot {sid} holds a record this qatlan cannot read ({kind} {key}: {_why(exc)})",
            hint="upgrade qatlan, or run `qatlan refresh --full` to take a new snapshot",
        ) from None


def _why(exc: Exception) -> str:
    """One line: the first field pydantic refused, or the error itself."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'record'}: {first['msg']}"
    return str(exc)


def list_snapshots(db: Database) -> list[dict[str, Any]]:
    ids = [row[0] for row in db.execute("SELECT id FROM snapshots ORDER BY id")]
    return [snapshot_row(db, sid) for sid in ids]


def record_history(db: Database, kind: str, key: str | int) -> list[RecordVersion]:
    rows = db.execute(
        "SELECT valid_from, valid_to, data FROM records WHERE kind = ? AND key = ? "
        "ORDER BY valid_from",
        [kind, str(key)],
    )
    return [RecordVersion((vf, vt), json.loads(data)) for vf, vt, data in rows]


_FIND_SQL = """
SELECT kind, key, data, valid_from, valid_to FROM records
WHERE key = :text
   OR json_extract(data, '$.qualified_name') = :text
   OR json_extract(data, '$.name') = :text COLLATE NOCASE
   OR json_extract(data, '$.display_name') = :text COLLATE NOCASE
ORDER BY id
"""


def find_records(db: Database, text: str) -> list[dict[str, Any]]:
    """Records whose key (guid, id, hashed name), qualifiedName or name is `text`.

    One entry per (kind, key), with its newest matching version: kind, key, data,
    since (snapshot id), current (still in the latest snapshot)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, key, data, vf, vt in db.execute(_FIND_SQL, {"text": text.strip()}):
        found[(kind, key)] = {
            "kind": kind, "key": key, "data": json.loads(data), "since": vf,
            "current": vt is None,
        }
    return sorted(found.values(), key=lambda r: (not r["current"], r["kind"], r["key"]))


# --------------------------------------------------------------------------- field reads


def container_reads(db: Database) -> dict[int, float]:
    return {cid: at for cid, at in db.execute("SELECT container_id, read_at FROM container_reads")}


def record_container_reads(db: Database, container_ids: Iterable[int], at: float) -> None:
    rows = [(int(c), at) for c in container_ids]
    with write_transaction(db):
        db.conn.executemany(
            "INSERT INTO container_reads (container_id, read_at) VALUES (?, ?) "
            "ON CONFLICT(container_id) DO UPDATE SET read_at = excluded.read_at", rows)


# --------------------------------------------------------------------------- refresh hints


def dirty_containers(db: Database) -> list[int]:
    rows = db.execute("SELECT key FROM refresh_hints WHERE kind = 'q.container'")
    return sorted(int(key) for (key,) in rows)


def mark_dirty_containers(db: Database, container_ids: Iterable[int], run_id: int | None) -> None:
    rows = [{"kind": "q.container", "key": str(c), "run_id": run_id} for c in container_ids]
    if rows:
        with write_transaction(db):
            db["refresh_hints"].upsert_all(rows, pk=("kind", "key"))


def clear_dirty_containers(db: Database, container_ids: Iterable[int]) -> None:
    keys = [str(c) for c in container_ids]
    with write_transaction(db):
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            db.execute(
                f"DELETE FROM refresh_hints WHERE kind = 'q.container' AND key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
