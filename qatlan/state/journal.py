"""The apply journal: one row per change of a plan that apply settled, with its ownership.

A row is keyed by (plan checksum, address); a later run of the same plan replaces it.
`record` commits outcomes, the ownership they imply and the containers to re-read in one
transaction, so a process killed at any moment leaves all of them or none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from qatlan.normalize import iso_utc
from qatlan.state.base import write_transaction
from qatlan.state.snapshots import mark_dirty_containers

__all__ = ["INTENT", "journal_rows", "open_intents", "record", "set_owned"]

#: the outcome of a change whose request is about to be sent (write-ahead); replaced by the
#: real outcome once the answer is known, or by what a later read-back finds
INTENT = "intent"

#: a journal row carries its plan's id and the change's before/after (from `plan_changes`,
#: so the journal reads on its own: `asset_changes` in docs/state.md)
_UPSERT = (
    "INSERT INTO journal (plan_checksum, address, action, outcome, error, run_id, at, plan_id, "
    "before, after) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, c.before, c.after FROM (SELECT 1) "
    "LEFT JOIN plan_changes c ON c.plan_id = (SELECT coalesce(changes_from, id) FROM plans "
    "WHERE id = ?8) AND c.address = ?2 "
    "WHERE true ON CONFLICT(plan_checksum, address) DO UPDATE SET "
    "action = excluded.action, outcome = excluded.outcome, error = excluded.error, "
    "run_id = excluded.run_id, at = excluded.at, plan_id = excluded.plan_id, "
    "before = excluded.before, after = excluded.after"
)
_OWN = (
    "INSERT INTO ownership (address, value, run_id, plan_id, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(address) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, "
    "plan_id = excluded.plan_id, updated_at = excluded.updated_at"
)


def journal_rows(db: Database, checksum: str) -> dict[str, tuple[str, str | None]]:
    """address → (outcome, error) of every journaled change of the plan."""
    rows = db.execute("SELECT address, outcome, error FROM journal WHERE plan_checksum = ?", [checksum])
    return {address: (outcome, error) for address, outcome, error in rows}


def open_intents(db: Database) -> dict[str, list[str]]:
    """plan checksum → addresses journaled `intent` and not settled since (a run died, or
    could not tell whether its write landed)."""
    out: dict[str, list[str]] = {}
    rows = db.execute("SELECT plan_checksum, address FROM journal WHERE outcome = ? "
                      "ORDER BY plan_checksum, id", [INTENT])
    for checksum, address in rows:
        out.setdefault(checksum, []).append(address)
    return out


def record(db: Database, checksum: str, run_id: int | None, plan_id: int | None,
           outcomes: Iterable[tuple[str, str, str, str | None]],
           owned: Iterable[tuple[str, Any]] = (), dirty: Iterable[int] = (),
           at: str | None = None) -> None:
    """Commit at once: journal rows `(address, action, outcome, error)`, ownership records
    `(address, value)` (value None: forget it) and Qualytics containers to re-read."""
    at = at or iso_utc()
    with write_transaction(db):
        db.conn.executemany(_UPSERT, [(checksum, address, action, outcome, error, run_id, at, plan_id)
                                      for address, action, outcome, error in outcomes])
        set_owned(db, owned, run_id, plan_id, at)
        mark_dirty_containers(db, dirty, run_id)


def set_owned(db: Database, owned: Iterable[tuple[str, Any]], run_id: int | None,
              plan_id: int | None, at: str | None = None) -> None:
    """Record what qatlan wrote at each address (`(address, value)`; None: forget it)."""
    at = at or iso_utc()
    with write_transaction(db):
        for address, value in owned:
            if value is None:
                db.execute("DELETE FROM ownership WHERE address = ?", [address])
            else:
                db.execute(_OWN, [address, json.dumps(value, sort_keys=True), run_id, plan_id, at])
