"""The read commands as a user runs them: over real HTTP against a live sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox, sandbox_config_doc
from qatlan.cli import app
from qatlan.state import State

pytestmark = pytest.mark.http
runner = CliRunner()


def _toml(doc: dict) -> str:
    lines = []
    for section in ("atlan", "qualytics", "sync", "state"):
        if section in doc and doc[section] is not None:
            lines.append(f"[{section}]")
            for k, v in doc[section].items():
                lines.append(f"{k} = {_value(v)}")
    for m in doc.get("mappings", []):
        lines.append("[[mappings]]")
        for k, v in m.items():
            lines.append(f"{k} = {_value(v)}")
    return "\n".join(lines) + "\n"


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="module")
def live():
    sb = make_sandbox("tables=40,seed=4").start()
    yield sb
    sb.stop()


def write_config(tmp_path: Path, sb, **overrides) -> Path:
    doc = sandbox_config_doc(sb.world, base_url_atlan=sb.atlan_url, base_url_qualytics=sb.qualytics_url)
    doc["state"] = {"path": str(tmp_path / "state" / "qatlan.db")}
    for section, values in overrides.items():
        doc.setdefault(section, {}).update(values)
    path = tmp_path / "qatlan.toml"
    path.write_text(_toml(doc))
    return path


def invoke(args, env=None):
    return runner.invoke(app, args, env={**TOKENS_ENV, **(env or {})})


def test_refresh_prints_a_summary_and_state_list_shows_the_snapshot(tmp_path, live):
    cfg = write_config(tmp_path, live)
    result = invoke(["refresh", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "Snapshot 1 saved" in result.output and "complete" in result.output
    listed = invoke(["state", "list", "-c", str(cfg)])
    assert listed.exit_code == 0 and "lineage" in listed.output


def test_state_show_prints_each_version_of_an_asset(tmp_path, live):
    cfg = write_config(tmp_path, live)
    invoke(["refresh", "-c", str(cfg)])
    st = State.open(tmp_path / "state" / "qatlan.db")
    asset = next(a for a in st.load_snapshot().assets.values() if a.type_name == "Table")
    st.close()
    shown = invoke(["state", "show", asset.qualified_name, "-c", str(cfg)])
    assert shown.exit_code == 0
    assert asset.guid in shown.output and "snapshots 1" in shown.output


def test_an_unreachable_host_is_a_clear_error_without_traceback(tmp_path, live):
    cfg = write_config(tmp_path, live, atlan={"url": "http://127.0.0.1:9", "max_retries": 0})
    result = invoke(["refresh", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "127.0.0.1:9" in result.output


def test_a_rejected_token_names_the_environment_variable(tmp_path, live):
    cfg = write_config(tmp_path, live)
    result = invoke(["refresh", "-c", str(cfg)], env={"ATLAN_API_TOKEN": "not-a-valid-token-xyz"})
    assert result.exit_code == 1
    assert "ATLAN_API_TOKEN" in result.output
    assert "not-a-valid-token-xyz" not in result.output
    assert "Traceback" not in result.output


def test_a_missing_token_variable_is_a_config_error(tmp_path, live):
    cfg = write_config(tmp_path, live)
    result = invoke(["refresh", "-c", str(cfg)], env={"QUALYTICS_API_TOKEN": ""})
    assert result.exit_code == 1
    assert "QUALYTICS_API_TOKEN" in result.output


def test_tls_to_a_plain_http_server_is_a_clear_error(tmp_path, live):
    https = live.atlan_url.replace("http://", "https://")
    cfg = write_config(tmp_path, live, atlan={"url": https, "max_retries": 0})
    result = invoke(["refresh", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_a_file_that_is_not_a_qatlan_state_is_refused(tmp_path, live):
    bogus = tmp_path / "state" / "qatlan.db"
    bogus.parent.mkdir(parents=True)
    bogus.write_text("hello, I am not a database")
    cfg = write_config(tmp_path, live)
    result = invoke(["refresh", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "qatlan" in result.output.lower() and "Traceback" not in result.output


def test_an_incomplete_refresh_exits_one_and_says_what_is_missing(tmp_path, live):
    cfg = write_config(tmp_path, live)
    hidden = [m for m in live.world.meta["mapping"] if not m.get("visible_to_sync", True)][0]
    with cfg.open("a") as fh:
        fh.write(f'[[mappings]]\ndatastore_id = {hidden["datastore_id"]}\n'
                 f'connection = "{hidden["connection_qualified_name"]}"\n')
    result = invoke(["refresh", "-c", str(cfg)])
    assert result.exit_code == 1
    assert "incomplete" in result.output.lower()
    assert hidden["connection_qualified_name"] in result.output


def test_outputs_never_contain_a_token(tmp_path, live):
    cfg = write_config(tmp_path, live)
    outputs = [invoke(args).output for args in (
        ["refresh", "-c", str(cfg)], ["state", "list", "-c", str(cfg)], ["history", "-c", str(cfg)],
        ["--debug", "refresh", "-c", str(cfg)],
    )]
    for text in outputs:
        for token in TOKENS_ENV.values():
            assert token not in text


@pytest.mark.slow
def test_killing_refresh_at_any_moment_leaves_the_previous_snapshot_intact(tmp_path):
    sb = make_sandbox("tables=400,seed=9").start()
    try:
        cfg = write_config(tmp_path, sb)
        env = {**os.environ, **TOKENS_ENV}
        assert invoke(["refresh", "-c", str(cfg)]).exit_code == 0
        state_path = tmp_path / "state" / "qatlan.db"
        st = State.open(state_path)
        before = st.load_snapshot()
        st.close()
        sb.world.apply_changes([{"side": "qualytics", "kind": "containers", "op": "update",
                                 "id": next(iter(before.containers)), "set": {"last_scanned": None}}])
        for delay in (0.3, 0.8, 1.5, 2.5):
            proc = subprocess.Popen([sys.executable, "-m", "qatlan", "refresh", "--full", "-c", str(cfg)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            st = State.open(state_path)
            latest = st.load_snapshot()  # always a whole snapshot: the old one or a finished new one
            assert set(latest.assets) == set(before.assets)
            st.close()
        # the lock left by a killed run is reported, then cleared with force-unlock (or is stale-detected)
        st = State.open(state_path)
        info = st.lock_info()
        st.close()
        if info is not None:
            assert invoke(["force-unlock", info.id, "-c", str(cfg)]).exit_code == 0
        assert invoke(["refresh", "-c", str(cfg)]).exit_code == 0
    finally:
        sb.stop()


def test_a_dead_runs_lock_is_taken_over_with_a_note_and_force_unlock_spares_a_live_one(tmp_path, live):
    import multiprocessing
    import socket
    import sqlite3

    cfg = write_config(tmp_path, live)
    assert invoke(["refresh", "-c", str(cfg)]).exit_code == 0
    db = tmp_path / "state" / "qatlan.db"
    dead = multiprocessing.get_context("fork").Process(target=int)
    dead.start()
    dead.join()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO lock (id, user, host, pid, command, since) VALUES "
                     "('dead-lock', 'ci', ?, ?, 'apply', '2026-12-01T00:00:00Z')",
                     [socket.gethostname(), dead.pid])
        conn.execute("INSERT INTO runs (command, started_at, outcome, user, host, pid) VALUES "
                     "('apply', '2026-12-01T00:00:00Z', 'running', 'ci', ?, ?)", [socket.gethostname(), dead.pid])
    conn.close()
    result = invoke(["refresh", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert f"took over the state lock of ci@{socket.gethostname()} pid {dead.pid}" in result.output
    history = invoke(["history", "-c", str(cfg)])
    assert "killed" in history.output

    with State.open(db) as st:  # a live holder: this test process
        lock = st.acquire_lock("apply")
        refused = invoke(["force-unlock", lock.id, "-c", str(cfg)])
        assert refused.exit_code == 1 and "--force" in refused.output
        assert st.lock_info() == lock
        forced = invoke(["force-unlock", lock.id, "--force", "-c", str(cfg)])
        assert forced.exit_code == 0 and "Warning" in forced.output and "still running" in forced.output
        assert st.lock_info() is None
