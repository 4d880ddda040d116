"""Settling open intents: what a killed (or answer-less) apply sent is read back and recorded.

Apply journals each batch's changes as `intent` before sending it. An intent still open
later means the run died, or lost the answer, between sending and recording the outcome: the
write may or may not have landed. Every command that writes the state settles them first
(`refresh`, `plan`, `apply`; `qatlan.refresh` and `qatlan.pipeline` call this), so ownership
never depends on how long the process lived:

    landed (the target holds the change's after)   → applied, and owned, as if journaled
    not landed (the target still holds its before) → failed: a resumed apply writes it
    anything else (someone changed it since)       → drifted: not owned

Only the targets of open intents are read (one `GET /entity/bulk` per 100 Atlan assets,
Qualytics objects as apply reads them), and nothing is written. When the read fails the
intents stay open and the command stops: planning from a state that does not know what it
owns could mistake qatlan's own values for someone else's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qatlan.apply.atlan import read_back_atlan
from qatlan.apply.batching import BatchSizer, error_text
from qatlan.apply.context import Ctx
from qatlan.apply.definitions import resolve_names
from qatlan.apply.journal import Journal
from qatlan.apply.qualytics import read_back_qualytics
from qatlan.apply.result import Outcome, Work
from qatlan.clients import Clients, open_clients
from qatlan.config import Config
from qatlan.errors import ApiError, StateError
from qatlan.plan import each_change
from qatlan.state import State

__all__ = ["Settled", "settle_intents", "settle_open_intents"]


@dataclass(frozen=True)
class Settled:
    """What settling found: changes that had landed, had not, or had drifted."""

    landed: int = 0
    not_landed: int = 0
    drifted: int = 0

    @property
    def total(self) -> int:
        return self.landed + self.not_landed + self.drifted

    def describe(self) -> str:
        return (f"Settled {self.total} write(s) an interrupted apply had sent: {self.landed} "
                f"landed (recorded as qatlan's), {self.not_landed} did not land, "
                f"{self.drifted} changed since.")


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


async def settle_intents(config: Config, state: State, clients: Clients, *, run_id: int | None = None,
                         now: Callable[[], float] = time.time) -> Settled:
    """Read back the targets of every open intent and journal what landed (with ownership)."""
    landed = not_landed = drifted = 0
    for checksum, addresses in state.open_intents().items():
        plan = state.load_plan(checksum, lazy=True)
        if plan is None:  # plans are stored before apply; a state edited by hand
            raise StateError(f"the journal has {len(addresses)} unsettled write(s) of plan "
                             f"{checksum[:12]}, which is not in the state")
        wanted = set(addresses)
        works = [Work(c) for c in each_change(plan.changes) if c.address in wanted]
        atlan = [w for w in works if w.change.target.get("side") == "atlan"]
        qualytics = [w for w in works if w.change.target.get("side") == "qualytics"]
        journal = Journal(state, checksum, run_id, now)
        try:
            names = await resolve_names(clients.atlan, atlan, str(plan.settings.get("cm_set_name")
                                                                 or config.atlan.custom_metadata_set))
            ctx = Ctx(clients, config, journal, names, config.atlan.concurrency, _quiet,
                      BatchSizer(config.atlan.batch_size))
            if atlan:
                await read_back_atlan(ctx, atlan)
            if qualytics:
                await read_back_qualytics(clients.qualytics, qualytics)
        except ApiError as exc:
            raise ApiError(f"{len(works)} write(s) of an interrupted apply could not be read back "
                           f"to see whether they landed: {error_text(exc)}",
                           hint="run the command again when both services answer; nothing was "
                                "changed") from exc
        journal.record(works)
        landed += sum(w.outcome is Outcome.APPLIED for w in works)
        not_landed += sum(w.outcome is Outcome.FAILED for w in works)
        drifted += sum(w.outcome is Outcome.DRIFTED for w in works)
    return Settled(landed, not_landed, drifted)


def settle_open_intents(config: Config, state: State, *, run_id: int | None = None,
                        now: Callable[[], float] = time.time, **transports: Any) -> Settled:
    """`settle_intents` for a caller without open clients: none are opened (no request is
    made) when the journal has no open intent, the usual case."""
    if not state.open_intents():
        return Settled()

    async def run() -> Settled:
        async with open_clients(config, **transports) as clients:
            return await settle_intents(config, state, clients, run_id=run_id, now=now)

    return asyncio.run(run())
