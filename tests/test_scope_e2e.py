"""Scope never shrinks silently: a persona that loses a connection is an incomplete snapshot.

Over real HTTP against a live sandbox, through the CLI. A datastore that matched before and
matches nothing now makes refresh and plan exit 1, naming the connection and the persona
policy to check; the plan removes nothing meanwhile; `--accept-scope` takes the new scope.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox
from stateful_apply import cli_app, write_live_config

pytestmark = pytest.mark.http
runner = CliRunner()
SPEC = "tables=20,columns=4,seed=2"


def invoke(*args: str):
    return runner.invoke(cli_app(), list(args), env=TOKENS_ENV)


def _config_without_rule(tmp_path, sb, datastore_id: int) -> str:
    """qatlan.toml with the world's [[mappings]] but the one of `datastore_id` (matched by
    inference instead: one connection of its type holds its schema)."""
    path = write_live_config(tmp_path, sb)
    text = path.read_text()
    blocks = text.split("[[mappings]]")
    kept = [b for b in blocks[1:] if f"datastore_id = {datastore_id}\n" not in b]
    path.write_text(blocks[0] + "".join("[[mappings]]" + b for b in kept))
    return str(path)


def _matched_by_inference(cfg: str) -> str:
    result = json.loads(invoke("match", "-c", cfg, "--json", "--no-refresh").stdout)
    (connection,) = [m["connection"] for m in result["datastores"].values() if m["via"] == "inferred"]
    return connection


def test_a_connection_the_persona_can_no_longer_see_makes_the_snapshot_incomplete(tmp_path):
    sb = make_sandbox(SPEC).start()
    try:
        cfg = _config_without_rule(tmp_path, sb, 3)
        assert invoke("apply", "--auto-approve", "-c", cfg).exit_code == 0
        connection = _matched_by_inference(cfg)
        persona = sb.world.atlan.persona_for_token(TOKENS_ENV["ATLAN_API_TOKEN"])
        everything = list(persona["read"])
        persona["read"] = [qn for qn in everything if qn != connection]

        refreshed = invoke("refresh", "-c", cfg)
        assert refreshed.exit_code == 1
        assert f"connection {connection}" in refreshed.output and "Personas" in refreshed.output
        planned = invoke("plan", "-c", cfg, "--detailed-exitcode", "--json")
        assert planned.exit_code == 1, planned.output
        plan = json.loads(planned.stdout)
        assert plan["complete"] is False and connection in " ".join(plan["base"]["missing"])
        assert not [c for c in plan["changes"] if c["action"] == "delete"]
        assert "--accept-scope" in planned.stderr

        persona["read"] = everything
        again = invoke("plan", "-c", cfg, "--detailed-exitcode")
        assert again.exit_code == 0, again.output

        persona["read"] = [qn for qn in everything if qn != connection]
        accepted = invoke("refresh", "-c", cfg, "--accept-scope")
        assert accepted.exit_code == 0, accepted.output
        assert invoke("refresh", "-c", cfg).exit_code == 0  # the new scope is the baseline
    finally:
        sb.stop()
