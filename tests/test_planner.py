"""The planner, rule by rule: one example per rule of docs/conflict-rules.md."""

from __future__ import annotations

import pytest
from strategies import (
    SCHEMA,
    UI,
    a_column,
    a_table,
    cm,
    cm_set,
    q_container,
    q_datastore,
    q_field,
    snapshot_of,
    tag_def,
)

from qatlan.errors import ConfigError, PlanFileError, PlanRefused
from qatlan.model import ADomain, ALink, Announcement, QTag, QTagDef, QualityScore
from qatlan.addresses import parse as parse_address
from qatlan.plan import Action, Change, Plan, own
from qatlan.planner import PlanSettings, check_removals, owned_item_count, plan

T = f"atlan:{SCHEMA}/orders"
Q = "qualytics:wh/orders"
CM = f"{T}#cm:Qualytics"
URL = f"{UI}/datastores/1/containers/10/overview"
TAGS = (tag_def("PII"), tag_def("Finance"))


def plan_of(*records, owned=None, complete=True, **settings):
    settings.setdefault("qualytics_ui_url", UI)
    settings.setdefault("integration_id", 7)
    settings.setdefault("create_definitions", False)  # the tests below plan values, not typedefs
    s = snapshot_of(*records, complete=complete)
    return plan(s, PlanSettings(**settings), owned=owned or {}, created_at="2026-01-01T00:00:00Z")


def changes(p):
    return {c.address: c for c in p.changes}


def orders(**kw):
    return a_table("orders", **kw)


def container(**kw):
    return q_container(10, "orders", **kw)


# ---- custom metadata


def test_push_writes_rounded_scores_counts_url_and_last_scan_to_the_table():
    score = QualityScore(total=81.2345, completeness=99.999, volumetrics=50)
    p = plan_of(orders(), cm_set(), container(score=score, active_checks=5, active_anomalies=0,
                                              last_scanned="2026-01-02T03:04:05Z"))
    c = changes(p)[CM]
    assert c.action is Action.CREATE
    assert c.after == {"Quality Score": 81.23, "Completeness": 100.0, "Volume": 50.0,
                       "Active Checks": 5, "Active Anomalies": 0, "Qualytics URL": URL,
                       "Last Scanned": 1767323045000}
    assert c.target["guid"] == "t-orders" and c.target["attributes"]["Quality Score"] == "attr00"


def test_push_updates_a_value_qatlan_wrote_when_the_score_moves():
    p = plan_of(orders(cm=cm(Quality_Score=70.0)), cm_set(),
                container(score=QualityScore(total=72)), qualytics_ui_url="",
                owned={CM: {"Quality Score": 70.0}})
    c = changes(p)[CM]
    assert (c.action, c.before, c.after) == (Action.UPDATE, {"Quality Score": 70.0},
                                             {"Quality Score": 72.0})


def test_a_score_that_differs_only_beyond_two_decimals_plans_nothing():
    p = plan_of(orders(cm=cm(Quality_Score=81)), cm_set(),
                container(score=QualityScore(total=81.0049)), qualytics_ui_url="",
                owned={CM: {"Quality Score": 81.0}})
    assert p.is_empty() and p.unchanged == 1


def test_a_null_score_is_not_written():
    p = plan_of(orders(), cm_set(), container(score=QualityScore(total=None, completeness=50)))
    assert "Quality Score" not in changes(p)[CM].after
    assert changes(p)[CM].after["Completeness"] == 50.0


def test_a_value_qatlan_wrote_that_became_null_is_removed():
    p = plan_of(orders(cm=cm(Quality_Score=70.0, Qualytics_URL=URL)), cm_set(), container(),
                owned={CM: {"Quality Score": 70.0, "Qualytics URL": URL}}, announcements=False)
    c = changes(p)[CM]
    assert (c.action, c.before, c.after) == (Action.DELETE, {"Quality Score": 70.0}, None)


def test_a_value_in_qatlans_set_the_state_has_no_record_of_is_taken_over():
    p = plan_of(orders(cm=cm(Quality_Score=10.0)), cm_set(), container(score=QualityScore(total=72)),
                qualytics_ui_url="")
    c = changes(p)[CM]
    assert (c.action, c.before, c.after) == (Action.UPDATE, {"Quality Score": 10.0}, {"Quality Score": 72.0})
    assert c.target["adopt"] == 1 and "taken over" in c.reason and not p.conflicts


def test_a_value_qatlan_wrote_but_someone_edited_is_restored():
    p = plan_of(orders(cm=cm(Quality_Score=10.0)), cm_set(), container(score=QualityScore(total=72)),
                qualytics_ui_url="", owned={CM: {"Quality Score": 70.0}})
    c = changes(p)[CM]
    assert (c.action, c.after) == (Action.UPDATE, {"Quality Score": 72.0})
    assert c.reason == "edited in Atlan since the last apply: restored"


def test_a_value_already_right_but_not_recorded_is_adopted_not_written():
    p = plan_of(orders(cm=cm(Quality_Score=72.0)), cm_set(), container(score=QualityScore(total=72)),
                qualytics_ui_url="")
    c = changes(p)[CM]
    assert (c.action, c.before, c.after) == (Action.ADOPT, {"Quality Score": 72.0}, {"Quality Score": 72.0})
    assert p.counts()["adopt"] == 1 and own({}, c) == (CM, {"Quality Score": 72.0})


def test_with_cm_edits_keep_a_value_someone_else_wrote_is_a_conflict_and_left_alone():
    for owned in ({}, {CM: {"Quality Score": 70.0}}):
        p = plan_of(orders(cm=cm(Quality_Score=10.0)), cm_set(), container(score=QualityScore(total=72)),
                    qualytics_ui_url="", owned=owned, cm_edits="keep")
        assert CM not in changes(p)
        assert [(k.address, k.rule) for k in p.conflicts] == [(f"{CM}.Quality Score", "cm_not_owned")]


def test_a_datastore_pushes_to_its_schema_and_a_field_to_its_column():
    t = orders()
    p = plan_of(t, a_column(t, "id"), cm_set(), container(),
                q_datastore(score=QualityScore(total=90)), q_field(1, 10, "id", active_checks=2))
    schema = changes(p)[f"atlan:{SCHEMA}#cm:Qualytics"].after
    column = changes(p)[f"{T}/id#cm:Qualytics"].after
    assert schema == {"Quality Score": 90.0, "Qualytics URL": f"{UI}/datastores/1"}
    assert column == {"Active Checks": 2,
                      "Qualytics URL": f"{UI}/datastores/1/containers/10/fields/1"}


# ---- tags


def test_qualytics_own_tags_are_pushed_and_external_ones_are_not():
    p = plan_of(orders(), *TAGS, container(tags=(QTag("Finance"), QTag("PII", "external"))))
    c = changes(p)[f"{T}#tag:Finance"]
    assert (c.action, c.after, c.target["tag_hash"]) == (Action.CREATE, {"name": "Finance"}, "hFinance")
    assert f"{T}#tag:PII" not in changes(p)


def test_an_atlan_tag_is_pulled_as_an_external_tag():
    p = plan_of(orders(tags=("hPII",)), *TAGS, container())
    c = changes(p)[f"{Q}#tag:PII"]
    assert (c.action, c.after) == (Action.CREATE, {"name": "PII", "type": "external"})
    assert c.target["integration_id"] == 7 and c.target["kind"] == "container"


def test_an_external_tag_qatlan_attached_goes_when_the_atlan_tag_goes():
    p = plan_of(orders(), *TAGS, container(tags=(QTag("PII", "external"), QTag("Gold", "external"))),
                owned={f"{Q}#tag:PII": {"name": "PII", "type": "external"}})
    assert [(c.address, c.action) for c in p.changes if "#tag:" in c.address] == [
        (f"{Q}#tag:PII", Action.DELETE)]


def test_external_tags_of_the_integration_without_a_record_are_adopted_never_removed():
    ours, other = QTag("PII", "external", 7), QTag("Gold", "external", 8)
    p = plan_of(orders(tags=("hPII",)), *TAGS, container(tags=(ours, other)))
    assert [(c.address, c.action) for c in p.changes if "#tag:" in c.address] == [(f"{Q}#tag:PII", Action.ADOPT)]
    gone = plan_of(orders(), *TAGS, container(tags=(ours, other)))
    assert not [c for c in gone.changes if "#tag:" in c.address]  # no record: not removed


def test_table_tags_are_not_copied_to_columns():
    t = orders(tags=("hPII",))
    p = plan_of(t, a_column(t, "id"), *TAGS, container(), q_field(1, 10, "id"))
    assert f"{Q}#tag:PII" in changes(p)
    assert f"{Q}/id#tag:PII" not in changes(p)


def test_tags_qatlan_pushed_are_never_pulled_back():
    p = plan_of(orders(tags=("hFinance",)), *TAGS, container(tags=(QTag("Finance"),)),
                owned={f"{T}#tag:Finance": {"name": "Finance"}})
    assert not [c for c in p.changes if "#tag:" in c.address] and not p.conflicts


def test_a_tag_clash_is_a_conflict_and_moves_nothing_by_default():
    p = plan_of(orders(tags=("hPII",)), *TAGS, container(tags=(QTag("PII"),)))
    assert not [c for c in p.changes if "#tag:" in c.address]
    assert [(k.address, k.rule) for k in p.conflicts] == [(f"{Q}#tag:PII", "tag_conflict")]


def test_with_overwrite_tags_the_atlan_tag_wins_and_converts_the_qualytics_tag():
    p = plan_of(orders(tags=("hPII",)), *TAGS, container(tags=(QTag("PII"),)), overwrite_tags=True)
    tag_changes = [c for c in p.changes if "#tag:" in c.address]
    assert [(c.address, c.action, c.before, c.after) for c in tag_changes] == [
        (f"{Q}#tag:PII", Action.UPDATE, {"name": "PII", "type": "global"},
         {"name": "PII", "type": "external"})]
    assert not p.conflicts
    assert own({}, tag_changes[0]) == (f"{Q}#tag:PII", {"name": "PII", "type": "external"})


def test_an_atlan_tag_named_like_a_qualytics_tag_elsewhere_is_a_conflict_by_default():
    # Qualytics tag names are unique: "Finance" exists as a global tag (on other assets only),
    # so the Atlan tag cannot arrive as an external tag without converting it
    p = plan_of(orders(tags=("hFinance",)), *TAGS, container(), QTagDef("Finance", "global"))
    assert not [c for c in p.changes if c.address.startswith(Q + "#tag:")]
    assert [(k.address, k.rule) for k in p.conflicts] == [(f"{Q}#tag:Finance", "tag_conflict")]


def test_with_overwrite_tags_an_atlan_tag_named_like_a_qualytics_tag_converts_and_attaches_it():
    p = plan_of(orders(tags=("hFinance",)), *TAGS, container(), QTagDef("Finance", "global"),
                overwrite_tags=True)
    pulled = [c for c in p.changes if c.address.startswith(Q + "#tag:")]
    assert [(c.address, c.action, c.after) for c in pulled] == [
        (f"{Q}#tag:Finance", Action.CREATE, {"name": "Finance", "type": "external"})]
    assert pulled[0].target["convert"] is True
    assert not p.conflicts


def test_tag_names_compare_case_insensitively_and_keep_the_source_spelling():
    p = plan_of(orders(tags=("hPII",)), *TAGS, container(tags=(QTag("pii"),)))
    assert [k.address for k in p.conflicts] == [f"{Q}#tag:pii"]
    p = plan_of(orders(tags=("hPII",)), *TAGS, container(tags=(QTag("pii", "external"),)))
    assert not [c for c in p.changes if "#tag:" in c.address]


# ---- announcements

RAISED = {"type": "warning", "title": "Qualytics: 1 active anomaly",
          "message": "Qualytics reports 1 active anomaly on orders. Review them in Qualytics: "
                     f"{UI}/datastores/1/containers/10/anomalies"}


def test_active_anomalies_raise_a_warning_announcement():
    c = changes(plan_of(orders(), container(active_anomalies=1)))[f"{T}#announcement"]
    assert (c.action, c.after) == (Action.CREATE, RAISED)


def test_qatlans_announcement_follows_the_anomaly_count():
    current = orders(announcement=Announcement(**RAISED))
    c = changes(plan_of(current, container(active_anomalies=3),
                        owned={f"{T}#announcement": RAISED}))[f"{T}#announcement"]
    assert c.action is Action.UPDATE and c.after["title"] == "Qualytics: 3 active anomalies"


def test_qatlans_announcement_is_removed_when_no_anomaly_is_left():
    current = orders(announcement=Announcement(**RAISED))
    c = changes(plan_of(current, container(active_anomalies=0),
                        owned={f"{T}#announcement": RAISED}))[f"{T}#announcement"]
    assert (c.action, c.before, c.after) == (Action.DELETE, RAISED, None)


def test_a_human_announcement_is_left_in_place_and_reported():
    human = orders(announcement=Announcement("issue", "Broken load", "ask #data"))
    p = plan_of(human, container(active_anomalies=2))
    assert f"{T}#announcement" not in changes(p)
    assert [(k.address, k.rule) for k in p.conflicts] == [(f"{T}#announcement", "announcement_not_owned")]


def test_qatlans_announcement_edited_by_someone_is_no_longer_qatlans():
    edited = orders(announcement=Announcement("warning", "Known issue, fix on Monday", "m"))
    p = plan_of(edited, container(active_anomalies=0), owned={f"{T}#announcement": RAISED})
    assert f"{T}#announcement" not in changes(p)
    assert p.conflicts[0].rule == "announcement_not_owned"


def test_an_announcement_in_qatlans_form_without_a_record_is_taken_over():
    old = orders(announcement=Announcement("warning", "Qualytics: 3 active anomalies", "old message"))
    cleared = changes(plan_of(old, container(active_anomalies=0)))[f"{T}#announcement"]
    assert cleared.action is Action.DELETE and cleared.target["adopt"] == 1
    updated = changes(plan_of(old, container(active_anomalies=1)))[f"{T}#announcement"]
    assert updated.action is Action.UPDATE and updated.after["title"] == "Qualytics: 1 active anomaly"
    same = orders(announcement=Announcement("warning", "Qualytics: 1 active anomaly", None))
    desired = plan_of(orders(), container(active_anomalies=1)).changes
    raised = next(c for c in desired if c.address == f"{T}#announcement").after
    adopted = changes(plan_of(orders(announcement=Announcement(**raised)), container(active_anomalies=1)))
    assert adopted[f"{T}#announcement"].action is Action.ADOPT
    assert same.announcement.title == raised["title"]


def test_announcements_off_leaves_announcements_alone():
    assert f"{T}#announcement" not in changes(plan_of(orders(), container(active_anomalies=2),
                                                      announcements=False))


# ---- links

LINK_QN = f"{SCHEMA}/orders/Qualytics"


def test_a_link_to_qualytics_is_created_with_an_idempotent_qualified_name():
    c = changes(plan_of(orders(), container()))[f"{T}#link"]
    assert (c.action, c.after) == (Action.CREATE, {"name": "Qualytics", "url": URL})
    assert c.target["link_qualified_name"] == LINK_QN and c.target["link_guid"] is None


def test_a_rerun_finds_qatlans_link_and_adds_no_second_one():
    link = ALink("l1", LINK_QN, "Qualytics", URL, "t-orders")
    p = plan_of(orders(), link, container(), owned={f"{T}#link": {"name": "Qualytics", "url": URL}})
    assert f"{T}#link" not in changes(p)


def test_qatlans_link_follows_a_changed_url():
    link = ALink("l1", LINK_QN, "Qualytics", f"{UI}/old", "t-orders")
    c = changes(plan_of(orders(), link, container(),
                        owned={f"{T}#link": {"name": "Qualytics", "url": f"{UI}/old"}}))[f"{T}#link"]
    assert (c.action, c.after["url"], c.target["link_guid"]) == (Action.UPDATE, URL, "l1")


def test_a_link_of_that_name_qatlan_did_not_create_is_a_conflict():
    foreign = ALink("l9", "5c1d-random", "Qualytics", "https://wiki.example/orders", "t-orders")
    p = plan_of(orders(), foreign, container())
    assert f"{T}#link" not in changes(p)
    assert [(k.address, k.rule) for k in p.conflicts] == [(f"{T}#link", "link_not_owned")]


def test_a_link_into_qualytics_without_a_record_is_taken_over_whatever_its_qualified_name():
    stale = ALink("l7", "5c1d-random", "Qualytics", f"{UI}/old", "t-orders")
    c = changes(plan_of(orders(), stale, container()))[f"{T}#link"]
    assert (c.action, c.after["url"], c.target["adopt"]) == (Action.UPDATE, URL, 1)
    assert (c.target["link_guid"], c.target["link_qualified_name"]) == ("l7", "5c1d-random")
    right = ALink("l7", LINK_QN, "Qualytics", URL, "t-orders")
    c = changes(plan_of(orders(), right, container()))[f"{T}#link"]
    assert (c.action, c.before, c.target["link_guid"]) == (Action.ADOPT, {"name": "Qualytics", "url": URL}, "l7")
    owned = {f"{T}#link": {"name": "Qualytics", "url": URL}}
    assert f"{T}#link" not in changes(plan_of(orders(), right, container(), owned=owned))


# ---- definitions


def test_a_missing_set_is_a_needed_definition_and_its_values_wait():
    p = plan_of(orders(), container(score=QualityScore(total=80)), create_definitions=False)
    assert CM not in changes(p)
    assert [d.address for d in p.definitions_needed] == ["atlan:typedef#cm:Qualytics"]
    assert [(k.id, k.reason) for k in p.skipped] == [("atlan:typedef#cm:Qualytics", "definition_missing")]
    assert p.waiting == 2 and not p.in_sync()  # the schema's values and the table's


def test_with_create_definitions_the_set_is_created_and_values_follow():
    p = plan_of(orders(), container(score=QualityScore(total=80)), create_definitions=True)
    definition = changes(p)["atlan:typedef#cm:Qualytics"]
    assert definition.action is Action.CREATE and len(definition.after["attributes"]) == 13
    assert changes(p)[CM].target["needs"] == ["atlan:typedef#cm:Qualytics"]
    assert changes(p)[CM].target["attributes"]["Quality Score"] is None


def test_a_missing_attribute_holds_back_only_that_attribute():
    p = plan_of(orders(), cm_set("Last Scanned"), container(score=QualityScore(total=80),
                                                           last_scanned="2026-01-02T03:04:05Z"),
                create_definitions=False)
    assert "Last Scanned" not in changes(p)[CM].after
    definition = p.definitions_needed[0]
    assert definition.action is Action.UPDATE and definition.reason == "attributes missing: Last Scanned"


def test_a_missing_atlan_tag_is_a_needed_definition():
    p = plan_of(orders(), container(tags=(QTag("Gold"),)), create_definitions=False)
    assert f"{T}#tag:Gold" not in changes(p)
    assert "atlan:typedef#tag:Gold" in [d.address for d in p.definitions_needed]
    p = plan_of(orders(), container(tags=(QTag("Gold"),)), create_definitions=True)
    assert {"atlan:typedef#tag:Gold", f"{T}#tag:Gold"} <= set(changes(p))


# ---- domains, scope and filters

SALES = ADomain("d-sales", "default/domain/sales/super", "Sales")
MKT = ADomain("d-mkt", "default/domain/mkt/super", "Marketing")


def test_nothing_outside_the_configured_domains_is_touched():
    p = plan_of(SALES, MKT, orders(domain_guids=("d-mkt",)), a_table("items", domain_guids=("d-sales",)),
                container(), q_container(11, "items"), domains=("Sales",))
    assert {parse_address(c.address)[0] for c in p.changes} == {f"atlan:{SCHEMA}/items"}


def test_an_unknown_domain_stops_the_plan():
    with pytest.raises(ConfigError):
        plan_of(SALES, orders(domain_guids=("d-sales",)), container(), domains=("Finance",))


def test_pull_only_and_push_only_keep_one_direction():
    records = (orders(tags=("hPII",)), *TAGS, container(tags=(QTag("Finance"),)))
    assert {c.address.split(":")[0] for c in plan_of(*records, push=False).changes} == {"qualytics"}
    assert {c.address.split(":")[0] for c in plan_of(*records, pull=False).changes} == {"atlan"}


def test_targets_keep_and_excludes_drop_matching_changes():
    records = (orders(), a_table("items"), container(), q_container(11, "items"))
    kept = plan_of(*records, targets=("items",)).changes
    assert {parse_address(c.address)[0] for c in kept} == {f"atlan:{SCHEMA}/items"}
    assert not [c for c in plan_of(*records, excludes=("*#link",)).changes if c.part == "link"]


# ---- retiring, safety


def test_what_qatlan_wrote_on_a_table_goes_when_its_container_is_gone():
    old = a_table("old_orders", cm=cm(Quality_Score=70.0),
                  announcement=Announcement(**RAISED))
    prefix = f"atlan:{SCHEMA}/old_orders"
    owned = {f"{prefix}#cm:Qualytics": {"Quality Score": 70.0}, f"{prefix}#announcement": RAISED}
    p = plan_of(old, cm_set(), owned=owned)
    assert [(c.address, c.action) for c in p.changes if c.address.startswith(prefix)] == [
        (f"{prefix}#announcement", Action.DELETE), (f"{prefix}#cm:Qualytics", Action.DELETE)]


def test_a_table_a_container_still_claims_is_not_retired():
    owned = {CM: {"Quality Score": 70.0}}
    p = plan_of(orders(cm=cm(Quality_Score=70.0)), a_table("ORDERS"), cm_set(), container(),
                owned=owned)  # "orders" is ambiguous now: leave both tables alone
    assert not [c for c in p.changes if c.action is Action.DELETE]


def test_external_tags_qatlan_attached_go_when_the_atlan_table_is_gone():
    p = plan_of(container(tags=(QTag("PII", "external"),)),
                owned={f"{Q}#tag:PII": {"name": "PII", "type": "external"}})
    assert [(c.address, c.action) for c in p.changes] == [(f"{Q}#tag:PII", Action.DELETE)]


def test_an_incomplete_snapshot_removes_nothing_and_says_what_was_held_back():
    current = orders(announcement=Announcement(**RAISED))
    owned = {f"{T}#announcement": RAISED, f"{Q}#tag:PII": {"name": "PII", "type": "external"}}
    p = plan_of(current, container(active_anomalies=0, tags=(QTag("PII", "external"),)),
                owned=owned, complete=False)
    assert not [c for c in p.changes if c.action is Action.DELETE]
    held = sorted(k.id for k in p.skipped if k.reason == "incomplete_snapshot")
    assert held == [f"{T}#announcement", f"{Q}#tag:PII"]
    assert f"{T}#link" in changes(p)  # additions still go ahead


def _deleting_plan(n):
    return Plan(tuple(Change(f"{Q}#tag:T{i}", Action.DELETE, {"name": f"T{i}"}, None)
                      for i in range(n)))


def test_a_plan_removing_too_much_of_what_qatlan_owns_is_refused():
    with pytest.raises(PlanRefused) as info:
        check_removals(_deleting_plan(3), 10, PlanSettings())
    assert "removes 3 of the 10 items" in str(info.value)
    assert "--allow-mass-removal" in str(info.value)


def test_mass_removal_goes_ahead_when_allowed_or_small():
    check_removals(_deleting_plan(3), 10, PlanSettings(allow_mass_removal=True))
    check_removals(_deleting_plan(3), 100, PlanSettings())


def test_owned_items_count_each_custom_metadata_attribute():
    assert owned_item_count({CM: {"Quality Score": 1, "Coverage": 2}, f"{T}#link": {}}) == 3


# ---- the plan model


def test_changes_keep_terraforms_before_and_after_rules():
    with pytest.raises(ValueError):
        Change("a", Action.CREATE, {"x": 1}, {"x": 2})
    with pytest.raises(ValueError):
        Change("a", Action.DELETE, {"x": 1}, {"x": 2})
    with pytest.raises(ValueError):
        Change("a", Action.UPDATE, {"x": 1}, {"x": 1})


def test_a_plan_counts_adds_changes_and_destroys_and_sorts_by_address():
    p = plan_of(orders(tags=("hPII",)), *TAGS, cm_set(), container(score=QualityScore(total=1)),
                qualytics_ui_url="")
    assert p.counts() == {"add": 2, "change": 0, "destroy": 0, "adopt": 0}
    assert [c.address for c in p.changes] == sorted(c.address for c in p.changes)


def test_a_plan_of_another_format_version_is_refused():
    data = plan_of(orders(), container()).to_dict()
    with pytest.raises(PlanFileError, match="format_version 2"):
        Plan.from_dict({**data, "format_version": 2})


def test_ownership_of_custom_metadata_merges_attribute_by_attribute():
    update = Change(CM, Action.UPDATE, {"Quality Score": 1.0, "Coverage": 2.0},
                    {"Quality Score": 3.0, "Coverage": None})
    assert own({CM: {"Quality Score": 1.0, "Coverage": 2.0, "Volume": 5.0}}, update) == (
        CM, {"Quality Score": 3.0, "Volume": 5.0})


def test_addresses_split_at_the_part_even_when_names_hold_a_hash():
    assert parse_address("atlan:db/#tmp/t#tag:PII") == ("atlan:db/#tmp/t", "tag:PII")
    assert parse_address("atlan:db/s/t#link") == ("atlan:db/s/t", "link")
