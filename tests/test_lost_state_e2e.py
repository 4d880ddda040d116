"""A lost state, as a user meets it: a world an earlier qatlan synced, and no state file.

Over real HTTP against a live sandbox, through the CLI. The fresh state's plan holds
adoptions and the true differences only, apply writes just those differences, the next plan
is in sync, and what people set outside qatlan's marks is untouched.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox
from stateful_apply import cli_app, server_writes, write_live_config

pytestmark = pytest.mark.http
runner = CliRunner()
SPEC = "tables=20,columns=4,seed=2"


def invoke(*args: str):
    return runner.invoke(cli_app(), list(args), env=TOKENS_ENV)


def _people(sb) -> dict[str, object]:
    """What people set in Atlan outside qatlan's marks: announcements not in qatlan's form,
    and every entity's tags (qatlan adds no tag and removes none without a record)."""
    out: dict[str, object] = {}
    for e in sb.world.atlan.entities.values():
        attrs = e.get("attributes") or {}
        title = attrs.get("announcementTitle")
        if title and not str(title).startswith("Qualytics: "):
            out[f"{e['guid']}#announcement"] = (attrs.get("announcementType"), title)
        tags = sorted(c.get("typeName") for c in e.get("classifications") or ())
        if tags:
            out[f"{e['guid']}#tags"] = tags
    return out


def _lose_the_state(tmp_path) -> None:
    for path in (tmp_path / "state").glob("qatlan.db*"):
        path.unlink()


def test_a_fresh_state_against_a_synced_world_adopts_restores_the_drift_and_converges(tmp_path):
    sb = make_sandbox(SPEC).start()
    try:
        cfg = str(write_live_config(tmp_path, sb))
        tables = {c["target"]["qualified_name"].rsplit("/", 1)[-1]
                  for c in json.loads(invoke("plan", "-c", cfg, "--json").stdout)["changes"]
                  if c["target"].get("type_name") == "Table" and c["target"]["part"] == "cm"}
        first = invoke("apply", "--auto-approve", "-c", cfg)
        assert first.exit_code == 0, first.output
        _lose_the_state(tmp_path)
        # a true difference while the state is gone: a matched container's score moves
        container = next(c for c in sb.world.qualytics.all("containers")
                         if c["name"] in tables and (c.get("quality_score") or {}).get("total"))
        sb.world.apply_changes([{"side": "qualytics", "kind": "containers", "op": "update",
                                 "id": container["id"], "set": {"quality_score": {
                                     **container["quality_score"], "total": 12.5}}}])
        people = _people(sb)
        planned = invoke("plan", "-c", cfg, "--json", "--detailed-exitcode")
        assert planned.exit_code == 2, planned.output
        plan = json.loads(planned.stdout)
        differences = [c for c in plan["changes"] if c["action"] != "adopt"]
        assert plan["summary"]["adopt"] > 0
        assert [c["address"].rsplit("/", 1)[-1] for c in differences] == [f"{container['name']}#cm:Qualytics"]
        (moved,) = differences
        before, after = moved["before"], moved["after"]
        assert moved["action"] == "update"
        assert {a: v for a, v in after.items() if before[a] != v} == {"Quality Score": 12.5}
        assert moved["target"]["adopt"] == len(after) and "taken over" in moved["reason"]
        writes = server_writes(sb)
        applied = invoke("apply", "--auto-approve", "-c", cfg)
        assert applied.exit_code == 0, applied.output
        assert f"{plan['summary']['adopt']} adopted, 0 added, 1 changed, 0 destroyed" in applied.output
        assert server_writes(sb) - writes == 1  # the one bulk upsert of the moved score
        again = invoke("plan", "-c", cfg, "--detailed-exitcode")
        assert again.exit_code == 0, again.output
        assert "No changes. Both sides are in sync." in again.output
        writes = server_writes(sb)
        assert invoke("apply", "--auto-approve", "-c", cfg).exit_code == 0
        assert server_writes(sb) == writes
        assert _people(sb) == people
    finally:
        sb.stop()
