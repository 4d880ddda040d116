"""The mass-removal rule: a plan may not remove more than a share of what qatlan owns.

A token that lost its persona, or a refresh that read nothing, must not look like
"everything was deleted".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qatlan import addresses
from qatlan.errors import PlanRefused
from qatlan.plan import Plan
from qatlan.planner.settings import PlanSettings

__all__ = ["adopted_item_count", "check_removals", "owned_item_count", "removal_count"]


def removal_count(p: Plan) -> int:
    """Owned items the plan removes: deleted tags, Links, announcements and CM values
    (`Plan.tally`, which a stored or spilled plan answers without walking its changes)."""
    return int(p.tally()["removals"])


def owned_item_count(owned: Mapping[str, Any]) -> int:
    """Items qatlan owns, counted like `removal_count` (each CM attribute is one item)."""
    n = 0
    for key, value in owned.items():
        n += len(value) if isinstance(value, Mapping) and addresses.parse(key)[1].startswith("cm:") else 1
    return n


def adopted_item_count(p: Plan) -> int:
    """Items the plan takes over (adopts, restores or removes) without a record in the state."""
    return int(p.tally()["adopted"])


def check_removals(p: Plan, owned_count: int, settings: PlanSettings) -> None:
    """Refuse a plan that removes more than `max_removal_share` of what qatlan owns: the
    items the state records (`owned_count`) and those the plan takes over.

    A token that lost its persona, or a refresh that read nothing, must not look like
    "everything was deleted". `allow_mass_removal` (`--allow-mass-removal`) overrides.
    """
    removals = removal_count(p)
    if settings.allow_mass_removal or removals == 0:
        return
    owned_count += adopted_item_count(p)
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
