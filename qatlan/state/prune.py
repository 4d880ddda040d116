"""Retention: drop old snapshots and unapplied plans, keep every answer about what is kept.

`prune` picks the oldest snapshot to keep (C) from `keep_snapshots` and/or `older_than`
(seconds), then, in one transaction:

- deletes the snapshots before C (the latest snapshot is always kept);
- drops the record versions that only those snapshots held (`valid_to <= C`), and moves the
  start of the versions that reach into C forward to C (`valid_from = C`): each kept
  snapshot holds exactly the versions it held before, so `state show --at`, `state diff` and
  the values `qatlan log` reconstructs for it do not change;
- deletes the plans made from a deleted snapshot that apply never touched (no journal row),
  with their change and conflict rows (a kept plan that shared a deleted plan's rows takes
  them over); plans apply touched are kept whole, with their journal rows, so `qatlan log`
  still shows every change qatlan made (their `snapshot_id` becomes NULL);

then runs VACUUM (and a WAL checkpoint) so the file shrinks. Runs, ownership and the lock
are never touched.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from qatlan.errors import StateError
from qatlan.normalize import iso_utc
from qatlan.state.base import write_transaction
from qatlan.state import plans

__all__ = ["PruneResult", "prune"]


@dataclass(frozen=True)
class PruneResult:
    """What `prune` removed, and the state file's size before and after."""

    keep_from: int | None  # the oldest snapshot kept (None: nothing to prune)
    snapshots: int
    versions_dropped: int
    versions_moved: int
    plans: int
    bytes_before: int
    bytes_after: int


def _size(path: Path | str) -> int:
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(f"{path}{suffix}")
        except OSError:
            pass
    return total


def cutoff(db: Database, keep_snapshots: int | None, older_than: float | None,
           now: float) -> int | None:
    """The oldest snapshot to keep, or None when nothing would be pruned. With both rules a
    snapshot goes only when both let it go."""
    if keep_snapshots is None and older_than is None:
        raise StateError("say what to keep: --keep-snapshots N or --older-than DAYS",
                         hint="e.g. qatlan state prune --keep-snapshots 30")
    if keep_snapshots is not None and keep_snapshots < 1:
        raise StateError("--keep-snapshots must be at least 1 (the latest snapshot is always kept)")
    ids = [sid for (sid,) in db.execute("SELECT id FROM snapshots ORDER BY id")]
    if not ids:
        return None
    latest = ids[-1]
    limits = []
    if keep_snapshots is not None:
        limits.append(ids[-keep_snapshots] if keep_snapshots <= len(ids) else ids[0])
    if older_than is not None:
        row = db.execute("SELECT min(id) FROM snapshots WHERE taken_at >= ?",
                         [iso_utc(now - older_than)]).fetchone()
        limits.append(row[0] if row[0] is not None else latest)
    first = min(min(limits), latest)  # a snapshot goes when every rule given lets it go
    return None if first <= ids[0] else first


def prune(db: Database, path: Path | str, *, keep_snapshots: int | None = None,
          older_than: float | None = None, now: float | None = None) -> PruneResult:
    """Prune the state (see the module doc); returns what went."""
    before = _size(path)
    now = time.time() if now is None else now
    with write_transaction(db):
        first = cutoff(db, keep_snapshots, older_than, now)
        if first is None:
            return PruneResult(None, 0, 0, 0, 0, before, before)
        dropped = db.execute("DELETE FROM records WHERE valid_to IS NOT NULL AND valid_to <= ?",
                             [first]).rowcount
        moved = db.execute("UPDATE records SET valid_from = ? WHERE valid_from < ?",
                           [first, first]).rowcount
        plans = _prune_plans(db, first)
        snapshots = db.execute("DELETE FROM snapshots WHERE id < ?", [first]).rowcount
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM wrote the new file into the WAL
    return PruneResult(first, snapshots, dropped, moved, plans, before, _size(path))


def _prune_plans(db: Database, first: int) -> int:
    """Delete the unapplied plans of pruned snapshots; keep applied ones without their
    snapshot. Returns how many plans were deleted."""
    old = [pid for (pid,) in db.execute(
        "SELECT id FROM plans WHERE snapshot_id < ? AND NOT EXISTS "
        "(SELECT 1 FROM journal j WHERE j.plan_checksum = plans.checksum) ORDER BY id", [first])]
    doomed = set(old)
    for pid in old:
        heirs = [h for (h,) in db.execute("SELECT id FROM plans WHERE changes_from = ? ORDER BY id", [pid])
                 if h not in doomed]
        if heirs:  # a kept plan shares this plan's rows: it takes them over
            heir = heirs[0]
            plans.take_over_body(db, heir)  # before it stops being a repeat
            for table in ("plan_changes", "plan_conflicts"):
                db.execute(f"UPDATE {table} SET plan_id = ? WHERE plan_id = ?", [heir, pid])
            db.execute("UPDATE plans SET changes_from = NULL WHERE id = ?", [heir])
            db.execute("UPDATE plans SET changes_from = ? WHERE changes_from = ? AND id != ?",
                       [heir, pid, heir])
        for table in ("plan_changes", "plan_conflicts"):
            db.execute(f"DELETE FROM {table} WHERE plan_id = ?", [pid])
        db.execute("UPDATE ownership SET plan_id = NULL WHERE plan_id = ?", [pid])
        db.execute("DELETE FROM plans WHERE id = ?", [pid])
    db.execute("UPDATE plans SET snapshot_id = NULL WHERE snapshot_id < ?", [first])
    return len(old)
