"""Planning one datastore at a time gives the plan of the whole snapshot (issue 13).

The whole-snapshot planner (`qatlan.planner.plan`) is the oracle: for any world, split into
the shared part and one part per matched datastore, `plan_partitioned` must produce the same
plan, byte for byte. The worlds are two of the strategies' worlds side by side (a second
datastore on a second schema of the same connection), so parts really differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qatlan.model import AAsset, ALink, QContainer, QDatastore, QField, Snapshot
from qatlan.planner import human_tag_names, owned_tag_index, plan, plan_partitioned, split
from tests.strategies import SCHEMA, owned_for, settings_strategy, snapshots

OTHER = SCHEMA.replace("/sales/public", "/sales/other")


def _qn(qn: str) -> str:
    return qn.replace("/sales/public", "/sales/other", 1)


def _second(s: Snapshot) -> Snapshot:
    """`s` moved to datastore 3 (`wh2`, schema sales/other): new ids, GUIDs and names."""
    ds = {}
    for d in s.datastores.values():
        new_id = 3 if d.id == 1 else 4
        ds[new_id] = dataclasses.replace(d, id=new_id, name=d.name + "2",
                                         schema="other" if d.schema else d.schema)
    ds_of = {1: 3, 2: 4}
    containers = {c.id + 1000: dataclasses.replace(c, id=c.id + 1000, datastore_id=ds_of[c.datastore_id])
                  for c in s.containers.values()}
    fields = {f.id + 10000: dataclasses.replace(f, id=f.id + 10000, container_id=f.container_id + 1000)
              for f in s.fields.values()}
    assets = {}
    for a in s.assets.values():
        name = "other" if a.type_name == "Schema" else a.name
        assets["b" + a.guid] = dataclasses.replace(
            a, guid="b" + a.guid, qualified_name=_qn(a.qualified_name), name=name,
            parent_qn=_qn(a.parent_qn) if a.parent_qn else None)
    links = {"b" + k: dataclasses.replace(l, guid="b" + l.guid, qualified_name=_qn(l.qualified_name),
                                          asset_guid="b" + l.asset_guid if l.asset_guid else None)
             for k, l in s.links.items()}
    return dataclasses.replace(s, datastores=ds, containers=containers, fields=fields,
                               assets=assets, links=links)


@st.composite
def two_datastores(draw) -> tuple[Snapshot, dict[str, Any], Any]:
    first, second = draw(snapshots()), _second(draw(snapshots()))
    world = dataclasses.replace(
        first,
        datastores={**first.datastores, **second.datastores},
        containers={**first.containers, **second.containers},
        fields={**first.fields, **second.fields},
        connections={**second.connections, **first.connections},
        assets={**first.assets, **second.assets},
        links={**first.links, **second.links},
    )
    s = draw(settings_strategy)
    active = {g for a in world.assets.values() if a.status == "ACTIVE" for g in a.domain_guids}
    if s.domains == ("d-eu",) and "d-eu" not in active:
        s = dataclasses.replace(s, domains=())
    return world, draw(owned_for(world)), s


def _partitioned(world: Snapshot, owned: dict[str, Any], s) -> Any:
    shared, parts = split(world, s, owned=owned)
    human = None
    if s.overwrite_tags:
        display = {h: d.display_name for h, d in world.tag_defs.items()}
        human = human_tag_names(((a.qualified_name, a.tags) for a in world.assets.values() if a.tags),
                                owned_tag_index(owned), display)
    used = {g for a in world.assets.values() if a.status == "ACTIVE" for g in a.domain_guids}
    return plan_partitioned(shared, iter(parts), s, owned=owned, human_tags=human,
                            used_domains=used, base={"serial": 1}, created_at="t")


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
    from tests.strategies import a_connection, a_schema, a_table, q_container, q_datastore
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
