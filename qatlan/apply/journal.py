"""The apply journal: write-ahead intents, then each change's outcome with its ownership.

`Journal.intend(works)` journals the changes of a request as `intent` before it is sent.
`Journal.record(works)` journals each settled change (keyed by plan checksum and address;
a later row for the same change replaces the earlier one) and, for `applied` and `already`
changes, the ownership record (`qatlan.plan.own`) in the same transaction
(`State.record_outcomes`). A process killed at any moment therefore leaves, for each change
it sent, either its outcome with its ownership or an open intent, which the next command
settles by reading the target back (`qatlan.apply.settle_intents`). `find_interrupted` finds
the plan of an apply that was killed or interrupted, so the next `qatlan apply` can finish it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from qatlan import addresses
from qatlan.normalize import iso_utc
from qatlan.plan import Plan, own
from qatlan.state import INTENT, State

from qatlan.apply.result import SETTLED, Outcome, Work

__all__ = ["Interrupted", "Journal", "find_interrupted"]


class Journal:
    """Journal rows and ownership for one plan, in one state."""

    def __init__(self, state: State, checksum: str, run_id: int | None, now: Callable[[], float]):
        self.state, self.checksum, self.run_id, self.now = state, checksum, run_id, now
        #: what qatlan owns at the addresses this journal has settled or looked up (read
        #: from the state when first needed, `prefetch`: not the whole ownership table)
        self.owned: dict[str, Any] = {}
        self._looked: set[str] = set()
        self.plan_id: int | None = state.plan_id(checksum)

    def prefetch(self, addresses: Iterable[str]) -> None:
        """Read what qatlan owns at `addresses` (the plan's changes) in one pass."""
        wanted = set(addresses) - self._looked
        if wanted:
            self.owned.update(self.state.owned_at(wanted))
            self._looked |= wanted

    def forget(self) -> None:
        """Let go of what was read of ownership: an apply calls this after each window of
        changes (a plan changes each address once, so no later window needs it)."""
        self.owned.clear()
        self._looked.clear()

    def settled(self) -> dict[str, tuple[Outcome, str | None]]:
        """address → (outcome, error) of every change an earlier run already settled."""
        out = {}
        for address, (outcome, error) in self.state.journal(self.checksum).items():
            if outcome != INTENT and Outcome(outcome) in SETTLED:
                out[address] = (Outcome(outcome), error)
        return out

    def intend(self, works: Iterable[Work]) -> None:
        """Journal `works` as `intent`: their request is about to be sent (write-ahead)."""
        rows = [(w.change.address, w.change.action.value, INTENT, None) for w in works]
        if rows:
            self.state.record_outcomes(self.checksum, self.run_id, self.plan_id, rows,
                                       at=iso_utc(self.now()))

    def record(self, works: Iterable[Work], dirty_containers: Iterable[int] = ()) -> None:
        """Commit the outcomes of `works` (settled ones only) and their ownership at once."""
        done = [w for w in works if w.outcome is not None]
        dirty = sorted(set(dirty_containers))
        if not done and not dirty:
            return
        owned = [self._own(w) for w in done
                 if w.outcome in SETTLED and not addresses.is_typedef(w.change.address)]
        outcomes = [(w.change.address, w.change.action.value, w.outcome.value, w.error) for w in done]
        self.state.record_outcomes(self.checksum, self.run_id, self.plan_id, outcomes, owned, dirty,
                                   at=iso_utc(self.now()))

    def echoes(self, stamps: Iterable[tuple[str, int, int]]) -> None:
        """Record Atlan assets' update times before and after qatlan's writes (a poll of
        `qatlan watch` then knows these updates for its own: `qatlan.watch.poll`)."""
        self.state.record_echoes(stamps)

    def _own(self, w: Work) -> tuple[str, Any]:
        self.prefetch([w.change.address])
        key, value = own(self.owned, w.change)
        if value is None:
            self.owned.pop(key, None)
        else:
            self.owned[key] = value
        return key, value


# --------------------------------------------------------------------------- resuming


@dataclass(frozen=True)
class Interrupted:
    """An apply that did not finish: its run, its plan, and how much is left."""

    run_id: int
    started_at: str
    plan: Plan
    checksum: str
    left: int
    #: the state moved on since the plan was made (a refresh ran): it cannot be applied as
    #: it is; plan again, with its options (`qatlan.pipeline.options_of`)
    stale: bool = False


def find_interrupted(state: State) -> Interrupted | None:
    """The plan of the latest apply if it stopped half-way and was not finished since.

    "Stopped half-way": killed (its run is still `running` or marked `killed`; call this
    while holding the state lock, so that run is a dead one), interrupted, or aborted by an
    unexpected error. An apply that finished with failed changes is not resumed: plan
    again. None also when its plan is not in the state or was made with another state, or
    when nothing is left to do. `stale` says the state moved on since (a refresh ran).
    """
    run = state.last_run("apply")
    if run is None or run["outcome"] == "ok" or not run.get("plan_checksum"):
        return None
    if run["outcome"] == "error" and run.get("counts") is not None:
        return None  # it finished, with failed changes (or its plan was refused)
    checksum = run["plan_checksum"]
    plan = state.load_plan(checksum, lazy=True)  # its changes are streamed when applied
    if plan is None or plan.base.get("lineage") != state.lineage:
        return None
    # the journal holds only this plan's changes, each address once
    left = len(plan.changes) - len(Journal(state, checksum, None, lambda: 0.0).settled())
    if not left:
        return None
    return Interrupted(run["id"], run["started_at"], plan, checksum, left,
                       stale=plan.base.get("serial") != state.serial)
