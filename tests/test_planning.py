"""The planning pipeline end to end against the in-process sandbox."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest

from conftest import make_config, sandbox_config_doc
from qatlan.errors import ConfigError, StaleStateError, StateError
from qatlan.pipeline import PlanOptions, check_not_stale, make_plan, match_report, settings_from
from qatlan.plan import Action, own, plan_checksum
from qatlan.planner import plan as pure_plan
from qatlan.state import State

FIXED_NOW = 1767225600.0  # 2026-01-01T00:00:00Z


def _now() -> float:
    return FIXED_NOW


def test_a_plan_is_stored_in_the_state_with_its_checksum_and_a_plan_run(config, state, transports):
    plan = make_plan(config, state, now=_now, **transports)
    assert state.load_plan(plan_checksum(plan)) == plan
    with contextlib.closing(sqlite3.connect(f"file:{state.path}?mode=ro", uri=True)) as db:
        lineage, serial, snapshot_id, summary = db.execute(
            "SELECT lineage, serial, snapshot_id, summary FROM plans").fetchone()
    assert (lineage, serial, snapshot_id) == (state.lineage, state.serial, state.latest_snapshot_id())
    assert json.loads(summary)["add"] == plan.counts()["add"]
    runs = {r["command"]: r for r in state.runs()}
    assert runs["plan"]["outcome"] == "ok" and runs["refresh"]["outcome"] == "ok"


def test_the_plan_records_its_base_and_the_time_from_now(config, state, transports):
    plan = make_plan(config, state, now=_now, **transports)
    assert plan.created_at == "2026-01-01T00:00:00.000Z"
    assert plan.base == {"lineage": state.lineage, "serial": state.serial,
                         "snapshot_id": state.latest_snapshot_id(),
                         "oldest_field_read": "2026-01-01T00:00:00.000Z",  # the refresh's own
                         "max_field_age": config.qualytics.max_field_age}


def test_a_fresh_world_plans_every_kind_of_change(config, state, transports):
    plan = make_plan(config, state, PlanOptions(create_definitions=True), **transports)
    kinds = {(c.address.split(":", 1)[0], c.part.split(":", 1)[0], c.action) for c in plan.changes}
    assert {("atlan", "cm", Action.CREATE), ("atlan", "tag", Action.CREATE),
            ("atlan", "link", Action.CREATE), ("atlan", "announcement", Action.CREATE),
            ("qualytics", "tag", Action.CREATE)} <= kinds
    assert any(c.address.startswith("atlan:typedef#") for c in plan.changes)


def test_without_refresh_and_without_a_snapshot_it_says_to_refresh(config, state):
    with pytest.raises(StateError, match="no snapshot yet: run qatlan refresh"):
        make_plan(config, state, PlanOptions(refresh=False))
    assert state.runs()[0]["outcome"] == "error"


def test_without_refresh_it_plans_from_the_latest_snapshot(config, state, transports):
    first = make_plan(config, state, now=_now, **transports)
    again = make_plan(config, state, PlanOptions(refresh=False), now=_now)
    assert again.base["snapshot_id"] == first.base["snapshot_id"]
    assert again == first
    assert [r["command"] for r in state.runs()].count("refresh") == 1


def _recomputed(config, state, options=PlanOptions(), *, like):
    """What the pure planner makes of the state now: the oracle a reused plan must equal."""
    return pure_plan(state.load_snapshot(like.base["snapshot_id"]), settings_from(config, options),
                     rules=config.mappings, owned=state.owned(), base=like.base,
                     created_at=like.created_at)


def test_a_plan_with_unchanged_inputs_is_the_plan_the_planner_would_make(config, state, transports):
    first = make_plan(config, state, now=_now, **transports)
    again = make_plan(config, state, PlanOptions(refresh=False), now=lambda: FIXED_NOW + 60)
    assert again.created_at == "2026-01-01T00:01:00.000Z"
    assert again == _recomputed(config, state, like=again)
    assert again.changes == first.changes
    # a refresh that sees nothing new makes a new snapshot of the same content
    refreshed = make_plan(config, state, now=_now, **transports)
    assert refreshed.base["snapshot_id"] != first.base["snapshot_id"]
    assert refreshed == _recomputed(config, state, like=refreshed)


def test_a_plan_is_made_again_when_ownership_or_settings_moved(config, state, transports, tmp_path, sandbox):
    first = make_plan(config, state, now=_now, **transports)
    adopted = [c for c in first.changes if c.action is Action.ADOPT]
    assert adopted
    key, value = own(state.owned(), adopted[0])
    state.set_owned(key, value)  # as if an apply had taken it over
    owned_now = make_plan(config, state, PlanOptions(refresh=False), now=_now)
    assert owned_now == _recomputed(config, state, like=owned_now)
    assert adopted[0].address not in {c.address for c in owned_now.changes}

    pushed = make_plan(config, state, PlanOptions(refresh=False, push_only=True), now=_now)
    assert pushed == _recomputed(config, state, PlanOptions(push_only=True), like=pushed)
    assert pushed.changes != owned_now.changes

    renamed = make_config(tmp_path / "renamed", sandbox_config_doc(sandbox.world))
    renamed = renamed.model_copy(update={"atlan": renamed.atlan.model_copy(update={"link_name": "DQ"})})
    linked = make_plan(renamed, state, PlanOptions(refresh=False), now=_now)
    assert linked == _recomputed(renamed, state, like=linked)
    assert {c.after["name"] for c in linked.changes if c.address.endswith("#link")} == {"DQ"}


def test_pull_only_and_push_only_keep_one_direction(config, state, transports):
    pulled = make_plan(config, state, PlanOptions(pull_only=True), **transports)
    pushed = make_plan(config, state, PlanOptions(push_only=True, refresh=False))
    assert pulled.changes and all(c.address.startswith("qualytics:") for c in pulled.changes)
    assert pushed.changes and all(c.address.startswith("atlan:") for c in pushed.changes)


def test_pull_only_with_push_only_is_refused(config, state):
    with pytest.raises(ConfigError, match="--pull-only and --push-only"):
        make_plan(config, state, PlanOptions(pull_only=True, push_only=True))


def test_targets_and_excludes_filter_the_changes(config, state, transports):
    everything = make_plan(config, state, **transports)
    some = next(c for c in everything.changes if c.address.startswith("atlan:"))
    table = some.address.split("#")[0].rsplit("/", 1)[-1]
    targeted = make_plan(config, state, PlanOptions(refresh=False, targets=(f"*{table}*",)))
    values = [c for c in targeted.changes if not c.address.startswith("atlan:typedef#")]
    assert values and all(table in c.address for c in values)
    assert all(d.address in {a for c in values for a in c.target.get("needs", ())}
               for d in targeted.changes if d.address.startswith("atlan:typedef#"))
    excluded = make_plan(config, state, PlanOptions(refresh=False, excludes=(f"*{table}*",)))
    assert excluded.changes and not any(f"/{table}#" in c.address for c in excluded.changes)


@pytest.mark.parametrize("pattern", ["", "  ", "[ORDERS"])
def test_a_bad_pattern_is_refused_before_anything_runs(config, state, pattern):
    with pytest.raises(ConfigError, match="--target"):
        make_plan(config, state, PlanOptions(targets=(pattern,)))
    assert state.runs() == []


def test_a_mapping_gives_the_renamed_tables_and_columns(tmp_path, sandbox):
    doc = sandbox_config_doc(sandbox.world)
    doc["mappings"] = [{"datastore": "Sales", "connection": "default/snowflake/1", "schema": "S",
                        "tables": {"orders": "ORDERS_V2"},
                        "columns": {"orders": {"cust_id": "CUSTOMER_ID"}, "a.b.c": "DOTTED"}}]
    (rule,) = make_config(tmp_path, doc).mappings
    assert rule.schema_name == "S" and rule.table("orders") == "ORDERS_V2" and rule.table("x") == "x"
    assert rule.column("orders", "cust_id") == "CUSTOMER_ID" and rule.column("orders", "x") == "x"
    assert rule.column("a", "b.c") == "DOTTED"


def test_settings_come_from_the_config_and_the_options(tmp_path, sandbox):
    doc = sandbox_config_doc(sandbox.world, overwrite_tags=True, domains=["Sales"])
    doc["atlan"].update(custom_metadata_set="DQ", link_name="DQ link")
    doc["qualytics"].update(integration_id=3, ui_url="https://ui.example")
    settings = settings_from(make_config(tmp_path, doc), PlanOptions(pull_only=True, targets=("*A*",)))
    assert (settings.cm_set_name, settings.link_name) == ("DQ", "DQ link")
    assert (settings.qualytics_ui_url, settings.integration_id) == ("https://ui.example", 3)
    assert settings.overwrite_tags and settings.domains == ("Sales",)
    assert settings.pull and not settings.push and settings.targets == ("*A*",)


def test_match_report_accounts_for_every_container(config, state, transports):
    result, snapshot = match_report(config, state, **transports)
    for level in ("datastore", "container", "field"):
        counts = result.counts(level)
        assert counts["matched"] + sum(v for k, v in counts.items()
                                       if k not in ("total", "matched")) == counts["total"]
    assert result.counts("container")["total"] == len(snapshot.containers)


# --------------------------------------------------------------------------- stale plans


def test_a_plan_on_an_unchanged_state_is_not_stale(config, state, transports):
    plan = make_plan(config, state, **transports)
    make_plan(config, state, **transports)  # a refresh that sees nothing new keeps the serial
    check_not_stale(plan, state)


def test_a_plan_is_stale_once_a_refresh_saw_changes(config, state, transports, sandbox):
    plan = make_plan(config, state, **transports)
    container = sandbox.world.export()["qualytics"]["containers"][0]
    score = {**(container.get("quality_score") or {}), "total": 12.3}
    sandbox.world.apply_changes([{"side": "qualytics", "kind": "containers", "op": "update",
                                  "id": container["id"], "set": {"quality_score": score}}])
    make_plan(config, state, **transports)
    with pytest.raises(StaleStateError, match="Saved plan is stale: the state changed since the "
                                              "plan was made; run `qatlan plan` again"):
        check_not_stale(plan, state)


def test_a_plan_from_another_state_database_is_refused_as_such(config, state, transports, tmp_path):
    plan = make_plan(config, state, **transports)
    with State.open(tmp_path / "other.db") as other:
        with pytest.raises(StaleStateError, match="the plan was made against a different state database"):
            check_not_stale(plan, other)
