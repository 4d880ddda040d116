"""The pure planner: a snapshot, the config and ownership in; a `Plan` out.

No I/O, no clock, no randomness: `created_at` and `base` (state lineage, serial, snapshot id)
are passed in, so the same inputs always give a byte-identical plan.

    plan(snapshot, settings, rules=..., owned=...) -> Plan
    check_removals(plan, owned_count, settings)       raises PlanRefused on mass removal

`owned` maps an address to what qatlan last wrote there (see `qatlan.plan.own`):
`atlan:<QN>#cm:<Set>` → {attribute: value}, `atlan:<QN>#tag:<name>` → {"name": ...},
`atlan:<QN>#announcement` → {"type", "title", "message"}, `atlan:<QN>#link` → {"name", "url"},
`qualytics:<path>#tag:<name>` → {"name": ..., "type": "external"}.

The rules are in docs/conflict-rules.md; matching is in qatlan.matching and docs/matching.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qatlan.errors import PlanRefused
from qatlan.matching import MappingRule, MatchResult, match, resolve_domains
from qatlan.model import Snapshot
from qatlan.plan import Action, Plan

from qatlan._gc import gc_paused
from qatlan._planner.context import CM_ATTRIBUTES, Context
from qatlan._planner.finish import finish
from qatlan._planner.retire import retire
from qatlan._planner.walk import walk

__all__ = [
    "CM_ATTRIBUTES",
    "PlanSettings",
    "check_removals",
    "owned_item_count",
    "plan",
    "removal_count",
]


@dataclass(frozen=True)
class PlanSettings:
    """What a run does. Every field has a default that suits a first run."""

    pull: bool = True  # Atlan tags → Qualytics external tags (--push-only turns it off)
    push: bool = True  # scores, tags, Link, announcement → Atlan (--pull-only turns it off)
    push_tags: bool = True
    announcements: bool = True  # part of push
    overwrite_tags: bool = False
    domains: tuple[str, ...] = ()  # Atlan domain names or GUIDs; empty = no filter
    cm_set_name: str = "Qualytics"
    link_name: str = "Qualytics"
    qualytics_ui_url: str = ""  # e.g. https://acme.qualytics.io
    integration_id: int | None = None
    max_removal_share: float = 0.2
    create_definitions: bool = False
    allow_mass_removal: bool = False
    targets: tuple[str, ...] = ()  # fnmatch patterns on addresses or asset names
    excludes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def plan(
    snapshot: Snapshot,
    settings: PlanSettings = PlanSettings(),
    *,
    rules: Sequence[MappingRule] = (),
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


def removal_count(p: Plan) -> int:
    """Owned items the plan removes: deleted tags, Links, announcements and CM values."""
    n = 0
    for c in p.changes:
        if c.address.startswith("atlan:typedef#"):
            continue
        is_cm = c.part.startswith("cm:")
        if c.action is Action.DELETE:
            n += len(c.before) if is_cm else 1
        elif c.action is Action.UPDATE and is_cm:
            n += sum(1 for v in c.after.values() if v is None)
    return n


def owned_item_count(owned: Mapping[str, Any]) -> int:
    """Items qatlan owns, counted like `removal_count` (each CM attribute is one item)."""
    n = 0
    for key, value in owned.items():
        n += len(value) if "#cm:" in key and isinstance(value, Mapping) else 1
    return n


def check_removals(p: Plan, owned_count: int, settings: PlanSettings) -> None:
    """Refuse a plan that removes more than `max_removal_share` of what qatlan owns.

    A token that lost its persona, or a refresh that read nothing, must not look like
    "everything was deleted". `allow_mass_removal` (`--allow-mass-removal`) overrides.
    """
    removals = removal_count(p)
    if settings.allow_mass_removal or removals == 0:
        return
    limit = settings.max_removal_share * owned_count
    if removals > limit:
        share = f"{removals / owned_count:.0%}" if owned_count else "all"
        raise PlanRefused(
            f"the plan removes {removals} of the {owned_count} items qatlan owns ({share}), "
            f"more than the allowed {settings.max_removal_share:.0%}; if that is intended, "
            "run again with --allow-mass-removal",
            hint="check that both tokens still see everything: a lost Atlan persona or a "
                 "partial refresh looks like deletion",
        )
