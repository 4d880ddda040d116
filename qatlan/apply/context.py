"""What the apply pipelines share: clients, names, the journal, limits and the report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qatlan.apply.batching import BatchSizer
from qatlan.apply.decide import MISSING, Decision, decide, drift_message
from qatlan.apply.journal import Journal
from qatlan.apply.result import Inconsistency, Outcome, Work
from qatlan.clients import Clients, Names
from qatlan.config import Config

__all__ = ["NOT_LANDED", "Ctx", "ProgressFn", "settle_decided", "settle_read_back"]

#: why a change whose answer was lost counts as failed after its read-back
NOT_LANDED = "the answer was lost, and reading the target back shows the write did not land"

ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass
class Ctx:
    clients: Clients
    config: Config
    journal: Journal
    names: Names
    parallelism: int
    progress: ProgressFn
    sizer: BatchSizer
    inconsistencies: list[Inconsistency] = field(default_factory=list)
    _gate: asyncio.Semaphore | None = None

    @property
    def gate(self) -> asyncio.Semaphore:
        """Bounds how many chunks (each: read, write its batches in turn, read back) run at once."""
        if self._gate is None:
            self._gate = asyncio.Semaphore(max(1, self.parallelism))
        return self._gate

    def check(self, w: Work, current: Any) -> None:
        """Record an inconsistent result when a written change does not read back as planned."""
        if current is MISSING or decide(w.change, current) is not Decision.ALREADY:
            self.inconsistencies.append(Inconsistency(
                w.change.address, w.change.after, None if current is MISSING else current))


def settle_decided(w: Work, current: Any) -> bool:
    """Settle `w` as ALREADY or DRIFTED from its current value; True when it must be written."""
    decision = decide(w.change, current)
    if decision is Decision.ALREADY:
        w.settle(Outcome.ALREADY)
    elif decision is Decision.DRIFTED:
        w.settle(Outcome.DRIFTED, drift_message(w.change, current))
    return decision is Decision.WRITE


def settle_read_back(w: Work, current: Any) -> None:
    """Settle a change whose write may or may not have landed (an open intent, a lost
    answer) from its target's value now: at its after → applied (the write landed; it is
    owned); at its before → failed (it did not land); anything else → drifted."""
    decision = decide(w.change, current)
    if decision is Decision.ALREADY:
        w.settle(Outcome.APPLIED)
    elif decision is Decision.WRITE:
        w.settle(Outcome.FAILED, f"{w.error}; {NOT_LANDED}" if w.error else NOT_LANDED)
    else:
        w.settle(Outcome.DRIFTED, drift_message(w.change, current))
