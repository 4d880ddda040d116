"""`qatlan watch`'s persistent work queue and watermarks (tables `watch_queue`, `watch_marks`).

A key is a table to reconcile (`qatlan.watch` names them: `q:c:<container id>`,
`q:d:<datastore id>`, `a:<table qualifiedName>`). Enqueueing a key that is queued already
collapses into it (controller-runtime's work queue): its debounce restarts, its event count
grows. A key leaves the queue only when the reconcile that took it finished, and only if no
event came for it meanwhile, so a kill at any point loses nothing (at-least-once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from qatlan.state.base import write_transaction

__all__ = ["done", "due", "enqueue", "get_mark", "next_due", "queue_depth", "rebase", "retry", "set_mark"]


def enqueue(db: Database, keys: Iterable[str], *, now: float, debounce: float, source: str) -> int:
    """Queue `keys` (due `debounce` seconds after now); returns how many keys were new."""
    rows = [(k, now + debounce, now, now, source) for k in dict.fromkeys(keys)]
    if not rows:
        return 0
    with write_transaction(db):
        before = queue_depth(db)
        db.conn.executemany(
            "INSERT INTO watch_queue (key, due, first_seen, last_seen, events, attempts, source) "
            "VALUES (?, ?, ?, ?, 1, 0, ?) ON CONFLICT(key) DO UPDATE SET "
            "due = max(watch_queue.due, excluded.due), last_seen = excluded.last_seen, "
            "events = watch_queue.events + 1", rows)
        return queue_depth(db) - before


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
