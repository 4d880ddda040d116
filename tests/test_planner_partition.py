"""Planning one datastore at a time gives the plan of the whole snapshot (issue 13).

The whole-snapshot planner (`qatlan.planner.plan`) is the oracle: for any world, split into
the shared part and one part per matched datastore, `plan_partitioned` must produce the same
plan, byte for byte. The worlds are two of the strategies' worlds side by side (a second
datastore on a second schema of the same connection), so parts really differ.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qatlan.match import match
from qatlan.model import Snapshot
from qatlan.planner import human_tag_names, owned_tag_index, plan, plan_partitioned, split
from strategies import two_datastores

def _partitioned(world: Snapshot, owned: dict[str, Any], s, focus=None, sink=None) -> Any:
    shared, parts = split(world, s, owned=owned)
    human = None
    if s.overwrite_tags:
        display = {h: d.display_name for h, d in world.tag_defs.items()}
        human = human_tag_names(((a.qualified_name, a.tags) for a in world.assets.values() if a.tags),
                                owned_tag_index(owned), display)
    used = {g for a in world.assets.values() if a.status == "ACTIVE" for g in a.domain_guids}
    return plan_partitioned(shared, iter(parts), s, owned=owned, human_tags=human,
                            used_domains=used, base={"serial": 1}, created_at="t", focus=focus,
                            sink=sink)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_datastores())
def test_a_partitioned_plan_is_the_whole_snapshots_plan(scenario):
    world, owned, s = scenario
    whole = plan(world, s, owned=owned, base={"serial": 1}, created_at="t")
    assert _partitioned(world, owned, s).to_dict() == whole.to_dict()


@settings(max_examples=60, deadline=None)
@given(two_datastores())
def test_each_part_holds_only_its_datastores_records(scenario):
    world, owned, s = scenario
    shared, parts = split(world, s, owned=owned)
    assert not shared.containers and not shared.fields
    seen_containers: set[int] = set()
    for part in parts:
        assert all(c.datastore_id == part.datastore_id for c in part.containers.values())
        assert all(f.container_id in part.containers for f in part.fields.values())
        assert seen_containers.isdisjoint(part.containers)
        seen_containers |= set(part.containers)


def test_a_tag_spelled_two_ways_gets_one_definition_whatever_the_order():
    """Qualytics spells a tag Atlan lacks as `pii` on one table and `PII` on another: the
    definition is `PII` (the first in sort order), not whichever table came first."""
    from strategies import a_connection, a_schema, a_table, q_container, q_datastore
    from qatlan.model import QTag
    table_a, table_b = a_table("a", "ta"), a_table("b", "tb")
    for order in ((("a", "pii"), ("b", "PII")), (("a", "PII"), ("b", "pii"))):
        records = [a_connection(), a_schema(), table_a, table_b, q_datastore()]
        records += [q_container(10 + i, name, tags=(QTag(tag),)) for i, (name, tag) in enumerate(order)]
        snapshot = Snapshot.from_records(records)
        result = plan(snapshot)
        assert [d.address for d in result.definitions_needed] == ["atlan:typedef#tag:PII"]
        needs = {c.target.get("needs", [None])[0] for c in result.changes if c.target.get("needs")}
        assert needs == {"atlan:typedef#tag:PII"}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_datastores(), st.data())
def test_a_focused_plan_has_the_whole_plans_changes_on_its_containers(scenario, data):
    """`qatlan watch` walks only the containers of a batch (`focus`): on those containers,
    their fields, tables and columns it plans what the whole plan does."""
    world, owned, s = scenario
    cids = sorted(world.containers)
    assume(cids)
    focus = frozenset(data.draw(st.lists(st.sampled_from(cids), min_size=1, unique=True), label="focus"))
    m = match(world)
    tables = {world.assets[g].qualified_name for c, g in m.containers.items() if c in focus}

    def mine(change) -> bool:
        t = change.target
        if t.get("side") == "qualytics":
            return t.get("container_id") in focus
        if t.get("part") == "typedef":
            return False
        qn = change.address.partition("#")[0][len("atlan:"):]
        return qn in tables or qn.rpartition("/")[0] in tables

    def of(p) -> list[dict]:
        out = []
        for c in p.changes:
            if mine(c):
                d = c.to_dict()
                d["target"].pop("needs", None)  # a new definition's spelling: focus's tables only
                out.append(d)
        return out

    whole = _partitioned(world, owned, s)
    focused = _partitioned(world, owned, s, focus=focus)
    assert of(focused) == of(whole)
