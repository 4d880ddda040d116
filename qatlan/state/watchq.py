"""`qatlan watch`'s persistent work queue and watermarks (tables `watch_queue`, `watch_marks`).

A key is a table to reconcile (`qatlan.watch` names them: `q:c:<container id>`,
`q:d:<datastore id>`, `a:<table qualifiedName>`). Enqueueing a key that is queued already
collapses into it (controller-runtime's work queue): its debounce restarts, its event count
grows. A key leaves the queue only when the reconcile that took it finished, and only if no
event came for it meanwhile, so a kill at any point loses nothing (at-least-once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlite_utils import Database

from qatlan.state.base import write_transaction

__all__ = ["ECHO_KEEP_MS", "MAX_UPDATES", "done", "due", "echo_stamps", "enqueue", "get_mark", "next_due",
           "own_writes", "queue_depth", "rebase", "record_echoes", "retry", "set_mark"]

#: how long an echo stamp is kept, counted back from the newest one (Atlan's clock)
ECHO_KEEP_MS = 7 * 24 * 3600 * 1000


#: at most this many (GUID, updateTime) pairs are kept per queued key (more: NULL)
MAX_UPDATES = 50


def enqueue(db: Database, keys: Iterable[str], *, now: float, debounce: float, source: str,
            updates: Mapping[str, Iterable[tuple[str, int]]] | None = None) -> int:
    """Queue `keys` (due `debounce` seconds after now); returns how many keys were new.

    `updates`: key → the (Atlan GUID, updateTime) pairs its event reported. A key keeps the
    pairs of all its events while each event had some; one without (a Qualytics event, a
    poll) makes it NULL: such a key is reconciled whatever qatlan wrote."""
    updates = updates or {}
    rows = []
    for k in dict.fromkeys(keys):
        pairs = [[g, int(ms)] for g, ms in updates.get(k, ())]
        rows.append((k, now + debounce, now, now, source, json.dumps(pairs) if pairs else None))
    if not rows:
        return 0
    with write_transaction(db):
        before = queue_depth(db)
        db.conn.executemany(
            "INSERT INTO watch_queue (key, due, first_seen, last_seen, events, attempts, source, updates) "
            "VALUES (?, ?, ?, ?, 1, 0, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "due = max(watch_queue.due, excluded.due), last_seen = excluded.last_seen, "
            "events = watch_queue.events + 1, updates = CASE "
            "WHEN watch_queue.updates IS NULL OR excluded.updates IS NULL THEN NULL "
            f"WHEN json_array_length(watch_queue.updates) >= {MAX_UPDATES} THEN NULL "
            "ELSE (SELECT json_group_array(json(value)) FROM (SELECT value FROM json_each(watch_queue.updates) "
            "UNION ALL SELECT value FROM json_each(excluded.updates))) END", rows)
        return queue_depth(db) - before


def own_writes(db: Database, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The due rows whose every event reported an update qatlan made itself: an update time
    within one of its writes to that asset (`echo_stamps`: after its re-read, at most its
    read-back). Each event names one update, so containment is enough; a poll sees only an
    asset's latest update and needs a chain of stamps instead (`qatlan.watch.poll.is_echo`)."""
    rows = [r for r in rows if r.get("updates")]
    pairs = {r["key"]: json.loads(r["updates"]) for r in rows}
    stamps = echo_stamps(db, {g for ps in pairs.values() for g, _ in ps})

    def mine(guid: str, ms: int) -> bool:
        return any(before < ms <= after for before, after in stamps.get(guid, ()))

    return [r for r in rows if pairs[r["key"]] and all(mine(g, ms) for g, ms in pairs[r["key"]])]


def due(db: Database, now: float, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` keys whose debounce is over, the longest waiting first."""
    cursor = db.execute("SELECT * FROM watch_queue WHERE due <= ? ORDER BY first_seen, key LIMIT ?",
                        [now, limit])
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def done(db: Database, taken: Iterable[dict[str, Any]]) -> None:
    """Remove the keys a reconcile took, unless an event came for one since it was taken."""
    with write_transaction(db):
        db.conn.executemany("DELETE FROM watch_queue WHERE key = ? AND last_seen <= ?",
                            [(t["key"], t["last_seen"]) for t in taken])


def retry(db: Database, keys: Iterable[str], *, now: float, base: float = 5.0, cap: float = 300.0) -> None:
    """A reconcile that failed: its keys come back after a backoff that doubles per attempt."""
    with write_transaction(db):
        for key in keys:
            db.execute("UPDATE watch_queue SET attempts = attempts + 1, "
                       "due = ? + min(?, ? * (1 << min(attempts, 16))) WHERE key = ?",
                       [now, cap, base, key])


def rebase(db: Database, debounce: float) -> None:
    """At start: keys queued under another debounce are due `debounce` after their last
    event (never later than they were)."""
    with write_transaction(db):
        db.execute("UPDATE watch_queue SET due = min(due, last_seen + ?)", [debounce])


def next_due(db: Database) -> float | None:
    """When the next queued key is due (None: the queue is empty)."""
    row = db.execute("SELECT min(due) FROM watch_queue").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def queue_depth(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM watch_queue").fetchone()[0])


def get_mark(db: Database, name: str, default: Any = None) -> Any:
    row = db.execute("SELECT value FROM watch_marks WHERE name = ?", [name]).fetchone()
    return default if row is None else json.loads(row[0])


def set_mark(db: Database, name: str, value: Any) -> None:
    with write_transaction(db):
        db.execute("INSERT INTO watch_marks (name, value) VALUES (?, ?) ON CONFLICT(name) "
                   "DO UPDATE SET value = excluded.value", [name, json.dumps(value)])


def record_echoes(db: Database, stamps: Iterable[tuple[str, int, int]]) -> None:
    """Record (asset GUID, its update time before qatlan's write, after it); stamps older than
    `ECHO_KEEP_MS` before the newest go."""
    rows = sorted({(g, int(b), int(a)) for g, b, a in stamps if g and b is not None and a is not None and a > b})
    if not rows:
        return
    with write_transaction(db):
        db.conn.executemany("INSERT OR IGNORE INTO echo_stamps (guid, before_ms, after_ms) VALUES (?, ?, ?)", rows)
        db.execute("DELETE FROM echo_stamps WHERE after_ms < (SELECT max(after_ms) FROM echo_stamps) - ?",
                    [ECHO_KEEP_MS])


def echo_stamps(db: Database, guids: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """GUID → its (before, after) update times around qatlan's writes, oldest first."""
    out: dict[str, list[tuple[int, int]]] = {}
    for g, b, a in db.execute("SELECT guid, before_ms, after_ms FROM echo_stamps WHERE guid IN "
                              "(SELECT value FROM json_each(?)) ORDER BY before_ms, after_ms",
                              [json.dumps(sorted(set(guids)))]):
        out.setdefault(g, []).append((b, a))
    return out
