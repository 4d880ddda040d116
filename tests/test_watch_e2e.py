"""`qatlan watch` end to end (issue 15): a sandbox that POSTs signed Atlan webhooks and
Qualytics Flow actions over real HTTP to a running watcher, which reads the tables again,
plans and applies.

Each test starts from a synced world (the watcher's first full resync), changes one side the
way a person or an operation would, and waits for the other side to follow.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TOKENS_ENV, make_sandbox
from stateful_apply import SEARCH, cli_app, server_writes, write_live_config
from typer.testing import CliRunner

from qatlan.config import load_config
from qatlan.match import match
from qatlan.state import State
from qatlan.watch import Watcher

pytestmark = pytest.mark.http
SPEC = "tables=12,columns=3,seed=4"
ATLAN_SECRET, FLOW_SECRET = "atlan-webhook-secret-e2e", "qualytics-flow-secret-e2e"
SECRETS_ENV = {"QATLAN_ATLAN_WEBHOOK_SECRET": ATLAN_SECRET, "QATLAN_QUALYTICS_FLOW_SECRET": FLOW_SECRET}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


class Rig:
    """A sandbox, a config and a watcher (in a thread, or a `qatlan watch` process)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str = SPEC, **watch: Any):
        for k, v in TOKENS_ENV.items():
            monkeypatch.setenv(k, v)
        self.sb = make_sandbox(spec).start()
        self.port = free_port()
        self.tmp = tmp_path
        settings = {"listen": f"127.0.0.1:{self.port}", "poll_interval": "3600s", "debounce": 0.3,
                    **watch}
        self.config_path = write_live_config(tmp_path, self.sb, watch=settings)
        self.config = load_config(self.config_path)
        self.state_path = tmp_path / "state" / "qatlan.db"
        self.watcher: Watcher | None = None
        self.thread: threading.Thread | None = None

    # ---- the watcher
    def first_sync(self) -> None:
        """What a person does before watching: one apply that creates the definitions."""
        done = CliRunner().invoke(cli_app(), ["apply", "--auto-approve", "-c", str(self.config_path)],
                                  env=TOKENS_ENV)
        assert done.exit_code == 0, done.output

    def start(self) -> None:
        if self.watcher is None and not self.state_path.exists():
            self.first_sync()
        self.watcher = Watcher(self.config, self.state_path, atlan_secret=ATLAN_SECRET,
                               qualytics_secret=FLOW_SECRET, lock_timeout=60)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.watcher.run()), daemon=True)
        self.thread.start()
        wait_for(lambda: self.health().get("reconciles", 0) >= 1, 60, "the first full resync")

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop_threadsafe()
            self.thread.join(30)
            assert not self.thread.is_alive()
            self.watcher = None

    def health(self) -> dict[str, Any]:
        try:
            return httpx.get(f"{self.url}/healthz", trust_env=False, timeout=2).json()
        except httpx.HTTPError:
            return {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def deliver(self, **faults: Any) -> None:
        """Point the sandbox's webhooks and Flows at the watcher (with delivery faults)."""
        r = httpx.put(self.sb.atlan_url + "/_sandbox/webhooks", trust_env=False, timeout=10,
                      json={"url": self.url + "/webhooks/atlan", "secret": ATLAN_SECRET, **faults})
        assert r.status_code == 200, r.text
        r = httpx.put(self.sb.qualytics_url + "/_sandbox/flows", trust_env=False, timeout=10,
                      json={"url": self.url + "/webhooks/qualytics", "secret": FLOW_SECRET, **faults})
        assert r.status_code == 200, r.text

    def delivered(self) -> None:
        for url in (self.sb.atlan_url + "/_sandbox/webhooks", self.sb.qualytics_url + "/_sandbox/flows"):
            wait_for(lambda: httpx.get(url, trust_env=False).json()["stats"]["pending"] == 0, 20,
                     "delivery")

    def idle(self) -> None:
        self.delivered()
        wait_for(lambda: self.health().get("queued") == 0, 30, "an empty queue")

    # ---- the world
    def pairs(self) -> list[tuple[int, str]]:
        """(container id, table GUID) of every matched table, from the watcher's state."""
        with State.open_readonly(self.state_path) as st:
            snapshot = st.load_snapshot()
        m = match(snapshot, self.config.mappings)
        return sorted(m.containers.items())

    def change(self, side: str, *changes: dict[str, Any]) -> None:
        base = self.sb.atlan_url if side == "atlan" else self.sb.qualytics_url
        r = httpx.post(base + "/_sandbox/world/changes", json={"changes": list(changes)}, trust_env=False)
        assert r.status_code == 200, r.text

    def cm(self, guid: str, attr: str = "Quality Score") -> Any:
        entity = self.sb.world.atlan.get(guid) or {}
        with State.open_readonly(self.state_path) as st:
            cm_def = next(d for d in st.load_snapshot(kinds=("a.cmdef",)).cm_defs.values()
                          if d.display_name == "Qualytics")
        return ((entity.get("businessAttributes") or {}).get(cm_def.hashed_name) or {}).get(
            cm_def.attr_hash(attr))

    def close(self) -> None:
        self.stop()
        self.sb.stop()


@pytest.fixture
def rig(tmp_path, monkeypatch) -> Iterator[Rig]:
    r = Rig(tmp_path, monkeypatch)
    r.start()
    yield r
    r.close()


def _new_score(rig: Rig, cid: int, total: float) -> None:
    score = dict(rig.sb.world.qualytics.get("containers", cid).get("quality_score") or {})
    score["total"] = total
    rig.change("qualytics", {"side": "qualytics", "kind": "containers", "op": "update", "id": cid,
                             "set": {"quality_score": score, "last_scanned": "2026-12-01T00:00:00+00:00"}})


def test_a_score_change_reaches_atlan_s_custom_metadata_in_seconds(rig):
    rig.deliver()
    cid, guid = rig.pairs()[0]
    started = time.monotonic()
    _new_score(rig, cid, 12.34)
    wait_for(lambda: rig.cm(guid) == 12.34, 15, "the new score in Atlan")
    assert time.monotonic() - started < 15
    with State.open_readonly(rig.state_path) as st:
        runs = [r["command"] for r in st.runs()]
    assert "watch" in runs and "apply" in runs


def test_a_resolved_anomaly_clears_the_announcement(rig):
    rig.deliver()
    anomalies = [a for a in rig.sb.world.qualytics.all("anomalies") if a.get("status", "Active") == "Active"]
    pairs = dict(rig.pairs())
    cid = next(a["container_id"] for a in anomalies if a["container_id"] in pairs)
    guid = pairs[cid]
    assert (rig.sb.world.atlan.get(guid).get("attributes") or {}).get("announcementTitle")
    rig.change("qualytics", *({"side": "qualytics", "kind": "anomalies", "op": "update", "id": a["id"],
                               "set": {"status": "Resolved"}} for a in anomalies if a["container_id"] == cid))
    wait_for(lambda: not (rig.sb.world.atlan.get(guid).get("attributes") or {}).get("announcementTitle"),
             15, "the announcement cleared")


def test_an_atlan_tag_on_a_column_reaches_the_qualytics_field(rig):
    rig.deliver()
    with State.open_readonly(rig.state_path) as st:
        snapshot = st.load_snapshot()
    m = match(snapshot, rig.config.mappings)
    fid, column_guid = sorted(m.fields.items())[0]
    tag = next(d for d in snapshot.tag_defs.values())
    token = rig.sb.tokens["atlan"]["admin"]
    with httpx.Client(base_url=rig.sb.atlan_url + "/api/meta", trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as a:
        r = a.post(f"/entity/guid/{column_guid}/classifications", json=[{"typeName": tag.hashed_name}])
        assert r.status_code in (200, 204), r.text

    def tagged() -> bool:
        field = rig.sb.world.qualytics.get("fields", fid) or {}
        return tag.display_name in [t if isinstance(t, str) else t.get("name") for t in field.get("tags") or ()]

    wait_for(tagged, 15, "the Atlan tag on the Qualytics field")


def test_duplicated_and_reordered_events_write_nothing_twice(rig):
    rig.deliver(duplicate=1.0, reorder=True, seed=7)
    pairs = rig.pairs()
    before = server_writes(rig.sb)
    for i, (cid, _) in enumerate(pairs[:3]):
        _new_score(rig, cid, 20.0 + i)
    wait_for(lambda: all(rig.cm(g) == 20.0 + i for i, (_, g) in enumerate(pairs[:3])), 20, "the scores")
    rig.idle()
    landed = server_writes(rig.sb)
    time.sleep(1.5)  # every duplicate delivered and reconciled by now
    rig.idle()
    assert server_writes(rig.sb) == landed > before


def test_with_every_event_lost_polling_still_lands_the_change(tmp_path, monkeypatch):
    r = Rig(tmp_path, monkeypatch, poll_interval="5s")
    try:
        r.start()
        r.deliver(loss=1.0)
        cid, guid = r.pairs()[1]
        _new_score(r, cid, 33.3)
        wait_for(lambda: r.cm(guid) == 33.3, 25, "the score via polling")
    finally:
        r.close()


def test_a_request_with_a_wrong_or_missing_secret_is_401_and_queues_nothing(rig, caplog):
    body = json.dumps({"container_id": rig.pairs()[0][0]})
    for headers in ({}, {"x-qualytics-secret": "wrong"}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(rig.url + "/webhooks/qualytics", content=body, headers=headers, trust_env=False)
        assert r.status_code == 401
    assert rig.health()["queued"] == 0
    assert "wrong" not in caplog.text and FLOW_SECRET not in caplog.text


def test_sigkill_with_keys_queued_loses_none_and_writes_nothing_twice(tmp_path, monkeypatch):
    rig = Rig(tmp_path, monkeypatch)
    env = {**os.environ, **TOKENS_ENV, **SECRETS_ENV}
    cmd = [sys.executable, "-m", "qatlan", "watch", "-c", str(rig.config_path)]
    try:
        rig.start()  # the first resync in-process, then the same state under `qatlan watch`
        rig.stop()
        slow = write_live_config(tmp_path, rig.sb, watch={"listen": f"127.0.0.1:{rig.port}",
                                                           "poll_interval": "3600s", "debounce": 120})
        proc = subprocess.Popen([*cmd[:-1], str(slow)], env=env, stderr=subprocess.DEVNULL)
        wait_for(lambda: rig.health().get("ok"), 30, "qatlan watch listening")
        rig.deliver()
        pairs = rig.pairs()[:2]
        for i, (cid, _) in enumerate(pairs):
            _new_score(rig, cid, 70.0 + i)
        rig.delivered()
        wait_for(lambda: rig.health().get("queued", 0) >= 1, 10, "keys queued")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with State.open_readonly(rig.state_path) as st:
            assert st.queue_depth() >= 1  # the queue outlived the process
        fast = write_live_config(tmp_path, rig.sb, watch={"listen": f"127.0.0.1:{rig.port}",
                                                           "poll_interval": "3600s", "debounce": 0})
        proc = subprocess.Popen([*cmd[:-1], str(fast)], env=env, stderr=(tmp_path / "watch.log").open("w"))
        try:
            wait_for(lambda: all(rig.cm(g) == 70.0 + i for i, (_, g) in enumerate(pairs)), 30,
                     "the queued scores after the restart")
            wait_for(lambda: rig.health().get("queued") == 0, 20, "an empty queue")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        with sqlite3.connect(f"file:{rig.state_path}?mode=ro", uri=True) as con:
            twice = con.execute(
                "SELECT address, count(*) FROM journal WHERE outcome = 'applied' "
                "GROUP BY plan_checksum, address HAVING count(*) > 1").fetchall()
            scores = con.execute(
                "SELECT count(*) FROM journal WHERE outcome = 'applied' AND address LIKE '%#cm:%'"
                " AND plan_checksum IN (SELECT plan_checksum FROM runs WHERE command = 'apply')").fetchone()
        assert twice == [] and scores[0] >= len(pairs)
        for _, guid in pairs:
            links = [e for e in rig.sb.world.atlan.links_of(guid)
                     if (e.get("attributes") or {}).get("name") == "Qualytics"
                     and e.get("status", "ACTIVE") == "ACTIVE"]
            assert len(links) == 1
    finally:
        rig.close()


def test_reconciling_a_table_in_sync_reads_it_plans_nothing_and_stores_no_new_version(tmp_path, monkeypatch):
    from qatlan.watch import Reconciler

    rig = Rig(tmp_path, monkeypatch)
    try:
        rig.first_sync()
        refreshed = CliRunner().invoke(cli_app(), ["refresh", "-c", str(rig.config_path)], env=TOKENS_ENV)
        assert refreshed.exit_code == 0, refreshed.output
        cid, guid = rig.pairs()[0]
        with State.open_readonly(rig.state_path) as st:
            table = st.load_snapshot().assets[guid].qualified_name
            ds = st.load_snapshot().containers[cid].datastore_id
        reconciler = Reconciler(rig.config, rig.state_path)
        for key in (f"a:{table}", f"q:c:{cid}", f"q:d:{ds}"):
            before = server_writes(rig.sb)
            out = reconciler.tables([key])
            assert out.plan_checksum is None and out.applied == out.held == 0, (key, out)
            assert server_writes(rig.sb) == before
            with State.open_readonly(rig.state_path) as st:
                assert st.snapshots()[-1]["changes"] == {"added": 0, "changed": 0, "removed": 0}
        assert out.requests["atlan"] <= 2  # a q:d: key with nothing moved: the schema, no table
    finally:
        rig.close()


def test_a_reconcile_right_after_the_first_apply_reads_the_definitions_it_made(tmp_path, monkeypatch):
    """The state's last snapshot predates the custom metadata set the first apply created:
    a reconcile reads the definitions again instead of planning every value anew."""
    from qatlan.watch import Reconciler

    rig = Rig(tmp_path, monkeypatch)
    try:
        rig.first_sync()
        cid, _ = rig.pairs()[0]
        before = server_writes(rig.sb)
        out = Reconciler(rig.config, rig.state_path).tables([f"q:c:{cid}"])
        assert (out.plan_checksum, out.held, server_writes(rig.sb)) == (None, 0, before)
    finally:
        rig.close()


def test_a_tag_created_in_atlan_after_the_last_refresh_still_reaches_the_qualytics_field(rig):
    """Atlan events name tags by hashed name only; a tag defined since the last snapshot is
    read from the definitions, then pulled like any other."""
    rig.deliver()
    with State.open_readonly(rig.state_path) as st:
        snapshot = st.load_snapshot()
    fid, column_guid = sorted(match(snapshot, rig.config.mappings).fields.items())[-1]
    token = rig.sb.tokens["atlan"]["admin"]
    with httpx.Client(base_url=rig.sb.atlan_url + "/api/meta", trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as a:
        made = a.post("/types/typedefs", json={"classificationDefs": [
            {"name": "", "displayName": "Brand New", "description": "", "superTypes": [],
             "attributeDefs": [], "entityTypes": []}]})
        assert made.status_code == 200, made.text
        hashed = made.json()["classificationDefs"][0]["name"]
        r = a.post(f"/entity/guid/{column_guid}/classifications", json=[{"typeName": hashed}])
        assert r.status_code in (200, 204), r.text

    def tagged() -> bool:
        field = rig.sb.world.qualytics.get("fields", fid) or {}
        return "Brand New" in [t if isinstance(t, str) else t.get("name") for t in field.get("tags") or ()]

    wait_for(tagged, 15, "the new Atlan tag on the Qualytics field")


def test_a_poll_does_not_take_qatlan_s_own_writes_for_changes_but_finds_a_person_s(tmp_path, monkeypatch):
    """Every apply stamps the Atlan assets it wrote (update time before and after): a poll
    right after the first sync (its snapshot predates the writes), and after a watch apply,
    names no table; a person's tag on a column afterwards is found."""
    from qatlan.watch import Reconciler

    rig = Rig(tmp_path, monkeypatch)
    try:
        rig.first_sync()
        reconciler = Reconciler(rig.config, rig.state_path)
        assert reconciler.poll()[0] == []  # the first apply wrote every table; none is news
        cid, guid = rig.pairs()[0]
        _new_score(rig, cid, 61.5)
        out = reconciler.tables([f"q:c:{cid}"])
        assert out.applied >= 1 and rig.cm(guid) == 61.5
        assert reconciler.poll()[0] == []  # that apply's writes are not news either
        with State.open_readonly(rig.state_path) as st:
            snapshot = st.load_snapshot()
        fid, column_guid = sorted(match(snapshot, rig.config.mappings).fields.items())[0]
        table = snapshot.assets[column_guid].parent_qn
        tag = next(iter(snapshot.tag_defs.values()))
        token = rig.sb.tokens["atlan"]["admin"]
        r = httpx.post(f"{rig.sb.atlan_url}/api/meta/entity/guid/{column_guid}/classifications",
                       json=[{"typeName": tag.hashed_name}], headers={"Authorization": f"Bearer {token}"},
                       trust_env=False, timeout=10)
        assert r.status_code in (200, 204), r.text
        assert reconciler.poll()[0] == [f"a:{table}"]
    finally:
        rig.close()


def test_a_poll_reads_atlan_from_the_latest_snapshot_not_from_an_older_mark(tmp_path, monkeypatch):
    """After a refresh (a full resync), a poll does not page through what that refresh read
    again: it starts from the newer of its own mark and the snapshot's."""
    from qatlan.watch import Reconciler
    from qatlan.watch.poll import ATLAN_MARK

    rig = Rig(tmp_path, monkeypatch, spec="tables=40,columns=3,seed=4")
    try:
        rig.first_sync()
        refreshed = CliRunner().invoke(cli_app(), ["refresh", "--full", "-c", str(rig.config_path)],
                                       env=TOKENS_ENV)
        assert refreshed.exit_code == 0, refreshed.output
        with State.open(rig.state_path) as st:
            st.set_watch_mark(ATLAN_MARK, 1)  # a watcher that last polled long before

        def searches() -> int:
            return sum(e["count"] for e in rig.sb.atlan_app.ops.stats.to_json()["endpoints"]
                       if e["path"] == SEARCH)

        before = searches()
        keys, _, _ = Reconciler(rig.config, rig.state_path).poll()
        assert keys == []
        # one page, (nearly) empty: from the old mark the poll would page through the 160
        # tables and columns the first sync wrote, 100 a page
        assert searches() - before == 1
    finally:
        rig.close()


def _metric(rig: Rig, name: str) -> float:
    text = httpx.get(f"{rig.url}/metrics", trust_env=False, timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_the_webhooks_of_qatlan_s_own_writes_cost_no_reconcile(rig):
    """Atlan sends an event for each of qatlan's writes too: the keys they queue are dropped
    when due (their update times are within qatlan's writes), not reconciled."""
    rig.deliver()
    cid, guid = rig.pairs()[2]
    before = rig.health()["reconciles"]
    _new_score(rig, cid, 44.4)
    wait_for(lambda: rig.cm(guid) == 44.4, 20, "the score")
    rig.idle()
    time.sleep(1.0)  # the write's own event, delivered and due (debounce 0.3 s)
    rig.idle()
    assert _metric(rig, "qatlan_watch_own_writes_total") >= 1
    assert rig.health()["reconciles"] == before + 1
