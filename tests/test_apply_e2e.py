"""`qatlan apply` as a user runs it: over real HTTP against a live sandbox."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox
from qatlan.cli import apply as apply_cmds
from qatlan.config import load_config
from qatlan.plan import write_plan_file
from qatlan.pipeline import PlanOptions, make_plan
from qatlan.state import State
from stateful_apply import cli_app, qatlan_command, server_writes, write_live_config

pytestmark = pytest.mark.http
runner = CliRunner()
SPEC = "tables=12,columns=4,seed=1"


@pytest.fixture
def live():
    sb = make_sandbox(SPEC).start()
    yield sb
    sb.stop()


def invoke(args, input=None):
    return runner.invoke(cli_app(), args, env=TOKENS_ENV, input=input)


def _state(tmp_path) -> State:
    return State.open(tmp_path / "state" / "qatlan.db")


def _saved_plan(tmp_path, cfg_path):
    cfg = load_config(cfg_path, env=TOKENS_ENV)
    with _state(tmp_path) as st:
        plan = make_plan(cfg, st, PlanOptions(create_definitions=True))
    return write_plan_file(plan, tmp_path / "plan.json")


def test_auto_approve_applies_then_a_rerun_says_no_changes_and_writes_nothing(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    first = invoke(["apply", "--auto-approve", "--create-definitions", "-c", str(cfg)])
    assert first.exit_code == 0, first.output
    assert "Apply complete! Resources:" in first.output and "0 failed" in first.output
    before = server_writes(live)
    second = invoke(["apply", "--auto-approve", "-c", str(cfg)])
    assert second.exit_code == 0, second.output
    assert "No changes." in second.output
    assert server_writes(live) == before


def test_without_a_terminal_apply_refuses_to_ask_and_does_nothing(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    result = invoke(["apply", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "--auto-approve" in result.output and "no terminal" in result.output
    assert live.atlan_app.ops.stats.to_json()["total"]["count"] == 0


def test_only_yes_approves(tmp_path, live, monkeypatch):
    monkeypatch.setattr(apply_cmds, "_interactive", lambda: True)
    cfg = write_live_config(tmp_path, live)
    declined = invoke(["apply", "--create-definitions", "-c", str(cfg)], input="y\n")
    assert declined.exit_code == 1
    assert "Only 'yes' will be accepted" in declined.output and "Apply cancelled." in declined.output
    assert server_writes(live) == 0
    approved = invoke(["apply", "--create-definitions", "-c", str(cfg)], input="yes\n")
    assert approved.exit_code == 0, approved.output
    assert "Apply complete!" in approved.output


def test_ctrl_c_at_the_question_exits_130_and_writes_nothing(tmp_path, live, monkeypatch):
    monkeypatch.setattr(apply_cmds, "_interactive", lambda: True)

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupt)
    cfg = write_live_config(tmp_path, live)
    result = invoke(["apply", "-c", str(cfg)])
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output and server_writes(live) == 0


def test_a_closed_input_at_the_question_cancels(tmp_path, live, monkeypatch):
    monkeypatch.setattr(apply_cmds, "_interactive", lambda: True)
    cfg = write_live_config(tmp_path, live)
    result = invoke(["apply", "-c", str(cfg)], input="")
    assert result.exit_code == 1 and "Apply cancelled." in result.output
    assert server_writes(live) == 0


def test_a_saved_plan_is_applied_without_asking(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    plan_file = _saved_plan(tmp_path, cfg)
    result = invoke(["apply", str(plan_file), "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "Apply complete!" in result.output


def test_a_stale_saved_plan_is_refused(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    plan_file = _saved_plan(tmp_path, cfg)
    container = live.world.qualytics.all("containers")[0]
    live.world.apply_changes([{"side": "qualytics", "kind": "containers", "op": "update",
                               "id": container["id"], "set": {"description": "changed"}}])
    live.world.apply_changes([{"side": "qualytics", "kind": "containers", "op": "update",
                               "id": container["id"], "set": {"quality_score": None}}])
    assert invoke(["refresh", "-c", str(cfg)]).exit_code == 0
    result = invoke(["apply", str(plan_file), "-c", str(cfg)])
    assert result.exit_code == 1
    assert "stale" in result.output and "qatlan plan" in result.output


def test_a_plan_made_against_another_state_is_refused(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    plan_file = _saved_plan(tmp_path, cfg)
    result = invoke(["apply", str(plan_file), "-c", str(cfg), "--state", str(tmp_path / "other.db")])
    assert result.exit_code == 1
    assert "different state database" in result.output


def test_an_edited_plan_file_is_refused(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    plan_file = _saved_plan(tmp_path, cfg)
    doc = json.loads(plan_file.read_text())
    doc["plan"]["changes"][0]["after"] = {"name": "tampered"}
    plan_file.write_text(json.dumps(doc))
    result = invoke(["apply", str(plan_file), "-c", str(cfg)])
    assert result.exit_code == 1 and "edited" in result.output
    assert server_writes(live) == 0


def test_planning_flags_with_a_saved_plan_are_an_error(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    plan_file = _saved_plan(tmp_path, cfg)
    result = invoke(["apply", str(plan_file), "--create-definitions", "-c", str(cfg)])
    assert result.exit_code == 1 and "qatlan plan --out" in result.output


def test_a_held_lock_fails_after_the_timeout_naming_the_holder(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    with _state(tmp_path) as other:
        lock = other.acquire_lock("apply")
        started = time.monotonic()
        result = invoke(["apply", "--auto-approve", "--lock-timeout", "0.3", "-c", str(cfg)])
        assert time.monotonic() - started >= 0.3
        other.release_lock(lock.id)
    assert result.exit_code == 1
    assert "still running" in result.output and "locked by" in result.output
    assert server_writes(live) == 0


def test_an_apply_waits_for_the_lock_and_then_runs(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    taken = threading.Event()

    def hold() -> None:  # another run that holds the lock for a moment
        with _state(tmp_path) as other, other.locked("apply"):
            taken.set()
            time.sleep(0.4)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    result = invoke(["apply", "--auto-approve", "--create-definitions", "--lock-timeout", "10", "-c", str(cfg)])
    holder.join()
    assert result.exit_code == 0, result.output
    assert "Apply complete!" in result.output


def test_two_concurrent_applies_one_waits_and_nothing_is_lost(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    env = {**TOKENS_ENV, "PATH": "/usr/bin:/bin"}
    args = ["apply", "--auto-approve", "--create-definitions", "--lock-timeout", "60", "-c", str(cfg)]
    procs = [subprocess.Popen(qatlan_command() + args, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    texts = [out for out, _ in outputs]
    assert sum("Apply complete!" in t for t in texts) >= 1
    assert any("No changes." in t for t in texts) or all("Apply complete!" in t for t in texts)
    cfg_obj = load_config(cfg, env=TOKENS_ENV)
    with _state(tmp_path) as st:
        again = make_plan(cfg_obj, st)
        assert again.is_empty(), [(c.address, c.action, c.before, c.after) for c in again.changes][:3]


def test_failed_changes_exit_one_and_are_listed(tmp_path, live):
    cfg = write_live_config(tmp_path, live)
    persona = live.world.atlan.persona_for_token(TOKENS_ENV["ATLAN_API_TOKEN"])
    persona["update"] = [c for c in persona["update"] if not c.startswith("default/postgres/")]
    result = invoke(["apply", "--auto-approve", "--create-definitions", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "Apply finished with errors!" in result.output
    assert "change(s) failed" in result.output and "default/postgres/" in result.output
    assert "Traceback" not in result.output


def test_an_interrupted_apply_is_resumed_by_the_next_one(tmp_path, live):
    from qatlan.apply import apply_plan

    cfg = write_live_config(tmp_path, live)
    cfg_obj = load_config(cfg, env=TOKENS_ENV)

    def stop(stage, done, total):
        raise KeyboardInterrupt

    with _state(tmp_path) as st:
        plan = make_plan(cfg_obj, st, PlanOptions(create_definitions=True))
        with pytest.raises(KeyboardInterrupt):
            apply_plan(cfg_obj, st, plan, progress=stop)
    result = invoke(["apply", "--auto-approve", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "Resuming the apply of plan" in result.output and "earlier run" in result.output
    with _state(tmp_path) as st:
        again = make_plan(cfg_obj, st)
        assert again.is_empty(), [(c.address, c.action, c.before, c.after) for c in again.changes][:3]


def _person_announcement(live):
    for e in live.world.atlan.entities.values():
        attrs = e.get("attributes") or {}
        if attrs.get("announcementTitle") and not attrs["announcementTitle"].startswith("Qualytics: "):
            return e
    raise AssertionError("the world has no person's announcement")


def test_an_edited_plan_with_a_recomputed_checksum_is_refused(tmp_path, live):
    from qatlan.plan import plan_checksum

    cfg = write_live_config(tmp_path, live)
    plan_file = _saved_plan(tmp_path, cfg)
    doc = json.loads(plan_file.read_text())
    person = _person_announcement(live)
    attrs = person["attributes"]
    doc["plan"]["changes"].append({
        "address": f"atlan:{attrs['qualifiedName']}#announcement", "action": "delete",
        "before": {"type": attrs["announcementType"], "title": attrs["announcementTitle"],
                   "message": attrs.get("announcementMessage")},
        "after": None, "reason": None,
        "target": {"side": "atlan", "part": "announcement", "guid": person["guid"],
                   "type_name": person["typeName"], "qualified_name": attrs["qualifiedName"]}})
    doc["checksum"] = plan_checksum(doc["plan"])
    plan_file.write_text(json.dumps(doc))
    result = invoke(["apply", str(plan_file), "-c", str(cfg)])
    assert result.exit_code == 1, result.output
    assert "not made with this state" in result.output and "whatever checksum" in result.output
    assert server_writes(live) == 0
    assert live.world.atlan.entities[person["guid"]]["attributes"]["announcementTitle"] == attrs["announcementTitle"]


def test_a_signed_plan_travels_to_a_state_that_did_not_record_it(tmp_path, live, monkeypatch):
    import shutil

    cfg = write_live_config(tmp_path, live)
    assert invoke(["refresh", "-c", str(cfg)]).exit_code == 0
    db = tmp_path / "state" / "qatlan.db"
    with _state(tmp_path) as st:  # the apply job's copy: made before the plan job recorded its plan
        st.meta()
    shutil.copy(db, tmp_path / "before-plan.db")
    monkeypatch.setenv("QATLAN_PLAN_KEY", "a-shared-secret")
    planned = runner.invoke(cli_app(), ["plan", "--no-refresh", "--out", str(tmp_path / "p.json"), "-c", str(cfg)],
                            env={**TOKENS_ENV, "QATLAN_PLAN_KEY": "a-shared-secret"})
    assert planned.exit_code == 0, planned.output
    copy = ["--state", str(tmp_path / "before-plan.db")]
    unsigned = runner.invoke(cli_app(), ["apply", str(tmp_path / "p.json"), "-c", str(cfg), *copy],
                             env={**TOKENS_ENV, "QATLAN_PLAN_KEY": ""})
    assert unsigned.exit_code == 1 and "not made with this state" in unsigned.output
    wrong = runner.invoke(cli_app(), ["apply", str(tmp_path / "p.json"), "-c", str(cfg), *copy],
                          env={**TOKENS_ENV, "QATLAN_PLAN_KEY": "another-secret"})
    assert wrong.exit_code == 1
    signed = runner.invoke(cli_app(), ["apply", str(tmp_path / "p.json"), "-c", str(cfg), *copy],
                           env={**TOKENS_ENV, "QATLAN_PLAN_KEY": "a-shared-secret"})
    assert signed.exit_code == 0, signed.output
    assert "a-shared-secret" not in signed.output + planned.output
