"""Every plan qatlan made, stored whole: zlib-compressed canonical JSON, keyed by checksum.

Stored for audit and for `apply`, which finds an interrupted run's plan here. The JSON is
hashed and compressed piece by piece: only the compressed body (about a tenth of the JSON)
is held whole. Each change and conflict is also a row (`plan_changes`, `plan_conflicts`) that
any SQLite tool can query. A plan made again from the same inputs (`save_repeat`) points at
its twin (`plans.changes_from`) for its rows and its body: its JSON is the twin's with its own
`base` and `created_at`, spliced in at the offsets the twin recorded (`plans.spans`), so it is
streamed, hashed and written to a plan file without being parsed, and summarised from the
twin's `tally`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sqlite_utils import Database

from qatlan import addresses
from qatlan.normalize import iso_utc
from qatlan.plan import Change, Plan, StreamedChanges, Tally, canonical_sections, split_array
from qatlan.state.base import write_transaction

__all__ = ["StoredChanges", "backfill_rows", "load_plan", "plan_by_inputs", "plan_id", "save_plan",
           "save_repeat", "take_over_body"]

#: zlib level of plan bodies (1: fast; plans compress ~10x anyway)
_ZLIB_LEVEL = 1


#: the top-level values whose place in the canonical text `plans.spans` records
_SPANNED = ("base", "changes", "created_at")


def save_plan(db: Database, p: Plan, run_id: int | None = None,
              tee: Callable[[bytes], None] | None = None, inputs: str | None = None) -> str:
    """Insert `p` and return its checksum (`qatlan.plan.plan_checksum`). The plan is encoded
    once: each canonical piece is hashed, compressed and, with `tee`, handed on (to a plan
    file being written, `qatlan.plan.PlanFileWriter`). `inputs`: the digest of what the plan
    was computed from (`plan_by_inputs` finds it again).

    Spilled changes (`qatlan.state.spill`) come encoded already: their rows are inserted as
    their JSON goes by, so the spill is read once."""
    digest, packer, packed = hashlib.sha256(), zlib.compressobj(_ZLIB_LEVEL), []
    spans: dict[str, list[int]] = {}
    at = 0
    with write_transaction(db):
        plan_id = db["plans"].insert({**_row(p, run_id, "", inputs, None), "body": b""}).last_pk
        passing = getattr(p.changes, "passing_rows", None)
        with passing(plan_id) if passing else contextlib.nullcontext([]) as rows:
            for key, piece in canonical_sections(p):
                digest.update(piece)
                packed.append(packer.compress(piece))
                if tee is not None:
                    tee(piece)
                if key in _SPANNED:
                    spans.setdefault(key, [at, at])[1] = at + len(piece)
                at += len(piece)
                if len(rows) >= 10_000:
                    db.conn.executemany(_INSERT_CHANGE, rows)
                    rows.clear()
            db.conn.executemany(_INSERT_CHANGE, rows)
        packed.append(packer.flush())
        checksum = digest.hexdigest()
        counts = _insert_rows(db, plan_id, p, changes=not passing)
        db.execute("UPDATE plans SET checksum = ?, body = ?, spans = ?, tally = ? WHERE id = ?",
                   [checksum, b"".join(packed), json.dumps(spans, sort_keys=True),
                    json.dumps(counts), plan_id])
    return checksum


def _row(p: Plan, run_id: int | None, checksum: str, inputs: str | None,
         changes_from: int | None) -> dict[str, Any]:
    return {
        "created_at": p.created_at or iso_utc(),
        "run_id": run_id,
        "snapshot_id": p.base.get("snapshot_id"),
        "lineage": p.base.get("lineage", ""),
        "serial": p.base.get("serial", 0),
        "checksum": checksum,
        "summary": json.dumps(p.summary()),
        "inputs": inputs,
        "changes_from": changes_from,
        "base": json.dumps(dict(p.base), sort_keys=True, default=str),
    }


def save_repeat(db: Database, path: str, twin: int, base: Mapping[str, Any], created_at: str,
                run_id: int | None = None, tee: Callable[[bytes], None] | None = None,
                inputs: str | None = None) -> tuple[str, Plan]:
    """Store the plan stored as `twin` (a `plan_by_inputs` answer) again, made at
    `created_at` from `base`, and return (its checksum, the plan).

    Nothing is decoded or encoded again: the twin's canonical text streams from its
    compressed body with the two values replaced, hashed and handed to `tee` on the way,
    and the new row stores no body of its own (it is read from the twin's, `changes_from`).
    The plan returned holds its changes in the state (`StoredChanges`): summaries and the
    first assets' listing read little, and only a caller that walks every change decodes
    them. `path` is the state file the changes are read from (after this connection closes).
    """
    spans, tally_json, summary = db.execute(
        "SELECT spans, tally, summary FROM plans WHERE id = ?", [twin]).fetchone()
    digest = hashlib.sha256()
    spans = json.loads(spans)
    # where the changes sit in the new text: the base before them may differ in length
    moved = len(_canonical(dict(base))) - (spans["base"][1] - spans["base"][0])
    changes = (spans["changes"][0] + moved, spans["changes"][1] + moved)

    def hashed() -> Iterator[bytes]:
        for piece in _spliced(db, twin, base, created_at):
            digest.update(piece)
            if tee is not None:
                tee(piece)
            yield piece

    rest = _without_changes(hashed(), changes)
    checksum = digest.hexdigest()
    stored = StoredChanges(path, twin, json.loads(tally_json))
    p = dataclasses.replace(Plan.from_dict(rest), changes=stored)
    row = {**_row(p, run_id, checksum, inputs, twin), "body": b"", "summary": summary}
    with write_transaction(db):
        db["plans"].insert(row)
    return checksum, p


def _spliced(db: Database, plan_id: int, base: Mapping[str, Any] | None = None,
             created_at: str | None = None) -> Iterator[bytes]:
    """The canonical text of stored plan `plan_id`, in pieces, with its base and created_at
    (or those given): a repeat (empty body) is its twin's text with its own two values."""
    row = db.execute("SELECT body, base, created_at, changes_from FROM plans WHERE id = ?",
                     [plan_id]).fetchone()
    body, own_base, own_created, twin = row
    if body and base is None:  # a whole body, read as it is
        yield from _inflate(body)
        return
    if not body:  # a repeat: its twin's text with its own values
        base, created_at = json.loads(own_base), own_created
        plan_id = twin
        body = db.execute("SELECT body FROM plans WHERE id = ?", [twin]).fetchone()[0]
    spans = json.loads(db.execute("SELECT spans FROM plans WHERE id = ?", [plan_id]).fetchone()[0])
    edits = sorted([(*spans["base"], _canonical(dict(base or {}))),
                    (*spans["created_at"], _canonical(created_at))])
    yield from _replace(_inflate(body), edits)


def _without_changes(pieces: Iterable[bytes], changes: tuple[int, int]) -> dict[str, Any]:
    """The plan object of a canonical text (in `pieces`) with an empty list in place of the
    changes it holds between the offsets `changes`: all of it but the changes is parsed."""
    head, tail, at = [], [], 0
    for piece in pieces:
        end = at + len(piece)
        if at < changes[0]:
            head.append(piece[:changes[0] - at])
        if end > changes[1]:
            tail.append(piece[max(0, changes[1] - at):])
        at = end
    return json.loads(b"".join(head) + b"[]" + b"".join(tail))


def take_over_body(db: Database, heir: int) -> None:
    """Give repeat `heir` a body of its own (its twin's text with its own values, compressed
    again), for when its twin is deleted (`state prune`); a plan with a body keeps it."""
    body, twin = db.execute("SELECT body, changes_from FROM plans WHERE id = ?", [heir]).fetchone()
    if body or twin is None:
        return
    spans, tally_json = db.execute("SELECT spans, tally FROM plans WHERE id = ?", [twin]).fetchone()
    packer, packed, at, spans, new = zlib.compressobj(_ZLIB_LEVEL), [], 0, json.loads(spans), {}
    own_base, own_created = db.execute("SELECT base, created_at FROM plans WHERE id = ?",
                                       [heir]).fetchone()
    base_len = len(_canonical(json.loads(own_base)))
    created_len = len(_canonical(own_created))
    moved = base_len - (spans["base"][1] - spans["base"][0])
    new["base"] = [spans["base"][0], spans["base"][0] + base_len]
    new["changes"] = [spans["changes"][0] + moved, spans["changes"][1] + moved]
    start = spans["created_at"][0] + moved
    new["created_at"] = [start, start + created_len]
    for piece in _spliced(db, heir):
        packed.append(packer.compress(piece))
    packed.append(packer.flush())
    db.execute("UPDATE plans SET body = ?, spans = ?, tally = ? WHERE id = ?",
               [b"".join(packed), json.dumps(new, sort_keys=True), tally_json, heir])


#: a value's canonical JSON (sorted keys, no spaces, ASCII), as `qatlan.plan.canonical_pieces`
#: writes the values of a plan
canonical_text = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _canonical(value: Any) -> bytes:
    return canonical_text(value).encode()


#: compressed bytes inflated at a time when a body is streamed
_CHUNK = 1 << 20


def _inflate(body: bytes, size: int | None = None) -> Iterator[bytes]:
    unpack = zlib.decompressobj()
    size = size or _CHUNK
    for start in range(0, len(body), size):
        out = unpack.decompress(body[start:start + size])
        if out:
            yield out
    rest = unpack.flush()
    if rest:
        yield rest


def _replace(chunks: Iterable[bytes], edits: list[tuple[int, int, bytes]]) -> Iterator[bytes]:
    """`chunks` (one text in pieces) with each `(start, end, text)` of `edits` (sorted,
    not overlapping) replacing the bytes from start to end."""
    pending = list(reversed(edits))
    at = 0  # where the chunk starts in the text
    written = False  # the first pending edit's text was yielded (its bytes run on)
    for chunk in chunks:
        end = at + len(chunk)
        pos = at
        while pending and pending[-1][0] < end:
            start, stop, text = pending[-1]
            if pos < start:
                yield chunk[pos - at:start - at]
                pos = start
            if not written:
                yield text
                written = True
            if stop > end:
                pos = end
                break
            pos = stop
            pending.pop()
            written = False
        if pos < end:
            yield chunk[pos - at:]
        at = end
    if pending and not written:  # an edit at the very end of the text
        yield pending[-1][2]


def _asset(address: str) -> str:
    return addresses.parse(address)[0]


#: a before or after value in a `plan_changes` row
row_text = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def _text(value: Any) -> str | None:
    return None if value is None else row_text(value)


def _insert_rows(db: Database, plan_id: int, p: Plan, changes: bool = True) -> dict[str, Any]:
    """`p`'s changes (unless `changes` is False: inserted already) and conflicts as rows of
    plan `plan_id`; returns the changes' `tally` (counted on the way, each address parsed
    once)."""
    if not changes:
        _insert_conflicts(db, plan_id, p)
        return p.tally()
    counts = Tally()

    def rows() -> Iterator[tuple[Any, ...]]:
        for c in p.changes:
            asset, part = addresses.parse(c.address)
            counts.add(c, asset, part)
            yield (plan_id, c.address, asset, part, c.action.value, _text(c.before),
                   _text(c.after), c.reason, c.target.get("source"))

    db.conn.executemany(_INSERT_CHANGE, rows())
    _insert_conflicts(db, plan_id, p)
    return counts.result()


_INSERT_CHANGE = ("INSERT INTO plan_changes (plan_id, address, asset, part, action, before, after, "
                  "reason, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _insert_conflicts(db: Database, plan_id: int, p: Plan) -> None:
    db.conn.executemany(
        "INSERT INTO plan_conflicts (plan_id, address, asset, rule, message) VALUES (?, ?, ?, ?, ?)",
        ((plan_id, c.address, _asset(c.address), c.rule, c.message) for c in p.conflicts))


def backfill_rows(db: Database) -> None:
    """For a state made before plans were stored as rows: write every stored plan's changes
    and conflicts, and link each journal row to its plan and its change's before/after."""
    for plan_id, body in db.execute("SELECT id, body FROM plans ORDER BY id").fetchall():
        _insert_rows(db, plan_id, _decode(body))
    db.execute("UPDATE journal SET plan_id = (SELECT max(p.id) FROM plans p "
               "WHERE p.checksum = journal.plan_checksum) WHERE plan_id IS NULL")
    db.execute(
        "UPDATE journal SET before = c.before, after = c.after FROM plan_changes c "
        "WHERE c.plan_id = journal.plan_id AND c.address = journal.address")


def _latest(db: Database, column: str, checksum: str) -> Any:
    row = db.execute(f"SELECT {column} FROM plans WHERE checksum = ? ORDER BY id DESC LIMIT 1",
                     [checksum]).fetchone()
    return row[0] if row else None


def plan_id(db: Database, checksum: str) -> int | None:
    """The id of the newest stored plan with this checksum."""
    return _latest(db, "id", checksum)


def plan_by_inputs(db: Database, inputs: str) -> int | None:
    """The id of the stored plan holding the changes of the newest plan computed from
    `inputs` (see `save_plan`), for `save_repeat`; None when there is none (or it was stored
    before plans recorded where their values sit, and cannot be repeated unread)."""
    row = db.execute(
        "SELECT t.id FROM plans p JOIN plans t ON t.id = coalesce(p.changes_from, p.id) "
        "WHERE p.inputs = ? AND t.spans IS NOT NULL AND t.tally IS NOT NULL "
        "ORDER BY p.id DESC LIMIT 1", [inputs]).fetchone()
    return None if row is None else row[0]


def _decode(body: bytes) -> Plan:
    return Plan.from_dict(json.loads(zlib.decompress(body)))


def load_plan(db: Database, checksum: str, path: str | None = None) -> Plan | None:
    """The stored plan with this checksum, or None.

    With `path` (the state file), its changes stay in the state (`StoredChanges`) when the
    plan recorded where they sit: the rest of the plan is parsed, the changes are streamed
    (`StoredChanges.stream`) or counted when asked. Otherwise it is decoded whole."""
    found = plan_id(db, checksum)
    if found is None:
        return None
    row = None if path is None else db.execute(
        "SELECT p.body = x'', p.base, t.id, t.spans, t.tally FROM plans p "
        "JOIN plans t ON t.id = coalesce(p.changes_from, p.id) "
        "WHERE p.id = ? AND t.spans IS NOT NULL AND t.tally IS NOT NULL", [found]).fetchone()
    if row is None:
        return Plan.from_dict(json.loads(b"".join(_spliced(db, found))))
    repeat, own_base, rows_id, spans, tally_json = row
    spans = json.loads(spans)
    # a repeat's text is its twin's with its own base, whose length may differ
    moved = len(_canonical(json.loads(own_base))) - (spans["base"][1] - spans["base"][0]) if repeat else 0
    rest = _without_changes(_spliced(db, found), (spans["changes"][0] + moved, spans["changes"][1] + moved))
    return dataclasses.replace(Plan.from_dict(rest),
                               changes=StoredChanges(path, rows_id, json.loads(tally_json)))


class StoredChanges(StreamedChanges):
    """The changes of stored plan `plan_id` (one with change rows), read only when asked.

    `len`, `tally()` and `iter_groups()` (the renderers' listing, asset by asset from the
    change rows, as far as the caller reads) cost a query; `stream()` and `json_pieces()`
    cut the changes from the plan body as it is inflated, one at a time; indexing or
    iteration decodes them once, with their targets, and keeps them. Each read opens the
    state file `path` read-only, so it works after the state closed.
    """

    def __init__(self, path: str, plan_id: int, counts: Mapping[str, Any]):
        super().__init__(counts)
        self.path, self.plan_id = path, plan_id

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def iter_groups(self) -> Iterator[tuple[str, list[tuple[Change, str]]]]:
        """What `qatlan.render.lines.groups` makes of these changes, a group at a time:
        each definition alone and first, then each asset's changes in address order."""
        conn = self._connect()
        try:
            cols = "address, asset, part, action, before, after, reason, source"
            where = "plan_id = ? AND action != 'no-op'"
            typedef = (addresses.TYPEDEF_PREFIX, addresses.TYPEDEF_PREFIX[:-1] + "$")
            for row in conn.execute(f"SELECT {cols} FROM plan_changes WHERE {where} AND "
                                    "address >= ? AND address < ? ORDER BY address",
                                    [self.plan_id, *typedef]):
                yield row[0], [(_change(row), row[2])]
            asset, group = None, []
            for row in conn.execute(f"SELECT {cols} FROM plan_changes WHERE {where} AND NOT "
                                    "(address >= ? AND address < ?) ORDER BY address",
                                    [self.plan_id, *typedef]):
                if row[1] != asset and group:
                    yield asset, group
                    group = []
                asset = row[1]
                group.append((_change(row), row[2]))
            if group:
                yield asset, group
        finally:
            conn.close()

    def definitions(self, known: Iterable[Change] = ()) -> list[Change]:
        """The plan's definition changes (`atlan:typedef#...`), whole, in address order,
        without walking the plan: each is the one of `known` (the plan's
        `definitions_needed`, parsed with the plan) at its address, checked against its row.
        Should one not be there or differ, the changes are walked once to find them."""
        conn = self._connect()
        try:
            rows = conn.execute("SELECT address, action, before, after FROM plan_changes WHERE "
                                "plan_id = ? AND address >= ? AND address < ? ORDER BY address",
                                [self.plan_id, addresses.TYPEDEF_PREFIX,
                                 addresses.TYPEDEF_PREFIX[:-1] + "$"]).fetchall()
        finally:
            conn.close()
        by_address = {c.address: c for c in known}
        out = []
        for address, action, before, after in rows:
            c = by_address.get(address)
            if c is None or (c.action.value, _text(c.before), _text(c.after)) != (action, before, after):
                return [c for c in self.stream() if addresses.is_typedef(c.address)]
            out.append(c)
        return out

    def _scan(self) -> Iterator[tuple[Any, str]]:
        """(decoded, text) of each change, cut from the body as it is inflated."""
        conn = self._connect()
        try:
            body, spans = conn.execute("SELECT body, spans FROM plans WHERE id = ?",
                                       [self.plan_id]).fetchone()
        finally:
            conn.close()
        yield from split_array(_inflate(body), *json.loads(spans)["changes"])


def _change(row: tuple[Any, ...]) -> Change:
    """A change from its row, for display: its target holds only its `source`."""
    address, _, _, action, before, after, reason, source = row
    return Change(address, action, None if before is None else json.loads(before),
                  None if after is None else json.loads(after), reason,
                  {"source": source} if source is not None else {})
