"""The pure planner: a snapshot, the config and ownership in; a `Plan` out.

    plan(snapshot, settings, rules=..., owned=...) -> Plan
    check_removals(plan, owned_count, settings)       raises PlanRefused on mass removal
    plan_partitioned(shared, parts, settings, ...)    the same plan, one datastore at a time

`owned` maps an address to what qatlan last wrote there (see `qatlan.plan.own`):
`atlan:<QN>#cm:<Set>` → {attribute: value}, `atlan:<QN>#tag:<name>` → {"name": ...},
`atlan:<QN>#announcement` → {"type", "title", "message"}, `atlan:<QN>#link` → {"name", "url"},
`qualytics:<path>#tag:<name>` → {"name": ..., "type": "external"}.

The rules are in docs/conflict-rules.md; matching is in qatlan.match and docs/matching.md.
"""

from qatlan.planner.build import plan
from qatlan.planner.context import human_tag_names, owned_tag_index
from qatlan.planner.finish import ChangeSink
from qatlan.planner.partition import (
    PART_TYPES,
    Part,
    Scope,
    outside_assets,
    part_snapshot,
    plan_partitioned,
    schema_holder,
    scope,
    split,
)
from qatlan.planner.safety import check_removals, owned_item_count, removal_count
from qatlan.planner.settings import PlanSettings

__all__ = ["PART_TYPES", "ChangeSink", "Part", "PlanSettings", "Scope", "check_removals", "human_tag_names",
           "outside_assets", "owned_item_count", "owned_tag_index", "part_snapshot", "plan",
           "plan_partitioned", "removal_count", "schema_holder", "scope", "split"]
