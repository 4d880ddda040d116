"""A snapshot read one datastore at a time, for the partitioned planner
(`qatlan.planner.partition`): the shared part once, then each matched datastore's part
through the state's indexes, so that planning holds one datastore's records at a time.

Each function returns what `qatlan.planner.partition.split` returns for the same snapshot
(tests/test_state_partitions.py checks that): records in the order they were saved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlite_utils import Database

from qatlan.model import RECORD_TYPES, Snapshot
from qatlan.planner import PART_TYPES, Part
from qatlan.state.snapshots import _decode, latest_id, require_snapshot

__all__ = ["load_by_key", "load_part", "load_shared", "tagged_assets", "used_domains"]

_PART_KINDS = ("q.container", "q.field", "a.link", "a.asset")
#: at most this many values bound in one IN (...) list
_CHUNK = 5000


def _live(db: Database, sid: int) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) of the records in snapshot `sid`. Its columns
    carry a unary `+`: every query here has a kind-led index that finds fewer rows, and
    SQLite would otherwise prefer the valid_to index (which lists every open record)."""
    if sid == latest_id(db):
        return "+valid_to IS NULL", []
    return "+valid_from <= ? AND (+valid_to IS NULL OR +valid_to > ?)", [sid, sid]


def _types() -> str:
    return ", ".join(f"'{t}'" for t in sorted(PART_TYPES))


def load_shared(db: Database, snapshot_id: int | None = None,
                extra_qns: Iterable[str] = ()) -> Snapshot:
    """The shared part of a snapshot: every record but containers, fields, Links, and Atlan
    tables, views and columns, plus the assets named in `extra_qns` (whatever their type:
    `qatlan.planner.partition.outside_assets`)."""
    meta = require_snapshot(db, snapshot_id)
    sid = meta["id"]
    live, args = _live(db, sid)
    # by kind and by asset type, through the (kind, key) and records_asset_type indexes:
    # never a pass over every record
    kinds = ", ".join(f"'{k}'" for k in sorted(set(RECORD_TYPES) - set(_PART_KINDS)))
    rows = list(db.execute(
        f"SELECT id, kind, key, data FROM records WHERE kind IN ({kinds}) AND {live}", args))
    types = [t for (t,) in db.execute(
        "SELECT DISTINCT json_extract(data, '$.type_name') FROM records WHERE kind = 'a.asset'")
        if t not in PART_TYPES]
    if types:
        rows += db.execute(
            f"SELECT id, kind, key, data FROM records WHERE kind = 'a.asset' AND {live} "
            "AND json_extract(data, '$.type_name') IN (SELECT value FROM json_each(?))",
            args + [json.dumps(types)]).fetchall()
    wanted = sorted(set(extra_qns))
    for i in range(0, len(wanted), _CHUNK):
        rows += db.execute(
            f"SELECT id, kind, key, data FROM records WHERE {live} AND kind = 'a.asset' "
            f"AND json_extract(data, '$.type_name') IN ({_types()}) "
            "AND json_extract(data, '$.qualified_name') IN (SELECT value FROM json_each(?))",
            args + [json.dumps(wanted[i:i + _CHUNK])]).fetchall()
    rows.sort(key=lambda r: r[0])
    return Snapshot.from_records(
        (_decode(kind, key, data, sid) for _, kind, key, data in rows),
        id=sid, taken_at=meta["taken_at"], complete=meta["complete"],
        missing=tuple(meta["missing"]))


def load_part(db: Database, snapshot_id: int, datastore_id: int, prefix: str) -> Part:
    """One datastore's part: its containers and their fields (by the container indexes),
    the Atlan tables, views and columns whose qualifiedName starts with `prefix` (a range
    of the qualifiedName index) and the Links on them."""
    live, args = _live(db, snapshot_id)
    containers = _decoded(db, snapshot_id, (
        f"SELECT id, kind, key, data FROM records WHERE {live} AND kind = 'q.container' "
        "AND json_extract(data, '$.datastore_id') = ? ORDER BY id", args + [datastore_id]))
    fields = _where_in(db, snapshot_id, "q.field", "container_id", [c.id for c in containers])
    # a prefix ends with "/"; every qualifiedName under it sorts below the prefix with "0"
    # ("/" + 1) in that place (SQLite compares text bytewise)
    assets = _decoded(db, snapshot_id, (
        f"SELECT id, kind, key, data FROM records WHERE {live} AND kind = 'a.asset' "
        "AND json_extract(data, '$.qualified_name') >= ? "
        "AND json_extract(data, '$.qualified_name') < ? "
        f"AND json_extract(data, '$.type_name') IN ({_types()}) ORDER BY id",
        args + [prefix, prefix[:-1] + "0"]))
    links = _where_in(db, snapshot_id, "a.link", "asset_guid", [a.guid for a in assets])
    return Part(datastore_id, {c.id: c for c in containers}, {f.id: f for f in fields},
                {a.guid: a for a in assets}, {link.guid: link for link in links})


def _where_in(db: Database, sid: int, kind: str, field: str, values: list[Any]) -> list[Any]:
    """The records of `kind` in snapshot `sid` whose `field` is one of `values` (through the
    kind's index on that field), in the order they were saved."""
    live, args = _live(db, sid)
    rows = []
    for i in range(0, len(values), _CHUNK):
        rows += db.execute(
            # the kind as a literal: the partial index on `field` applies only then
            f"SELECT id, kind, key, data FROM records WHERE {live} AND kind = '{kind}' "
            f"AND json_extract(data, '$.{field}') IN (SELECT value FROM json_each(?))",
            args + [json.dumps(values[i:i + _CHUNK])]).fetchall()
    rows.sort(key=lambda r: r[0])
    return [_decode(k, key, data, sid) for _, k, key, data in rows]


def _decoded(db: Database, sid: int, query: tuple[str, list[Any]]) -> list[Any]:
    sql, args = query
    return [_decode(kind, key, data, sid) for _, kind, key, data in db.execute(sql, args)]


def used_domains(db: Database, snapshot_id: int) -> set[str]:
    """The domain GUIDs of the snapshot's ACTIVE Atlan assets (one pass in SQLite)."""
    live, args = _live(db, snapshot_id)
    return {g for (g,) in db.execute(
        f"SELECT DISTINCT j.value FROM records, json_each(records.data, '$.domain_guids') AS j "
        f"WHERE {live} AND kind = 'a.asset' AND json_extract(data, '$.status') = 'ACTIVE'", args)}


def tagged_assets(db: Database, snapshot_id: int) -> Iterator[tuple[str, list[str]]]:
    """(qualifiedName, hashed tag names) of every Atlan asset carrying a tag."""
    live, args = _live(db, snapshot_id)
    for qn, tags in db.execute(
            f"SELECT json_extract(data, '$.qualified_name'), json_extract(data, '$.tags') "
            f"FROM records WHERE {live} AND kind = 'a.asset' "
            "AND json_array_length(data, '$.tags') > 0", args):
        yield qn, json.loads(tags)


def load_by_key(db: Database, snapshot_id: int, kind: str, keys: Iterable[Any]) -> dict[str, Any]:
    """The records of one kind with these keys in the snapshot, by key (the (kind, key) index)."""
    live, args = _live(db, snapshot_id)
    wanted = sorted({str(k) for k in keys})
    out: dict[str, Any] = {}
    for i in range(0, len(wanted), _CHUNK):
        for _, k, key, data in db.execute(
                f"SELECT id, kind, key, data FROM records WHERE {live} AND kind = ? "
                "AND key IN (SELECT value FROM json_each(?)) ORDER BY id",
                args + [kind, json.dumps(wanted[i:i + _CHUNK])]):
            out[key] = _decode(k, key, data, snapshot_id)
    return out
