"""`plan()`: a snapshot, the config and ownership in; a `Plan` out.

No I/O, no clock, no randomness: `created_at` and `base` (state lineage, serial, snapshot id)
are passed in, so the same inputs always give a byte-identical plan. The passes: `walk`
(every matched pair), `retire` (what qatlan owns whose other side is gone), `finish`
(filters, safety, definitions, order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qatlan._gc import gc_paused
from qatlan.config import MappingConfig
from qatlan.match import MatchResult, match, resolve_domains
from qatlan.model import Snapshot
from qatlan.plan import Plan
from qatlan.planner.context import Context
from qatlan.planner.finish import finish
from qatlan.planner.retire import retire
from qatlan.planner.settings import PlanSettings
from qatlan.planner.walk import walk

__all__ = ["plan"]


def plan(
    snapshot: Snapshot,
    settings: PlanSettings = PlanSettings(),
    *,
    rules: Sequence[MappingConfig] = (),
    owned: Mapping[str, Any] | None = None,
    matches: MatchResult | None = None,
    base: Mapping[str, Any] | None = None,
    created_at: str = "",
) -> Plan:
    """Plan the changes that bring both sides to what the settings ask for.

    `matches` may be passed when the caller already matched (it must come from the same
    snapshot, rules and domains); otherwise domains are resolved and matching runs here.
    Raises ConfigError when a configured domain does not resolve (see `resolve_domains`).
    """
    with gc_paused():
        if matches is None:
            domain_guids = None
            if settings.domains:
                domain_guids = resolve_domains(snapshot.domains, settings.domains, snapshot.assets)
            matches = match(snapshot, rules, domain_guids)
        ctx = Context(snapshot, settings, matches, owned or {}, rules)
        walk(ctx)
        retire(ctx)
        return finish(ctx, base or {}, created_at)
