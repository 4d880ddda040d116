"""`kill -9` during `qatlan apply`, at several points: the next run finishes the job.

A real subprocess applies against a live sandbox (bulk writes slowed a little so that the
kill lands mid-way). After the kill the lock is released with `qatlan force-unlock ID`, as a
user would; the next `qatlan apply` resumes the same plan. Then: the next plan is empty, no
Link is duplicated, and no write was repeated.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import TOKENS_ENV, make_sandbox
from qatlan.config import load_config
from qatlan.pipeline import PlanOptions, make_plan
from qatlan.sandbox.ops import FaultSettings
from qatlan.state import State
from stateful_apply import BULK, entities_of, qatlan_command, write_live_config

pytestmark = [pytest.mark.http, pytest.mark.slow]
SPEC = "tables=30,seed=3"


def _journal_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return conn.execute("SELECT count(*) FROM journal").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _run(args: list[str], log: Path) -> subprocess.Popen:
    """The CLI in a subprocess; its output goes to `log` (a pipe nobody reads would block it)."""
    env = {**TOKENS_ENV, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with log.open("w") as out:
        return subprocess.Popen(qatlan_command() + args, env=env, stdout=out, stderr=subprocess.STDOUT)


def _kill_after(proc: subprocess.Popen, db: Path, rows: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        n = _journal_rows(db)
        if n >= rows:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return n
        time.sleep(0.005)
    raise AssertionError(f"apply ended (exit {proc.poll()}) before {rows} journal rows")


def _bulk_posts(sb) -> int:
    for e in sb.atlan_app.ops.stats.to_json()["endpoints"]:
        if e["method"] == "POST" and e["path"] == BULK:
            return e["count"]
    return 0


def _qatlan_links(sb) -> list[tuple[str, int]]:
    """(asset guid, ACTIVE Links called Qualytics) for every asset that has any."""
    counts: dict[str, int] = {}
    for e in sb.world.atlan.entities.values():
        if e["typeName"] == "Link" and e["status"] == "ACTIVE" and e["attributes"].get("name") == "Qualytics":
            asset = (e["attributes"].get("asset") or {}).get("guid")
            counts[asset] = counts.get(asset, 0) + 1
    return sorted(counts.items())


@pytest.mark.parametrize("kill_at", [1, 150, 420])
def test_a_killed_apply_is_finished_by_the_next_run_without_repeating_writes(tmp_path, kill_at):
    sb = make_sandbox(SPEC).start()
    try:
        sb.atlan_app.ops.set_faults(FaultSettings(latency_min_ms=15, methods=("POST",), paths=(BULK,)))
        cfg_path = write_live_config(tmp_path, sb)
        db = tmp_path / "state" / "qatlan.db"
        cfg = load_config(cfg_path, env=TOKENS_ENV)
        args = ["apply", "--auto-approve", "--create-definitions", "--parallelism", "2", "-c", str(cfg_path)]
        _kill_after(_run(args, tmp_path / "killed.log"), db, kill_at)
        with State.open(db) as st:
            lock = st.lock_info()
            plan = next(p for p in _plans(st))
        assert lock is not None and lock.command == "apply"
        unlock = _run(["force-unlock", lock.id, "-c", str(cfg_path)], tmp_path / "unlock.log")
        assert unlock.wait(60) == 0, (tmp_path / "unlock.log").read_text()
        rerun = _run(args, tmp_path / "rerun.log")
        rerun.wait(120)
        out = (tmp_path / "rerun.log").read_text()
        assert rerun.returncode == 0, out[-3000:]
        assert "Resuming the apply of plan" in out and "Apply complete!" in out
        minimum = math.ceil(entities_of(plan) / cfg.atlan.batch_size)
        assert _bulk_posts(sb) <= minimum + 3  # a cut batch may be sent in two parts, never twice
        sb.atlan_app.ops.set_faults(FaultSettings())
        with State.open(db) as st:
            assert make_plan(cfg, st, PlanOptions()).is_empty()
        assert all(n == 1 for _, n in _qatlan_links(sb))
    finally:
        sb.stop()


def _plans(st: State):
    run = st.last_run("apply")
    yield st.load_plan(run["plan_checksum"])


def _locked(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return conn.execute("SELECT count(*) FROM lock").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False


def test_a_saved_plan_killed_as_soon_as_it_holds_the_lock_is_resumed_with_its_own_options(tmp_path):
    # issue 12, case 8: the saved plan creates definitions; the config does not
    from stateful_apply import cli_app
    from typer.testing import CliRunner

    sb = make_sandbox(SPEC).start()
    try:
        cfg_path = write_live_config(tmp_path, sb)
        db = tmp_path / "state" / "qatlan.db"
        runner = CliRunner()
        made = runner.invoke(cli_app(), ["plan", "--create-definitions", "--out", str(tmp_path / "p.json"),
                                         "-c", str(cfg_path)], env=TOKENS_ENV)
        assert made.exit_code == 0, made.output
        checksum = json.loads((tmp_path / "p.json").read_text())["checksum"]
        sb.atlan_app.ops.set_faults(FaultSettings(latency_min_ms=3000))  # the first request hangs
        proc = _run(["apply", str(tmp_path / "p.json"), "-c", str(cfg_path)], tmp_path / "killed.log")
        deadline = time.monotonic() + 30
        while not _locked(db) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.002)  # killed as soon as it holds the lock
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sb.atlan_app.ops.set_faults(FaultSettings())
        resumed = runner.invoke(cli_app(), ["apply", "--auto-approve", "-c", str(cfg_path)], env=TOKENS_ENV)
        assert resumed.exit_code == 0, resumed.output
        assert f"Resuming the apply of plan {checksum[:12]}" in resumed.output
        check = runner.invoke(cli_app(), ["plan", "--detailed-exitcode", "-c", str(cfg_path)], env=TOKENS_ENV)
        assert check.exit_code == 0, check.output
    finally:
        sb.stop()


def test_a_sigkill_sweep_converges_to_the_clean_result(tmp_path):
    """Issue 12's sweep at small size (bench/kill_sweep.py runs the large one): 20 kills at
    random points (journal rows, or a time after the lock), each after a stop so that the
    requests in flight land, half with a refresh before the resume, a third with the resume
    killed too."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from kill_sweep import run_sweep

    result = run_sweep("tables=12,columns=4,seed=1", trials=20, stop=0.3, seed=12, work=tmp_path,
                       latency_ms=15)
    trials = result["trials"]
    assert len(trials) == 20
    assert any(t["refresh_before_resume"] for t in trials) and any(t["resume_killed_at"] for t in trials)
    failed = [t for t in trials if not t["ok"]]
    assert not failed, failed[:2]
    assert all(t["repeated_writes"] == 0 and t["duplicate_links"] == 0 and t["final_exit"] == 0 for t in trials)
