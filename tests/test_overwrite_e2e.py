"""The overwrite_tags rule end to end: plan, apply, plan again."""

from __future__ import annotations

import pytest

from conftest import make_config, make_sandbox, sandbox_config_doc
from qatlan.apply import apply_plan
from qatlan.pipeline import PlanOptions, make_plan
from qatlan.state import State

SPEC = "tables=40,seed=7"


def _run(tmp_path, overwrite: bool):
    sb = make_sandbox(SPEC)
    doc = sandbox_config_doc(sb.world, overwrite_tags=overwrite)
    doc["qualytics"]["integration_id"] = 1
    cfg = make_config(tmp_path, doc)
    st = State.open(tmp_path / "state.db")
    tr = {"atlan_transport": sb.atlan_transport(), "qualytics_transport": sb.qualytics_transport()}
    first = make_plan(cfg, st, PlanOptions(create_definitions=True), **tr)
    result = apply_plan(cfg, st, first, **tr)
    second = make_plan(cfg, st, PlanOptions(create_definitions=True), **tr)
    return sb, first, result, second


@pytest.mark.parametrize("overwrite", [False, True])
def test_either_overwrite_rule_converges_to_an_empty_plan(tmp_path, overwrite):
    sb, first, result, second = _run(tmp_path, overwrite)
    assert not result.failed
    assert second.is_empty(), [c.address for c in second.changes][:5]


def test_overwrite_tags_turns_the_qualytics_tag_into_the_external_one(tmp_path):
    sb, first, _, second = _run(tmp_path, True)
    converted = {c.after["name"] for c in first.changes if c.target.get("convert")}
    assert converted, "the world has an Atlan tag named like a Qualytics global tag"
    tags = {t["name"]: t for t in sb.world.export()["qualytics"]["global_tags"]}
    for name in converted:
        assert tags[name]["type"] == "external"
    assert not [k for k in second.conflicts if k.rule == "tag_conflict" and "#tag:" in k.address
                and k.address.split("#tag:")[1] in converted]


def test_without_overwrite_the_qualytics_tag_is_left_and_reported(tmp_path):
    sb, first, _, second = _run(tmp_path, False)
    assert any(k.rule == "tag_conflict" for k in second.conflicts)
    tags = {t["name"]: t for t in sb.world.export()["qualytics"]["global_tags"]}
    assert tags["Finance"]["type"] == "global"
