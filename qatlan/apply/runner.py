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
from collections.abc import Callable
from typing import Any

from qatlan.apply.atlan import apply_atlan
from qatlan.apply.batching import BatchSizer
from qatlan.apply.context import Ctx, ProgressFn
from qatlan.apply.definitions import apply_typedefs, resolve_names, skip_dependents
from qatlan.apply.journal import Journal
from qatlan.apply.qtags import prepare_tags
from qatlan.apply.qualytics import apply_qualytics
from qatlan.apply.result import ApplyResult, ChangeResult, Work
from qatlan.apply.settle import settle_intents
from qatlan.clients import Clients, open_clients
from qatlan.config import Config
from qatlan.plan import Action, Plan, plan_checksum
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
    """
    return asyncio.run(apply_plan_async(config, state, plan, parallelism=parallelism,
                                        progress=progress, now=now, run_id=run_id, **transports))


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
    **transports: Any,
) -> ApplyResult:
    """Apply `plan` (see `qatlan.apply.apply_plan`); `clients` reuses open clients."""
    checksum = plan_checksum(plan)
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
    # before any write: a run killed after a Qualytics write landed but before its journal
    # row must still make the next refresh re-read that container's fields
    state.mark_dirty_containers(_qualytics_containers(plan), run_id)
    earlier = journal.settled()
    works = [Work(c) for c in plan.changes if c.action is not Action.NOOP and c.address not in earlier]
    journal.prefetch(w.change.address for w in works)
    typedefs = [w for w in works if w.change.target.get("part") == "typedef"]
    await apply_typedefs(clients.atlan, typedefs)
    journal.record(typedefs)
    values = [w for w in works if w.change.target.get("part") != "typedef"]
    skip_dependents(values, typedefs)
    atlan = [w for w in values if w.change.target.get("side") == "atlan"]
    names = await resolve_names(clients.atlan, atlan, str(plan.settings.get("cm_set_name") or
                                                            config.atlan.custom_metadata_set))
    qualytics = [w for w in values if w.change.target.get("side") == "qualytics"]
    converted = await prepare_tags(clients.qualytics, qualytics, plan.settings)
    journal.record(w for w in qualytics if not w.open)
    ctx = Ctx(clients, config, journal, names, parallelism or config.atlan.concurrency,
              progress or _quiet, BatchSizer(config.atlan.batch_size))
    await asyncio.gather(apply_atlan(ctx, atlan), apply_qualytics(ctx, qualytics, converted))
    notes = (settled.describe(),) if settled.total else ()
    return _result(plan, checksum, run_id, works, earlier, ctx, clients, before, notes)


def _qualytics_containers(plan: Plan) -> set[int]:
    out: set[int] = set()
    for c in plan.changes:
        t = c.target
        if t.get("side") != "qualytics":
            continue
        if t.get("container_id") is not None:
            out.add(int(t["container_id"]))
        elif t.get("kind") == "container" and t.get("id") is not None:
            out.add(int(t["id"]))
    return out


def _result(plan: Plan, checksum: str, run_id: int, works: list[Work], earlier: dict,
            ctx: Ctx, clients: Clients, before: dict[str, Any], notes: tuple[str, ...]) -> ApplyResult:
    by_address = {w.change.address: w for w in works}
    results = []
    for c in plan.changes:
        if c.address in earlier:
            outcome, error = earlier[c.address]
            results.append(ChangeResult(c.address, c.action, outcome, error, earlier=True))
        elif c.address in by_address and by_address[c.address].outcome is not None:
            w = by_address[c.address]
            results.append(ChangeResult(c.address, c.action, w.outcome, w.error))
    requests, writes = clients.since(before)
    return ApplyResult(checksum, run_id, tuple(results), tuple(ctx.inconsistencies), requests, writes,
                       notes)
