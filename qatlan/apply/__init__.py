"""`qatlan apply` as a library: execute a plan, exactly, once.

    from qatlan.apply import apply_plan
    from qatlan.pipeline import make_plan

    with State.open("state/qatlan.db") as state, state.locked("apply"):
        plan = make_plan(config, state)
        result = apply_plan(config, state, plan)
        print(result.counts())          # {"added": 812, "changed": 3, ..., "failed": 0}
        result.raise_for_failures()     # ApplyError listing what failed

Order: Atlan definitions (tag typedefs, the custom metadata set or its missing attributes),
then Qualytics tag definitions (external tags, overwrite_tags conversions), then the writes.
Before writing, every target is re-read in batches: a change whose target already equals its
`after` is `already` (nothing is written), one whose target no longer equals its `before` is
`drifted` (not written; re-plan). The rest is written in batches (Atlan bulk upserts of
`[atlan] batch_size` entities, one entity per asset with all its changes; Qualytics bulk
PATCHes with each asset's full resulting tag list), concurrently within `parallelism`, under
the clients' rate limit and retries. Each outcome is journaled in the state as soon as it is
known, with the ownership it implies, in one transaction; applying the same plan again skips
what is settled and finishes the rest. Written targets are read back and any difference from
the plan is reported as an inconsistent result. docs/apply.md has the details.

Each batch is journaled as `intent` before it is sent. `settle_intents` (async, open clients)
and `settle_open_intents` (opens clients only when there is something to settle) read back
what a killed run sent and record what landed; `apply_plan`, `qatlan.refresh.refresh` and
`qatlan.pipeline.make_plan` call them first.

The caller holds the state lock (`state.locked("apply")`); `apply_plan` does not take it.
`qatlan.render.apply_summary(result)` is the closing text `qatlan apply` prints.
"""

from qatlan.apply.journal import Interrupted, find_interrupted
from qatlan.apply.result import ApplyResult, ChangeResult, Inconsistency, Outcome
from qatlan.apply.runner import apply_plan, apply_plan_async
from qatlan.apply.settle import Settled, settle_intents, settle_open_intents

__all__ = [
    "ApplyResult",
    "ChangeResult",
    "Inconsistency",
    "Interrupted",
    "Outcome",
    "Settled",
    "apply_plan",
    "apply_plan_async",
    "find_interrupted",
    "settle_intents",
    "settle_open_intents",
]
