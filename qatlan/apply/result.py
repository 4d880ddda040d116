"""What apply reports: one outcome per change, inconsistent results, and the totals.

    outcome   meaning                                                       settled
    applied   qatlan wrote it (and recorded ownership)                      yes
    already   the target already equalled the change's after: no write      yes
    drifted   the target no longer equalled the change's before: not written no
    failed    the write (or a read it needed) failed; `error` says why      no
    skipped   not attempted: a definition it needs failed, or a rule says no no

"Settled" changes are not attempted again when the same plan is applied again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from qatlan.errors import ApplyError
from qatlan.plan import Action, Change

__all__ = ["ApplyResult", "ChangeResult", "Inconsistency", "Outcome", "SETTLED", "Work"]


class Outcome(str, Enum):
    APPLIED = "applied"
    ALREADY = "already"
    DRIFTED = "drifted"
    FAILED = "failed"
    SKIPPED = "skipped"


#: outcomes that a later apply of the same plan does not attempt again
SETTLED = frozenset({Outcome.APPLIED, Outcome.ALREADY})


@dataclass
class Work:
    """One change on its way through apply (mutable; internal)."""

    change: Change
    outcome: Outcome | None = None
    error: str | None = None

    def settle(self, outcome: Outcome, error: str | None = None) -> None:
        self.outcome, self.error = outcome, error

    @property
    def open(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True, slots=True)
class ChangeResult:
    address: str
    action: Action
    outcome: Outcome
    error: str | None = None
    #: True when an earlier apply of the same plan settled it (not attempted in this run)
    earlier: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "action": self.action.value,
                "outcome": self.outcome.value, "error": self.error, "earlier": self.earlier}


@dataclass(frozen=True)
class Inconsistency:
    """A written change whose read-back differs from the plan's after (Terraform's
    "inconsistent result after apply"); `actual` None means the value was not found."""

    address: str
    expected: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "expected": self.expected, "actual": self.actual}


@dataclass(frozen=True)
class ApplyResult:
    plan_checksum: str
    run_id: int | None
    results: tuple[ChangeResult, ...]
    inconsistencies: tuple[Inconsistency, ...] = ()
    #: HTTP requests sent in this run, by service, and write requests by (service, endpoint)
    requests: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    #: what else the run did, one line each (settling an interrupted run's writes)
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """adopted (found as planned and recorded as qatlan's), added/changed/destroyed
        (applied in this run), and one count per outcome."""
        out = {"added": 0, "changed": 0, "destroyed": 0, "adopted": 0}
        names = {Action.CREATE: "added", Action.UPDATE: "changed", Action.DELETE: "destroyed"}
        outcomes: Counter[str] = Counter()
        for r in self.results:
            if r.earlier:
                outcomes["earlier"] += 1
                continue
            outcomes[r.outcome.value] += 1
            if r.outcome is Outcome.APPLIED and r.action in names:
                out[names[r.action]] += 1
            elif r.action is Action.ADOPT and r.outcome is Outcome.ALREADY:
                out["adopted"] += 1
        for o in (*Outcome, "earlier"):
            key = o.value if isinstance(o, Outcome) else o
            out[key] = outcomes[key]
        out["inconsistent"] = len(self.inconsistencies)
        return out

    @property
    def failed(self) -> tuple[ChangeResult, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.FAILED and not r.earlier)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.inconsistencies

    def raise_for_failures(self, limit: int = 20) -> None:
        """ApplyError listing the failed changes (and inconsistent results), if any."""
        if self.ok:
            return
        lines = []
        if self.failed:
            lines.append(f"{len(self.failed)} change(s) failed:")
            lines += [f"  {r.address}: {r.error}" for r in self.failed[:limit]]
            if len(self.failed) > limit:
                lines.append(f"  ... and {len(self.failed) - limit} more (see `qatlan history`)")
        if self.inconsistencies:
            lines.append(f"{len(self.inconsistencies)} change(s) read back differently than planned "
                         "(inconsistent result after apply):")
            lines += [f"  {i.address}: expected {i.expected!r}, got {i.actual!r}"
                      for i in self.inconsistencies[:limit]]
        raise ApplyError(
            "\n".join(lines),
            hint="run `qatlan apply` again: settled changes are not repeated; "
                 "fix what the errors name first",
        )
