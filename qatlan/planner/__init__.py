"""The pure planner: a snapshot, the config and ownership in; a `Plan` out.

    plan(snapshot, settings, rules=..., owned=...) -> Plan
    check_removals(plan, owned_count, settings)       raises PlanRefused on mass removal

`owned` maps an address to what qatlan last wrote there (see `qatlan.plan.own`):
`atlan:<QN>#cm:<Set>` → {attribute: value}, `atlan:<QN>#tag:<name>` → {"name": ...},
`atlan:<QN>#announcement` → {"type", "title", "message"}, `atlan:<QN>#link` → {"name", "url"},
`qualytics:<path>#tag:<name>` → {"name": ..., "type": "external"}.

The rules are in docs/conflict-rules.md; matching is in qatlan.match and docs/matching.md.
"""

from qatlan.planner.build import plan
from qatlan.planner.safety import check_removals, owned_item_count, removal_count
from qatlan.planner.settings import PlanSettings

__all__ = ["PlanSettings", "check_removals", "owned_item_count", "plan", "removal_count"]
