"""One apply run, in the documented order.

    0. settle open intents (writes a killed run sent without recording the answer)
    1. skip what an earlier run of the same plan settled (journal: applied / already)
    2. Atlan definitions: tag typedefs, the custom metadata set or its missing attributes
    3. Qualytics tag definitions: external tags to attach, overwrite_tags conversions
    4. writes, Atlan and Qualytics side by side: re-read, decide, journal each batch as
       intent, write it, journal its outcome, read back
    5. the run's record (`runs`) with the counts
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from qatlan import addresses
from qatlan.apply.atlan import apply_atlan
from qatlan.apply.batching import BatchSizer
from qatlan.apply.context import Ctx, ProgressFn
from qatlan.apply.definitions import NameResolver, apply_typedefs, skip_dependents
from qatlan.apply.journal import Journal
from qatlan.apply.qtags import TagPreparer
from qatlan.apply.qualytics import apply_qualytics
from qatlan.apply.result import ApplyResult, ChangeResult, Work
from qatlan.apply.settle import settle_intents
from qatlan.clients import Clients, Names, open_clients
from qatlan.config import Config
from qatlan.plan import Action, Change, Plan, definitions_of, each_change, plan_checksum
from qatlan.state import State

__all__ = ["apply_plan", "apply_plan_async"]


def apply_plan(
    config: Config,
    state: State,
    plan: Plan,
    *,
    parallelism: int | None = None,
    progress: ProgressFn | None = None,
    now: Callable[[], float] = time.time,
    run_id: int | None = None,
    checksum: str | None = None,
    **transports: Any,
) -> ApplyResult:
    """Apply `plan` against both services; returns every change's outcome.

    `parallelism` bounds the batches in flight (default: `[atlan] concurrency`). `run_id`: an
    `apply` run the caller recorded already (`state.start_run("apply", plan_checksum=...)`,
    before anything else, so that a kill at any point leaves a run to resume); apply
    finishes it. Without it, apply records its own.
    `progress(stage, done, total)` is called after each batch is journaled. `transports`
    (`atlan_transport`, `qualytics_transport`, or other `HttpClient` options such as
    `sleep`) are passed to the clients. Failed changes do not stop the others: check
    `result.ok` or call `result.raise_for_failures()`.

    The changes are taken a window at a time (`WINDOW`), so a plan whose changes stay in the
    state (`State.load_plan(lazy=True)`, `qatlan.pipeline.open_saved_plan`) is applied in
    bounded memory; give its `checksum` (known from the state or the plan file), or the
    whole plan is encoded once to compute it.
    """
    return asyncio.run(apply_plan_async(config, state, plan, parallelism=parallelism,
                                        progress=progress, now=now, run_id=run_id,
                                        checksum=checksum, **transports))


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


async def apply_plan_async(
    config: Config,
    state: State,
    plan: Plan,
    *,
    parallelism: int | None = None,
    progress: ProgressFn | None = None,
    now: Callable[[], float] = time.time,
    clients: Clients | None = None,
    run_id: int | None = None,
    checksum: str | None = None,
    **transports: Any,
) -> ApplyResult:
    """Apply `plan` (see `qatlan.apply.apply_plan`); `clients` reuses open clients."""
    checksum = checksum or plan_checksum(plan)
    with state.run("apply", plan_checksum=checksum, run_id=run_id) as run:
        if state.plan_id(checksum) is None:  # a signed plan from elsewhere: kept here, so
            state.save_plan(plan, run.id)    # its intents can be settled and it can resume
        if clients is None:
            async with open_clients(config, **transports) as opened:
                result = await _run(config, state, plan, opened, checksum, run.id, parallelism, progress, now)
        else:
            result = await _run(config, state, plan, clients, checksum, run.id, parallelism, progress, now)
        counts = result.counts()
        run.finish("ok" if result.ok else "error", counts=counts, message=None if result.ok else
                   f"finished: {counts['failed']} failed, {counts['inconsistent']} inconsistent")
    return result


async def _run(config: Config, state: State, plan: Plan, clients: Clients, checksum: str,
               run_id: int, parallelism: int | None, progress: ProgressFn | None,
               now: Callable[[], float]) -> ApplyResult:
    before = clients.counters()
    settled = await settle_intents(config, state, clients, run_id=run_id, now=now)
    journal = Journal(state, checksum, run_id, now)  # after settling: it reads what is owned
    earlier = journal.settled()
    counted = _Counted(progress or _quiet)
    ctx = Ctx(clients, config, journal, Names(), parallelism or config.atlan.concurrency,
              counted, BatchSizer(config.atlan.batch_size))
    names = NameResolver(clients.atlan, str(plan.settings.get("cm_set_name") or
                                            config.atlan.custom_metadata_set))
    tags = TagPreparer(clients.qualytics, plan.settings)
    # definitions before any value, wherever the plan lists them
    typedefs = [Work(c) for c in definitions_of(plan)
                if c.action is not Action.NOOP and c.address not in earlier]
    if typedefs:
        journal.prefetch(w.change.address for w in typedefs)
        await apply_typedefs(clients.atlan, typedefs)
        journal.record(typedefs)
    done = {w.change.address: w for w in typedefs}
    results: list[ChangeResult] = []
    for window, last in windows(each_change(plan.changes), WINDOW):
        values = [Work(c) for c in window if c.action is not Action.NOOP and c.address not in earlier
                  and c.address not in done]
        # before any write: a run killed after a Qualytics write landed but before its
        # journal row must still make the next refresh re-read that container's fields
        state.mark_dirty_containers(_qualytics_containers(values), run_id)
        journal.prefetch(w.change.address for w in values)
        skip_dependents(values, typedefs)
        atlan = [w for w in values if w.change.target.get("side") == "atlan"]
        ctx.names = await names.resolve(atlan)
        qualytics = [w for w in values if w.change.target.get("side") == "qualytics"]
        converted = await tags.prepare(qualytics)
        journal.record(w for w in qualytics if not w.open)
        counted.last = last
        await asyncio.gather(apply_atlan(ctx, atlan), apply_qualytics(ctx, qualytics, converted))
        results += _results(window, values, earlier, done)
        journal.forget()
        counted.next_window()
    counted.finish()
    notes = (settled.describe(),) if settled.total else ()
    requests, writes = clients.since(before)
    return ApplyResult(checksum, run_id, tuple(results), tuple(ctx.inconsistencies), requests, writes,
                       notes)


#: changes taken at a time: a window's changes are decoded (a stored plan's are streamed),
#: applied and let go before the next, so apply's memory follows this, not the plan
WINDOW = 50_000


def windows(changes: Iterable[Change], size: int) -> Iterator[tuple[list[Change], bool]]:
    """`changes` cut into lists of about `size` (an asset's changes are never cut apart, so
    each asset is still one entity written once), each with whether it is the last."""
    it = iter(changes)
    pending = next(it, None)
    while pending is not None:
        window = [pending]
        pending = next(it, None)
        while pending is not None and (len(window) < size or _asset(pending) == _asset(window[-1])):
            window.append(pending)
            pending = next(it, None)
        yield window, pending is None


def _asset(change: Change) -> str:
    return addresses.parse(change.address)[0]


class _Counted:
    """Progress counted across windows: `done` runs on from the earlier windows; the total
    is known (and reported) in the last window only."""

    def __init__(self, report: ProgressFn):
        self.report, self.last = report, True
        self._base: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._open: set[str] = set()  # stages last reported without a total

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        self._seen[stage] = done
        start = self._base.get(stage, 0)
        total = start + total if self.last and total is not None else None
        (self._open.add if total is None else self._open.discard)(stage)
        self.report(stage, start + done, total)

    def next_window(self) -> None:
        for stage, done in self._seen.items():
            self._base[stage] = self._base.get(stage, 0) + done
        self._seen.clear()

    def finish(self) -> None:
        """Each stage's count is its total now (a stage the last window did not reach was
        counted without one)."""
        for stage in sorted(self._open):
            self.report(stage, self._base[stage], self._base[stage])
        self._open.clear()


def _qualytics_containers(works: list[Work]) -> set[int]:
    out: set[int] = set()
    for w in works:
        t = w.change.target
        if t.get("side") != "qualytics":
            continue
        if t.get("container_id") is not None:
            out.add(int(t["container_id"]))
        elif t.get("kind") == "container" and t.get("id") is not None:
            out.add(int(t["id"]))
    return out


def _results(window: list[Change], works: list[Work], earlier: dict,
             definitions: dict[str, Work]) -> Iterator[ChangeResult]:
    """The outcome of each change of `window`, in plan order (no-ops and changes left open
    have none)."""
    by_address = {**definitions, **{w.change.address: w for w in works}}
    for c in window:
        if c.address in earlier:
            outcome, error = earlier[c.address]
            yield ChangeResult(c.address, c.action, outcome, error, earlier=True)
        elif c.address in by_address and by_address[c.address].outcome is not None:
            w = by_address[c.address]
            yield ChangeResult(c.address, c.action, w.outcome, w.error)
