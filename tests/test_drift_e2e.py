"""Drift detection tells the truth: each kind of drift makes `plan --detailed-exitcode` exit 2,
and one apply brings the next plan back to 0 with a second apply writing nothing.

Over real HTTP against a live sandbox, through the CLI, as a CI job runs it. (A lost state
is in test_lost_state_e2e.py, a shrinking scope in test_scope_e2e.py, usage errors in
test_cli_plan.py.)
"""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from conftest import QUALYTICS_TOKEN, TOKENS_ENV, make_sandbox
from stateful_apply import cli_app, server_writes, write_live_config

pytestmark = pytest.mark.http
runner = CliRunner()
SPEC = "tables=20,columns=4,seed=2"


def invoke(*args: str):
    return runner.invoke(cli_app(), list(args), env=TOKENS_ENV)


@pytest.fixture
def synced(tmp_path):
    sb = make_sandbox(SPEC).start()
    cfg = str(write_live_config(tmp_path, sb))
    assert invoke("apply", "--auto-approve", "-c", cfg).exit_code == 0
    assert invoke("plan", "-c", cfg, "--detailed-exitcode").exit_code == 0
    yield sb, cfg
    sb.stop()


def _converges(sb, cfg: str) -> None:
    applied = invoke("apply", "--auto-approve", "-c", cfg)
    assert applied.exit_code == 0, applied.output
    again = invoke("plan", "-c", cfg, "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    writes = server_writes(sb)
    assert invoke("apply", "--auto-approve", "-c", cfg).exit_code == 0
    assert server_writes(sb) == writes


def test_a_tag_put_on_a_qualytics_field_by_hand_is_drift_on_the_next_default_plan(synced):
    sb, cfg = synced
    plan = json.loads(invoke("plan", "-c", cfg, "--json", "--no-refresh").stdout)
    assert plan["changes"] == []
    matched = json.loads(invoke("match", "-c", cfg, "--json", "--no-refresh").stdout)["fields"]
    field_id = int(sorted(matched)[0])
    tag = next(t["name"] for t in sb.world.qualytics.all("global_tags") if t.get("type") == "global")
    with httpx.Client(base_url=sb.qualytics_url, headers={"Authorization": f"Bearer {QUALYTICS_TOKEN}"}) as q:
        q.patch("/api/fields", json=[{"id": field_id, "tags": [tag]}]).raise_for_status()
    drift = invoke("plan", "-c", cfg, "--detailed-exitcode")
    assert drift.exit_code == 2, drift.output
    assert f"+ tag:{tag}" in drift.output
    _converges(sb, cfg)


def test_changes_that_wait_for_a_definition_are_drift_until_it_is_made(synced, tmp_path):
    sb, cfg = synced
    tag = "Hand Made"
    matched = json.loads(invoke("match", "-c", cfg, "--json", "--no-refresh").stdout)["containers"]
    container = sb.world.qualytics.get("containers", int(sorted(matched)[0]))
    sb.world.apply_changes([
        {"side": "qualytics", "kind": "global_tags", "op": "add", "record": {"name": tag, "type": "global"}},
        {"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"],
         "set": {"tags": [*(container.get("tags") or []), tag]}},
    ])
    waiting = invoke("plan", "-c", cfg, "--detailed-exitcode", "--no-create-definitions")
    assert waiting.exit_code == 2, waiting.output
    assert "wait for Atlan definitions" in waiting.output
    assert "qatlan plan --create-definitions" in waiting.output
    assert "Both sides are in sync" not in waiting.output
    _converges(sb, cfg)
