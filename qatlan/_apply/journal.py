"""The apply journal: each change's outcome, committed with the ownership it implies.

`Journal.record(works)` writes one `journal` row per change (keyed by plan checksum and
address; a later run of the same plan replaces the row) and, for `applied` and `already`
changes, the ownership record (`qatlan.plan.own`) in the same transaction. A process killed
at any moment therefore leaves either both or neither. `find_interrupted` finds the plan of
an apply that was killed or interrupted, so the next `qatlan apply` can finish it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from qatlan.plan import Plan, own

from qatlan._apply.result import SETTLED, Outcome, Work

__all__ = ["Interrupted", "Journal", "find_interrupted", "mark_run_plan"]

_UPSERT = (
    "INSERT INTO journal (plan_checksum, address, action, outcome, error, run_id, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(plan_checksum, address) DO UPDATE SET "
    "action = excluded.action, outcome = excluded.outcome, error = excluded.error, "
    "run_id = excluded.run_id, at = excluded.at"
)
#: how a running apply names its plan in `runs.message` until it finishes
_MARK = "applying plan "


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    """Journal rows and ownership for one plan, in one state."""

    def __init__(self, state: Any, checksum: str, run_id: int | None, now: Callable[[], float]):
        self.state, self.checksum, self.run_id, self.now = state, checksum, run_id, now
        self.owned: dict[str, Any] = state.owned()
        row = state.db.execute("SELECT id FROM plans WHERE checksum = ? ORDER BY id DESC LIMIT 1",
                               [checksum]).fetchone()
        self.plan_id: int | None = row[0] if row else None

    def settled(self) -> dict[str, tuple[Outcome, str | None]]:
        """address → (outcome, error) of every change an earlier run already settled."""
        rows = self.state.db.execute(
            "SELECT address, outcome, error FROM journal WHERE plan_checksum = ?", [self.checksum])
        out = {}
        for address, outcome, error in rows:
            if Outcome(outcome) in SETTLED:
                out[address] = (Outcome(outcome), error)
        return out

    def record(self, works: Iterable[Work], dirty_containers: Iterable[int] = ()) -> None:
        """Commit the outcomes of `works` (settled ones only) and their ownership at once."""
        done = [w for w in works if w.outcome is not None]
        dirty = sorted(set(dirty_containers))
        if not done and not dirty:
            return
        at = _iso(self.now())
        with self.state.transaction():
            for w in done:
                c = w.change
                self.state.db.execute(_UPSERT, [self.checksum, c.address, c.action.value,
                                                w.outcome.value, w.error, self.run_id, at])
                if w.outcome in SETTLED and not c.address.startswith("atlan:typedef#"):
                    self._own(w)
            if dirty:
                self.state.mark_dirty_containers(dirty, self.run_id)

    def _own(self, w: Work) -> None:
        key, value = own(self.owned, w.change)
        if value is None:
            self.owned.pop(key, None)
            self.state.drop_owned(key)
        else:
            self.owned[key] = value
            self.state.set_owned(key, value, self.run_id, self.plan_id)


# --------------------------------------------------------------------------- resuming


def mark_run_plan(state: Any, run_id: int, checksum: str) -> None:
    """Name the plan a running apply works on (in `runs.message`, until finish_run)."""
    with state.transaction():
        state.db.execute("UPDATE runs SET message = ? WHERE id = ?", [_MARK + checksum, run_id])


@dataclass(frozen=True)
class Interrupted:
    """An apply that did not finish: its run, its plan, and how much is left."""

    run_id: int
    started_at: str
    plan: Plan
    checksum: str
    left: int


def find_interrupted(state: Any) -> Interrupted | None:
    """The plan of the latest apply if it stopped half-way and can still be finished.

    "Stopped half-way": killed (its run is still `running`; call this while holding the
    state lock, so that run is a dead one), interrupted, or aborted by an unexpected error.
    An apply that finished with failed changes is not resumed: plan again. None also when
    its plan is not in the state, when the state moved on since the plan was made (a
    refresh saw changes), or when nothing is left to do.
    """
    row = state.db.execute(
        "SELECT id, started_at, outcome, message FROM runs WHERE command = 'apply' "
        "ORDER BY id DESC LIMIT 1").fetchone()
    if row is None or row[2] == "ok" or not str(row[3] or "").startswith(_MARK):
        return None
    checksum = str(row[3])[len(_MARK):].split(":", 1)[0].strip()
    body = state.db.execute("SELECT body FROM plans WHERE checksum = ? ORDER BY id DESC LIMIT 1",
                            [checksum]).fetchone()
    if body is None:
        return None
    plan = Plan.from_dict(json.loads(zlib.decompress(body[0])))
    if plan.base.get("lineage") != state.lineage or plan.base.get("serial") != state.serial:
        return None
    done = Journal(state, checksum, None, lambda: 0.0).settled()
    left = sum(1 for c in plan.changes if c.address not in done)
    if not left:
        return None
    return Interrupted(row[0], row[1], plan, checksum, left)
