"""Properties of the planner over generated snapshots, ownership and settings."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from simulate import simulate
from strategies import scenarios

from qatlan.addresses import parse as parse_address
from qatlan.match import match, resolve_domains
from qatlan.model import CM_ATTRIBUTES
from qatlan.normalize import fold, normalize, normalize_cm
from qatlan.plan import Action, Plan
from qatlan.planner import plan

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KIND = dict(CM_ATTRIBUTES)
BASE = {"lineage": "3f0c", "serial": 4, "snapshot_id": 9}


def make_plan(snapshot, owned, plan_settings):
    return plan(snapshot, plan_settings, owned=owned, base=BASE, created_at="2026-01-01T00:00:00Z")


@PROPERTY
@given(scenarios())
def test_applying_a_plan_then_planning_again_plans_nothing(scenario):
    snapshot, owned, plan_settings = scenario
    first = make_plan(snapshot, owned, plan_settings)
    after, owned_after = simulate(snapshot, first, owned)
    second = make_plan(after, owned_after, plan_settings)
    assert second.changes == (), [c.address for c in second.changes]


@PROPERTY
@given(scenarios())
def test_a_converged_state_stays_put_and_plans_the_same_every_time(scenario):
    snapshot, owned, plan_settings = scenario
    after, owned_after = simulate(snapshot, make_plan(snapshot, owned, plan_settings), owned)
    again = make_plan(after, owned_after, plan_settings)
    assert again.is_empty()
    assert simulate(after, again, owned_after) == (after, owned_after)
    assert make_plan(after, owned_after, plan_settings).to_json() == again.to_json()


def _changes_only_what_qatlan_owns(p: Plan, owned, plan_settings) -> None:
    """Every change that touches an existing value touches one the state records as qatlan's,
    or one that carries qatlan's mark and says it takes it over (`target["adopt"]`): a value
    in its custom metadata set (unless cm_edits = "keep"), a Link into the Qualytics UI, an
    announcement in its form, an external tag of its integration. Atlan tags, which carry no
    writer, are never taken over."""
    ui = plan_settings.qualytics_ui_url.rstrip("/") + "/"
    for c in p.changes:
        part = c.target["part"]
        if part == "typedef" or c.action is Action.CREATE:
            continue
        taken = c.target.get("adopt", 0) > 0
        if part == "cm":
            mine = owned.get(c.address) or {}
            for attr, before in c.before.items():
                if before is not None and not (attr in mine and normalize_cm(KIND[attr], mine[attr]) == before):
                    assert taken and plan_settings.cm_edits == "restore", c
        elif part == "tag" and c.action is Action.UPDATE:
            assert plan_settings.overwrite_tags and c.before["type"] != "external", c
        elif part == "tag":
            if c.address not in owned:
                assert taken and c.target["side"] == "qualytics" and c.before["type"] == "external", c
                assert plan_settings.integration_id in (None, c.target["integration_id"]), c
        elif normalize(owned.get(c.address)) != normalize(c.before):
            assert taken, c
            if part == "link":
                assert c.before["url"].startswith(ui), c
            else:
                assert c.before["type"] == "warning" and c.before["title"].startswith("Qualytics: "), c


@PROPERTY
@given(scenarios())
def test_no_change_removes_or_overwrites_what_qatlan_does_not_own(scenario):
    snapshot, owned, plan_settings = scenario
    _changes_only_what_qatlan_owns(make_plan(snapshot, owned, plan_settings), owned, plan_settings)


def _scope_asset(snapshot, asset):
    if asset.type_name != "Column":
        return asset
    return next(a for a in snapshot.assets.values()
                if a.qualified_name == asset.parent_qn and a.status == "ACTIVE")


@PROPERTY
@given(scenarios())
def test_nothing_outside_the_configured_domains_is_touched(scenario):
    snapshot, owned, plan_settings = scenario
    assume(plan_settings.domains)
    guids = resolve_domains(snapshot.domains, plan_settings.domains, snapshot.assets)
    m = match(snapshot, (), guids)
    for c in make_plan(snapshot, owned, plan_settings).changes:
        t = c.target
        if t["part"] == "typedef":
            continue
        if t["side"] == "atlan":
            asset = snapshot.assets[t["guid"]]
        elif t["kind"] == "datastore":
            asset = snapshot.assets[m.datastores[t["id"]].schema_guid]
        else:
            asset = snapshot.assets[m.containers[t["container_id"]]]
        assert not guids.isdisjoint(_scope_asset(snapshot, asset).domain_guids), c.address


def _clashes(snapshot, owned, m):
    """(q address, atlan prefix, folded name) of every tag clash, computed independently."""
    owned_folds = set()
    for key in owned:
        asset, part = parse_address(key)
        if part.startswith("tag:"):
            owned_folds.add((asset, fold(part[4:])))
    ds_name = {d.id: d.name for d in snapshot.datastores.values()}
    pairs = []
    for cid, guid in m.containers.items():
        c = snapshot.containers[cid]
        pairs.append((f"qualytics:{ds_name[c.datastore_id]}/{c.name}", c.tags, guid))
    for fid, guid in m.fields.items():
        f = snapshot.fields[fid]
        c = snapshot.containers[f.container_id]
        pairs.append((f"qualytics:{ds_name[c.datastore_id]}/{c.name}/{f.name}", f.tags, guid))
    out = []
    for q_address, tags, guid in pairs:
        asset = snapshot.assets[guid]
        prefix = f"atlan:{asset.qualified_name}"
        atlan = {fold(snapshot.tag_defs[h].display_name) for h in asset.tags if h in snapshot.tag_defs}
        human = {f for f in atlan if (prefix, f) not in owned_folds}
        for t in tags:
            if not t.external and fold(t.name) in human:
                out.append((q_address, prefix, fold(t.name)))
    return out


@PROPERTY
@given(scenarios())
def test_overwrite_tags_decides_every_tag_clash_as_the_table_says(scenario):
    snapshot, owned, plan_settings = scenario
    assume(not plan_settings.domains)
    p = make_plan(snapshot, owned, plan_settings)
    m = match(snapshot)
    touched = {(parse_address(c.address)[0], fold(c.part[4:])): c for c in p.changes
               if c.part.startswith("tag:")}
    conflicts = {(parse_address(c.address)[0], fold(parse_address(c.address)[1][4:]))
                 for c in p.conflicts if c.rule == "tag_conflict"}
    active = plan_settings.pull or (plan_settings.push and plan_settings.push_tags)
    for q_address, prefix, name in _clashes(snapshot, owned, m):
        assert (prefix, name) not in touched  # never pushed, either way
        converted = touched.get((q_address, name))
        if plan_settings.overwrite_tags and plan_settings.pull:
            assert converted is not None and converted.action is Action.UPDATE
            assert converted.after["type"] == "external"
        else:
            assert converted is None
            assert (q_address, name) in conflicts or not active


@PROPERTY
@given(scenarios())
def test_an_incomplete_snapshot_plans_no_removal(scenario):
    # every world made incomplete, rather than filtering for the quarter that are: the filter
    # tripped Hypothesis' filter_too_much health check on some seeds (2 runs in 12)
    snapshot, owned, plan_settings = scenario
    snapshot = dataclasses.replace(snapshot, complete=False, missing=("atlan assets",))
    p = make_plan(snapshot, owned, plan_settings)
    for c in p.changes:
        assert c.action is not Action.DELETE
        if c.part.startswith("cm:") and c.action is Action.UPDATE:
            assert None not in c.after.values()


@PROPERTY
@given(scenarios())
def test_the_same_inputs_give_a_byte_identical_plan(scenario):
    snapshot, owned, plan_settings = scenario
    one = json.dumps(make_plan(snapshot, owned, plan_settings).to_dict(), sort_keys=True)
    two = json.dumps(make_plan(snapshot, dict(owned), plan_settings).to_dict(), sort_keys=True)
    assert one == two


@PROPERTY
@given(scenarios())
def test_a_plan_round_trips_through_its_json_form(scenario):
    p = make_plan(*scenario)
    data = json.loads(json.dumps(p.to_dict()))
    back = Plan.from_dict(data)
    assert back == p
    assert back.to_dict() == p.to_dict()
    assert [c.target for c in back.changes] == [c.target for c in p.changes]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_normalising_twice_is_the_same_as_once(value):
    assert normalize(normalize(value)) == normalize(value)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["float", "int", "date", "url"]), json_values)
def test_normalising_a_cm_value_twice_is_the_same_as_once(kind, value):
    once = normalize_cm(kind, value)
    assert normalize_cm(kind, once) == once


@PROPERTY
@given(scenarios(), st.data())
def test_after_a_lost_state_one_apply_converges_and_changes_only_adoptions(scenario, data):
    """A world qatlan synced, then the state lost (all of it, or any part): the next plan
    holds adoptions, and only what an Atlan tag without a writer calls for (an Atlan tag qatlan
    had pushed now reads as a person's: it is pulled, or with overwrite_tags it converts the
    clashing Qualytics tag). After one apply the plan is empty."""
    snapshot, owned, plan_settings = scenario
    synced, owned_synced = simulate(snapshot, make_plan(snapshot, owned, plan_settings), owned)
    kept = data.draw(st.sets(st.sampled_from(sorted(owned_synced))) if owned_synced else st.just(set()))
    lost = {k: v for k, v in owned_synced.items() if k in kept}
    forgotten_atlan_tags = {fold(parse_address(k)[1][4:]) for k in owned_synced
                            if k not in lost and k.startswith("atlan:") and "#tag:" in k}
    first = make_plan(synced, lost, plan_settings)
    for c in first.changes:
        pulled = (c.target["part"] == "tag" and c.target["side"] == "qualytics"
                  and c.action in (Action.CREATE, Action.UPDATE)
                  and fold(c.target["tag"]) in forgotten_atlan_tags)
        assert c.action is Action.ADOPT or pulled, (c.address, c.action, c.reason)
    after, owned_after = simulate(synced, first, lost)
    again = make_plan(after, owned_after, plan_settings)
    assert again.changes == (), [(c.address, c.action) for c in again.changes]
