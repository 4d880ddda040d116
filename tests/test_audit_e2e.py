"""Audit of past sync states, as a new user meets it: a sync, a drift cycle (a score changed
in Qualytics, a tag added in Atlan, an anomaly resolved) and another apply, then `qatlan log`,
`state diff`, `state show --at`, read-only use, SQL tools, and `state prune`.

Over real HTTP against a live sandbox, through the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import zlib
from pathlib import Path

import pytest
from sqlite_utils import Database
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox
from stateful_apply import cli_app, write_live_config

pytestmark = pytest.mark.http
runner = CliRunner()
SPEC = "tables=20,columns=4,seed=2"
NEW_SCORE = {"total": 12.5, "completeness": 40.0, "coverage": 41.0, "conformity": 42.0,
             "consistency": 43.0, "precision": 44.0, "timeliness": 45.0, "volumetrics": 46.0,
             "accuracy": 47.0}


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(cli_app(), list(args), env={**TOKENS_ENV, **(env or {})})


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    """A synced world, one drift cycle applied; yields what the drift was."""
    tmp = tmp_path_factory.mktemp("audit")
    sb = make_sandbox(SPEC).start()
    cfg = str(write_live_config(tmp, sb))
    assert invoke("apply", "--auto-approve", "-c", cfg).exit_code == 0
    matched = json.loads(invoke("match", "-c", cfg, "--json", "--no-refresh").stdout)
    cid, table_guid = sorted(matched["containers"].items())[0]
    atlan = sb.world.atlan
    table = atlan.get(table_guid)["attributes"]["qualifiedName"]
    column = next(e for e in atlan.entities.values() if e["typeName"] == "Column"
                  and e["attributes"]["qualifiedName"].startswith(table + "/"))
    tag = atlan.typedefs["classificationDefs"][0]
    anomaly = next(a for a in sb.world.qualytics.all("anomalies") if a.get("status") == "Active")
    old_score = next(c for c in sb.world.qualytics.all("containers") if c["id"] == int(cid))["quality_score"]
    sb.world.apply_changes([
        {"side": "qualytics", "kind": "containers", "op": "update", "id": int(cid),
         "set": {"quality_score": NEW_SCORE, "last_scanned": "2026-12-03T10:00:00+00:00"}},
        {"side": "atlan", "op": "update", "guid": column["guid"],
         "set": {"classifications": [{"typeName": tag["name"]}]}},
        {"side": "qualytics", "kind": "anomalies", "op": "update", "id": anomaly["id"],
         "set": {"status": "Resolved"}},
    ])
    applied = invoke("apply", "--auto-approve", "-c", cfg)
    assert applied.exit_code == 0, applied.output
    yield {"sb": sb, "cfg": cfg, "state": str(tmp / "state" / "qatlan.db"), "table": table,
           "container_id": int(cid), "column": column["attributes"]["qualifiedName"],
           "column_guid": column["guid"], "tag": tag.get("displayName") or tag["name"],
           "old_total": old_score["total"], "anomaly": anomaly}
    sb.stop()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_log_shows_each_value_with_the_plan_and_run_that_wrote_it_and_its_qualytics_source(cycle):
    events = _json(invoke("log", cycle["table"], "--json", "--state", cycle["state"]))["events"]
    written = [e for e in events if e["event"] == "applied" and e["attribute"] == "cm:Qualytics.Quality Score"]
    # first sync writes the old score, the drift cycle the new one: each by its own plan and run
    assert [(e["before"], e["after"]) for e in written] == [(None, cycle["old_total"]),
                                                            (cycle["old_total"], NEW_SCORE["total"])]
    assert len({e["plan_checksum"] for e in written}) == 2 and len({e["run_id"] for e in written}) == 2
    source = written[-1]["source"]
    assert source.startswith("qualytics:") and source.endswith("/" + cycle["table"].rsplit("/", 1)[1])
    assert all(e["who"] and "@" in e["who"] for e in written)
    # the Qualytics value it came from, as observed, is in the same timeline
    seen = [e for e in events if e["event"] == "observed" and e["asset"] == source
            and e["attribute"] == "score.total"]
    assert [(e["before"], e["after"]) for e in seen][-1] == (cycle["old_total"], NEW_SCORE["total"])
    # qatlan reading its own first write back is attributed to the plan that wrote it
    read_back = [e for e in events if e["event"] == "observed" and e["attribute"] == "cm.Quality Score"]
    assert read_back and read_back[0]["written_by"] == written[0]["plan_checksum"]
    # display names only: no hashed custom metadata or tag names
    human = invoke("log", cycle["table"], "--state", cycle["state"])
    assert human.exit_code == 0 and "cm:Qualytics.Quality Score" in human.output
    assert written[-1]["plan_checksum"][:12] in human.output


def test_log_accepts_patterns_and_time_bounds_and_says_when_nothing_matches(cycle):
    everything = _json(invoke("log", cycle["table"], "--json", "--state", cycle["state"]))["events"]
    last = max(e["at"] for e in everything)
    later = _json(invoke("log", cycle["table"], "--json", "--since", last, "--state", cycle["state"]))["events"]
    assert later and all(e["at"] >= last for e in later) and len(later) < len(everything)
    pattern = "*" + cycle["column"].rsplit("/", 2)[1] + "/*"
    many = _json(invoke("log", pattern, "--json", "--state", cycle["state"]))["events"]
    assert any(e["asset"] == "atlan:" + cycle["column"] and e["attribute"] == "tags" for e in many)
    missing = invoke("log", "no/such/asset", "--state", cycle["state"])
    assert missing.exit_code == 1 and "nothing in the state matches" in missing.output
    bad = invoke("log", cycle["table"], "--since", "yesterday", "--state", cycle["state"])
    assert bad.exit_code == 1 and "neither a snapshot id nor a time" in bad.output


def test_state_diff_shows_exactly_the_drift(cycle):
    diff = _json(invoke("state", "diff", "--json", "--state", cycle["state"], "1", "2"))
    drift = {(r["kind"], r["key"]): {a["attribute"]: (a["before"], a["after"]) for a in r["attributes"]
                                     if a["written_by"] is None}
             for r in diff["records"]}
    drift = {k: v for k, v in drift.items() if v}
    assert drift[("a.asset", cycle["column_guid"])] == {"tags": ([], [cycle["tag"]])}
    container = drift[("q.container", str(cycle["container_id"]))]
    assert container["score.total"] == (cycle["old_total"], NEW_SCORE["total"])
    assert set(container) <= {f"score.{k}" for k in NEW_SCORE} | {"last_scanned", "active_anomalies"}
    # the rest of the drift is the resolved anomaly's counts on the Qualytics side
    others = {k: v for k, v in drift.items() if k not in {("a.asset", cycle["column_guid"]),
                                                          ("q.container", str(cycle["container_id"]))}}
    assert others and all(kind in ("q.container", "q.datastore", "q.field") for kind, _ in others)
    assert all(set(v) == {"active_anomalies"} and v["active_anomalies"][1] == v["active_anomalies"][0] - 1
               for v in others.values())
    # everything else that differs is qatlan's first apply read back, and says so
    assert any(a["written_by"] for r in diff["records"] for a in r["attributes"])
    human = invoke("state", "diff", "1", "2", "--state", cycle["state"])
    assert human.exit_code == 0 and "Changed outside qatlan (drift):" in human.output
    assert "Written by qatlan" in human.output


def test_state_show_at_gives_the_earlier_value(cycle):
    source = [e for e in _json(invoke("log", cycle["table"], "--json", "--state", cycle["state"]))["events"]
              if e["event"] == "applied" and e["source"]][0]["source"]
    before = _json(invoke("state", "show", source, "--at", "1", "--json", "--state", cycle["state"]))
    after = _json(invoke("state", "show", source, "--at", "2", "--json", "--state", cycle["state"]))
    assert before["records"][0]["data"]["score"]["total"] == cycle["old_total"]
    assert after["records"][0]["data"]["score"]["total"] == NEW_SCORE["total"]
    by_time = _json(invoke("state", "show", source, "--at", before["taken_at"], "--json",
                           "--state", cycle["state"]))
    assert by_time["snapshot_id"] == 1
    # Atlan at snapshot 2 still had the old score: qatlan wrote the new one after that refresh
    human = invoke("state", "show", cycle["table"], "--at", "2", "--state", cycle["state"])
    assert human.exit_code == 0 and f"cm.Quality Score: {cycle['old_total']}" in human.output


@contextlib.contextmanager
def read_only_copy(state: str, tmp_path: Path):
    """A copy of the state folder that cannot be written: a read-only bind mount as root
    (whom file modes do not stop), file modes otherwise."""
    src = tmp_path / "archive"
    src.mkdir()
    with contextlib.closing(sqlite3.connect(state)) as conn, \
            contextlib.closing(sqlite3.connect(src / "qatlan.db")) as copy:
        conn.backup(copy)  # a clean copy: no -wal, no -shm, like an archived artifact
    if os.geteuid() != 0:
        os.chmod(src / "qatlan.db", 0o444)
        os.chmod(src, 0o555)
        try:
            yield src / "qatlan.db"
        finally:
            os.chmod(src, 0o755)
        return
    mnt = tmp_path / "ro"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {mounted.stderr.decode().strip()}")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=False, capture_output=True)
    try:
        with pytest.raises(OSError):
            (mnt / "probe").write_text("x")
        yield mnt / "qatlan.db"
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_read_commands_work_on_a_read_only_state_and_write_commands_fail_in_one_line(cycle, tmp_path):
    with read_only_copy(cycle["state"], tmp_path) as db:
        bare = {"ATLAN_API_TOKEN": "", "QUALYTICS_API_TOKEN": ""}  # no qatlan.toml, no tokens
        for args in (["history"], ["state", "list"], ["state", "diff"], ["log", cycle["table"]],
                     ["state", "show", cycle["table"]], ["state", "show", cycle["table"], "--at", "1"]):
            result = runner.invoke(cli_app(), [*args, "--state", str(db)], env=bare)
            assert result.exit_code == 0, (args, result.output)
        assert not (db.parent / "qatlan.db-wal").exists()
        for args in (["refresh", "-c", cycle["cfg"]], ["plan", "-c", cycle["cfg"]],
                     ["state", "prune", "--keep-snapshots", "1"]):
            result = invoke(*args, "--state", str(db))
            assert result.exit_code == 1, (args, result.output)
            errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and "read-only" in errors[0], result.output
            assert "Traceback" not in result.output
        fresh = invoke("refresh", "-c", cycle["cfg"], "--state", str(db.parent / "new.db"))
        errors = [line for line in fresh.output.splitlines() if line.startswith("Error:")]
        assert fresh.exit_code == 1 and len(errors) == 1 and "cannot be written" in errors[0], fresh.output


def test_sql_tools_see_linked_rows_views_and_answer_what_changed_on_an_asset(cycle, tmp_path):
    copy = tmp_path / "copy.db"
    shutil.copy(cycle["state"], copy)
    db = Database(copy)
    fks = {(fk.table, fk.column, fk.other_table) for t in db.tables for fk in t.foreign_keys}
    assert {("journal", "plan_id", "plans"), ("journal", "run_id", "runs"),
            ("plan_changes", "plan_id", "plans"), ("plans", "snapshot_id", "snapshots"),
            ("plans", "run_id", "runs"), ("records", "valid_from", "snapshots")} <= fks
    assert {"asset_changes", "planned_changes", "latest_values", "failed_changes",
            "record_versions"} <= set(db.view_names())
    # the documented query (docs/state.md), run by the sqlite3 module as any tool would
    doc = (Path(__file__).resolve().parent.parent / "docs" / "state.md").read_text()
    query = doc.split("What changed on asset X")[1].split("```sql")[1].split("```")[0]
    query = query.replace("'atlan:default/snowflake/1657037873/SALES/PUBLIC/ORDERS'", "?")
    with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
        rows = conn.execute(query, ["atlan:" + cycle["table"]]).fetchall()
    assert rows and {r[1] for r in rows} == {"applied"}
    assert any(r[2] == "cm:Qualytics" and json.loads(r[5])["Quality Score"] == NEW_SCORE["total"] for r in rows)


def test_prune_keeps_every_answer_for_what_it_keeps_and_shrinks_the_file(cycle, tmp_path):
    copy = tmp_path / "state" / "qatlan.db"
    copy.parent.mkdir()
    with contextlib.closing(sqlite3.connect(cycle["state"])) as conn, \
            contextlib.closing(sqlite3.connect(copy)) as dst:
        conn.backup(dst)
    for _ in range(2):  # more snapshots and plans to prune
        assert invoke("plan", "-c", cycle["cfg"], "--state", str(copy)).exit_code in (0, 2)
    before_log = _json(invoke("log", cycle["table"], "--json", "--state", str(copy)))["events"]
    latest = _json(invoke("state", "show", "--at", "4", "--json", "--state", str(copy)))
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        plans_before = conn.execute("SELECT count(*) FROM plans").fetchone()[0]
        # nothing changed between the two plans: the second one shares the first one's rows
        shared = conn.execute("SELECT changes_from FROM plans ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert shared is not None
    size_before = _size(copy)
    pruned = invoke("state", "prune", "--keep-snapshots", "1", "--state", str(copy))
    assert pruned.exit_code == 0, pruned.output
    assert "Pruned 3 snapshot(s) before snapshot 4" in pruned.output
    assert [s["id"] for s in _snapshots(copy)] == [4]
    assert _json(invoke("state", "show", "--at", "4", "--json", "--state", str(copy))) == latest
    after_log = _json(invoke("log", cycle["table"], "--json", "--state", str(copy)))["events"]
    applied = [e for e in before_log if e["event"] == "applied"]
    assert applied and [e for e in after_log if e["event"] == "applied"] == applied
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        # the unapplied plan of snapshot 3 went; the applied ones and the latest stayed
        assert conn.execute("SELECT count(*) FROM plans").fetchone()[0] == plans_before - 1
        assert conn.execute("SELECT count(*) FROM records WHERE valid_from < 4").fetchone()[0] == 0
        # the latest plan shared the pruned plan's change rows: it took them over
        pid, body = conn.execute("SELECT id, body FROM plans ORDER BY id DESC LIMIT 1").fetchone()
        rows = conn.execute("SELECT count(*) FROM planned_changes WHERE plan_id = ?", [pid]).fetchone()[0]
    assert rows == len(json.loads(zlib.decompress(body))["changes"])
    assert _size(copy) < size_before
    keep_two = invoke("state", "prune", "--keep-snapshots", "2", "--older-than", "0", "--state", str(copy))
    assert keep_two.exit_code == 0 and "Nothing to prune" in keep_two.output
    nothing = invoke("state", "prune", "--state", str(copy))
    assert nothing.exit_code == 1 and "--keep-snapshots N or --older-than DAYS" in nothing.output


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _snapshots(path: Path) -> list[dict]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [{"id": i} for (i,) in conn.execute("SELECT id FROM snapshots ORDER BY id")]


def _free_port() -> int:
    import socket

    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_qatlan_audit_serves_the_state_read_only_with_linked_rows_and_canned_queries(cycle):
    pytest.importorskip("datasette", reason="qatlan audit needs the audit extra (Datasette)")
    import sys
    import time

    import httpx

    port = _free_port()
    stamp = os.stat(cycle["state"]).st_mtime_ns
    proc = subprocess.Popen([sys.executable, "-m", "qatlan", "audit", "--port", str(port),
                             "--state", cycle["state"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/qatlan.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "qatlan audit did not start"
            time.sleep(0.3)

        def rows(path: str, **params: str) -> list[dict]:
            response = httpx.get(f"{base}/qatlan/{path}.json", params={"_shape": "array", **params}, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()

        timeline = rows("asset_timeline", asset="atlan:" + cycle["table"])
        assert {r["outcome"] for r in timeline} == {"applied"}
        assert any(r["part"] == "cm:Qualytics" and json.loads(r["after"])["Quality Score"] == NEW_SCORE["total"]
                   for r in timeline)
        assert rows("last_apply") and rows("failed_changes") == []
        with contextlib.closing(sqlite3.connect(f"file:{cycle['state']}?mode=ro", uri=True)) as conn:
            expected = dict(conn.execute(
                "SELECT rule, count(*) FROM plan_conflicts WHERE plan_id = (SELECT coalesce(changes_from, id) "
                "FROM plans ORDER BY id DESC LIMIT 1) GROUP BY rule").fetchall())
        assert {r["rule"]: r["conflicts"] for r in rows("conflicts_by_reason")} == expected
        versions = rows("asset_versions", name=cycle["table"])
        assert versions and {r["kind"] for r in versions} == {"a.asset"}
        assert rows("asset_changes", _size="5")  # the views are there
        # foreign keys: a journal row links to its plan and its run
        page = httpx.get(f"{base}/qatlan/journal", timeout=30).text
        assert 'href="/qatlan/plans/' in page and 'href="/qatlan/runs/' in page
        # read-only: Datasette refuses writes, and the file is unchanged
        write = httpx.post(f"{base}/qatlan/-/query", data={"sql": "DELETE FROM runs"}, timeout=30)
        assert write.status_code >= 400
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert os.stat(cycle["state"]).st_mtime_ns == stamp
    refused = invoke("audit", "--host", "0.0.0.0", "--state", cycle["state"])
    assert refused.exit_code == 1 and "loopback only" in refused.output
