"""The SQLite state: opening and migrations, shared snapshot rows, runs, ownership, the lock."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from qatlan.state import schema
from qatlan.errors import LockError, StateError
from qatlan.model import (
    ACMAttribute,
    ACMDef,
    AAsset,
    AConnection,
    ADomain,
    ALink,
    Announcement,
    ATagDef,
    QContainer,
    QDatastore,
    QField,
    QTag,
    QualityScore,
    Snapshot,
)
from qatlan.state import SCHEMA_VERSION, State
from qatlan.state import snapshots as snapshots_module

DOCS = Path(__file__).resolve().parent.parent / "docs" / "state.md"
CTX = multiprocessing.get_context("fork")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "qatlan.db"


@pytest.fixture
def state(db_path: Path):
    st = State.open(db_path)
    yield st
    st.close()


def field(i: int, total: float = 90.0) -> QField:
    return QField(id=i, container_id=i // 10, name=f"COL_{i}", tags=(QTag("pii"),),
                  score=QualityScore(total=total, completeness=80.0), active_checks=2)


def fields_snapshot(n: int, **changes: float) -> Snapshot:
    """n fields; changes={"f3": 50.0} gives field 3 another total."""
    return Snapshot.from_records(field(i, changes.get(f"f{i}", 90.0)) for i in range(n))


def every_kind() -> Snapshot:
    return Snapshot.from_records([
        QDatastore(id=1, name="Sales", store_type="jdbc", connector="snowflake", database="SALES",
                   schema="PUBLIC", tags=(QTag("gold"), QTag("PII", "external", 4)),
                   score=QualityScore(total=91.5), active_checks=3, active_anomalies=1),
        QContainer(id=10, datastore_id=1, name="orders", container_type="table", table_type="view",
                   last_scanned="2024-01-01T00:00:00Z"),
        field(100),
        AConnection(guid="c-1", qualified_name="default/snowflake/1", name="prod",
                    connector="snowflake"),
        AAsset(guid="a-1", type_name="Table",
               qualified_name="default/snowflake/1/SALES/PUBLIC/ORDERS", name="ORDERS",
               connection_qn="default/snowflake/1", parent_qn="default/snowflake/1/SALES/PUBLIC",
               domain_guids=("d-1",), tags=("h1", "h2"),
               announcement=Announcement("warning", "2 anomalies", "see Qualytics", "qatlan"),
               cm=(("attr1", 91.5), ("attr2", "https://q/x"), ("attr3", 7), ("attr4", 63.0)),
               update_time=1700000000000),
        ALink(guid="l-1", qualified_name="ln/1", name="Qualytics", url="https://q/x",
              asset_guid="a-1"),
        ADomain(guid="d-1", qualified_name="default/domain/sales", name="Sales"),
        ATagDef(hashed_name="h1", display_name="PII"),
        ACMDef(hashed_name="cm1", display_name="Qualytics",
               attributes=(ACMAttribute("attr1", "Quality score", "float"),)),
    ], taken_at="2024-05-01T00:00:00Z")


def content(snap: Snapshot) -> dict:
    """What a snapshot holds, regardless of record order."""
    return {(r.kind, r.key): r for r in snap.records()}


def record_versions(st: State) -> int:
    return st._db.execute("SELECT count(*) FROM records").fetchone()[0]


# --------------------------------------------------------------------------- opening


def test_new_state_has_lineage_serial_zero_and_current_schema(state, db_path):
    meta = state.meta()
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["lineage"])
    assert meta["serial"] == 0 and meta["schema_version"] == SCHEMA_VERSION
    assert meta["created_at"].endswith("Z")
    applied = state._db.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall()
    assert [m for m, _ in applied] == ["qatlan"] * SCHEMA_VERSION
    assert state._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_lineage_is_stable_across_reopen(db_path):
    with State.open(db_path) as first:
        lineage = first.lineage
    with State.open(db_path) as again:
        assert again.lineage == lineage


def test_open_without_create_refuses_a_missing_state(tmp_path):
    with pytest.raises(StateError, match="no qatlan state at"):
        State.open(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "qatlan.db"
    path.write_text("name,value\nx,1\n")
    with pytest.raises(StateError, match="not an SQLite database"):
        State.open(path)
    assert path.read_text() == "name,value\nx,1\n"


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StateError, match=r"not a qatlan state \(it has tables customers"):
        State.open(path)
    names = Database(path).table_names()
    assert names == ["customers"]


def test_a_state_made_by_a_newer_qatlan_is_refused(db_path):
    with State.open(db_path) as st:
        st._db.execute("UPDATE meta SET schema_version = ?", [SCHEMA_VERSION + 1])
    with pytest.raises(StateError, match="made by a newer qatlan.*upgrade"):
        State.open(db_path)


def test_a_failing_migration_rolls_back_with_its_record(state):
    steps = Migrations("qatlan")
    for name in [row[0] for row in state._db.execute("SELECT name FROM _sqlite_migrations")]:
        steps(name=name)(lambda db: None)

    @steps(name="9999_broken")
    def broken(db):
        db["half_done"].create({"x": int})
        db.execute("UPDATE meta SET schema_version = 9999")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        schema.migrate(state._db, steps)
    assert "half_done" not in state._db.table_names()
    assert state.meta()["schema_version"] == SCHEMA_VERSION
    assert [m.name for m in steps.pending(state._db)] == ["9999_broken"]


def test_in_memory_state_works(tmp_path):
    with State.open(":memory:") as st:
        st.save_snapshot(fields_snapshot(3), taken_at="t")
        assert len(st.load_snapshot().fields) == 3


# --------------------------------------------------------------------------- snapshots


def test_every_record_kind_round_trips(state):
    snap = every_kind()
    sid = state.save_snapshot(snap, complete=False, missing=["atlan: connection x (403)"])
    loaded = state.load_snapshot()
    assert list(loaded.records()) == list(snap.records())
    assert (loaded.id, loaded.taken_at, loaded.complete, loaded.missing) == (
        sid, "2024-05-01T00:00:00Z", False, ("atlan: connection x (403)",))
    assert loaded.datastores[1].tags[1].integration_id == 4
    # values keep their JSON types: an int stays an int, 63.0 stays a float (the plan and its
    # checksum print them)
    assert [repr(r) for r in loaded.records()] == [repr(r) for r in snap.records()]


def test_a_record_with_a_field_this_qatlan_does_not_know_is_refused_by_name(state):
    sid = state.save_snapshot(every_kind())
    db = sqlite3.connect(state.path)
    with db:
        db.execute("UPDATE records SET data = json_set(data, '$.shiny', 1) WHERE kind = 'q.field'")
    db.close()
    with pytest.raises(StateError, match=r"snapshot \d+ holds a record this qatlan cannot read "
                                         r"\(q\.field 100: shiny: Unexpected keyword argument\)") as err:
        state.load_snapshot(sid)
    assert "upgrade qatlan" in err.value.hint


def test_serial_moves_only_when_content_changes(state):
    assert state.serial == 0
    state.save_snapshot(fields_snapshot(5), taken_at="t1")
    assert state.serial == 1
    state.save_snapshot(fields_snapshot(5), taken_at="t2", complete=False)
    assert state.serial == 1
    state.save_snapshot(fields_snapshot(5, f2=10.0), taken_at="t3")
    assert state.serial == 2
    state.save_snapshot(fields_snapshot(4, f2=10.0), taken_at="t4")
    assert state.serial == 3
    assert [s["serial"] for s in state.snapshots()] == [1, 1, 2, 3]


def test_identical_snapshots_share_every_row(state):
    state.save_snapshot(fields_snapshot(50), taken_at="t1")
    state.save_snapshot(fields_snapshot(50), taken_at="t2")
    assert record_versions(state) == 50
    assert state.snapshots()[1]["changes"] == {"added": 0, "changed": 0, "removed": 0}


def test_one_changed_record_adds_one_version(state):
    first = state.save_snapshot(fields_snapshot(50), taken_at="t1")
    second = state.save_snapshot(fields_snapshot(50, f7=1.0), taken_at="t2")
    assert record_versions(state) == 51
    assert state.snapshots()[1]["changes"] == {"added": 0, "changed": 1, "removed": 0}
    assert state.load_snapshot(first).fields[7].score.total == 90.0
    assert state.load_snapshot(second).fields[7].score.total == 1.0


def test_old_snapshots_load_as_they_were(state):
    snaps = [fields_snapshot(20), fields_snapshot(15, f3=5.0), every_kind(), fields_snapshot(20)]
    ids = [state.save_snapshot(s, taken_at=f"t{i}") for i, s in enumerate(snaps)]
    for sid, snap in zip(ids, snaps):
        assert content(state.load_snapshot(sid)) == content(snap), sid
    assert state.load_snapshot().id == ids[-1]


# one snapshot: {field id: total score}, over a small id space so that records come, go,
# change and come back across snapshots
snapshot_contents = hst.dictionaries(hst.integers(0, 11), hst.sampled_from([10.0, 20.0, 30.0]), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=hst.lists(snapshot_contents, min_size=1, max_size=6), chunk=hst.integers(1, 5))
def test_any_sequence_of_snapshots_loads_back_exactly_and_counts_its_changes(tmp_path_factory, monkeypatch,
                                                                            contents, chunk):
    # saving compares records with the open versions a chunk at a time: any chunk size gives
    # the same versions
    monkeypatch.setattr(snapshots_module, "_CHUNK", chunk)
    with State.open(tmp_path_factory.mktemp("seq") / "q.db") as st_:
        ids = []
        for i, content in enumerate(contents):
            snap = Snapshot.from_records(field(k, total) for k, total in sorted(content.items()))
            ids.append(st_.save_snapshot(snap, taken_at=f"t{i}"))
            previous = contents[i - 1] if i else {}
            assert st_.snapshots()[-1]["changes"] == {
                "added": len(content.keys() - previous.keys()),
                "changed": sum(1 for k in content.keys() & previous.keys() if content[k] != previous[k]),
                "removed": len(previous.keys() - content.keys()),
            }
        for sid, content in zip(ids, contents):
            loaded = st_.load_snapshot(sid)
            assert {f.id: f.score.total for f in loaded.fields.values()} == content
        # one open version per record of the latest snapshot, never two
        open_versions = st_._db.execute("SELECT count(*), count(DISTINCT key) FROM records "
                                        "WHERE valid_to IS NULL").fetchone()
        assert open_versions == (len(contents[-1]), len(contents[-1]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=hst.lists(snapshot_contents, min_size=1, max_size=5), chunk=hst.integers(1, 5),
       data=hst.data())
def test_a_snapshot_saved_from_staged_records_is_the_snapshot_saved_whole(tmp_path_factory, monkeypatch,
                                                                         contents, chunk, data):
    """`qatlan refresh` stages the bulk of what it reads (fields, columns) instead of holding
    it: whatever part is staged, in whatever order and however often a record comes (a page
    read twice), the saved snapshots, versions and counts are those of saving it whole."""
    monkeypatch.setattr(snapshots_module, "_CHUNK", chunk)
    with State.open(tmp_path_factory.mktemp("whole") / "q.db") as whole, \
            State.open(tmp_path_factory.mktemp("staged") / "q.db") as staged:
        for i, content in enumerate(contents):
            records = [field(k, total) for k, total in sorted(content.items())]
            held = [r for r in records if data.draw(hst.booleans(), label="held")]
            rest = [r for r in records if r not in held]
            again = data.draw(hst.lists(hst.sampled_from(rest), max_size=3), label="read twice") if rest else []
            order = data.draw(hst.permutations(rest + again), label="staging order")
            stale = [field(k, 1.0) for k in {r.id for r in again}]  # an earlier read of a page
            staged.stage_records(stale)
            staged.stage_records(order)
            a = whole.save_snapshot(Snapshot.from_records(records), taken_at=f"t{i}")
            b = staged.save_snapshot(Snapshot.from_records(held), taken_at=f"t{i}", staged=True)
            assert content_of(staged, b) == content_of(whole, a)
            assert staged.snapshots()[-1]["counts"] == whole.snapshots()[-1]["counts"]
            assert staged.snapshots()[-1]["changes"] == whole.snapshots()[-1]["changes"]
        assert staged.serial == whole.serial and record_versions(staged) == record_versions(whole)


def content_of(st: State, snapshot_id: int) -> dict:
    return {f.id: f.score.total for f in st.load_snapshot(snapshot_id).fields.values()}


def test_records_staged_by_a_refresh_that_failed_are_not_saved(state):
    state.stage_records([field(1), field(2)])
    state.discard_staged()
    sid = state.save_snapshot(fields_snapshot(0), taken_at="t1", staged=True)
    assert state.load_snapshot(sid).fields == {}


def test_snapshot_list_has_counts_run_and_watermarks(state):
    run = state.start_run("refresh")
    state.save_snapshot(every_kind(), run_id=run, watermarks={"atlan_update_time": 17})
    (info,) = state.snapshots()
    assert info["run_id"] == run and info["complete"] is True and info["missing"] == []
    assert info["counts"]["a.asset"] == 1 and sum(info["counts"].values()) == 9
    assert info["changes"] == {"added": 9, "changed": 0, "removed": 0}
    assert state.watermarks() == {"atlan_update_time": 17}
    assert state.watermarks(info["id"]) == {"atlan_update_time": 17}


def test_empty_state_has_no_snapshot(state):
    assert state.snapshots() == [] and state.watermarks() == {}
    with pytest.raises(StateError, match="no snapshot yet"):
        state.load_snapshot()
    with pytest.raises(StateError, match="no snapshot 4"):
        state.load_snapshot(4)


@pytest.mark.slow
def test_saving_200k_records_takes_seconds(state):
    snap = fields_snapshot(200_000)
    started = time.perf_counter()
    state.save_snapshot(snap, taken_at="t1")
    state.save_snapshot(fields_snapshot(200_000, f9=1.0), taken_at="t2")
    elapsed = time.perf_counter() - started
    assert record_versions(state) == 200_001
    assert elapsed < 30, f"two saves of 200k records took {elapsed:.1f} s"


def test_an_error_inside_the_save_keeps_the_previous_snapshot(state, monkeypatch):
    state.save_snapshot(fields_snapshot(30), taken_at="t1")
    before = (state.serial, record_versions(state), state.snapshots())
    real = state._db.execute

    def execute(sql, *args):
        if sql.startswith("UPDATE snapshots"):  # after records were written and closed
            raise KeyboardInterrupt
        return real(sql, *args)

    monkeypatch.setattr(state._db, "execute", execute)
    with pytest.raises(KeyboardInterrupt):
        state.save_snapshot(fields_snapshot(10, f1=3.0), taken_at="t2")
    monkeypatch.undo()
    assert (state.serial, record_versions(state), state.snapshots()) == before
    assert content(state.load_snapshot()) == content(fields_snapshot(30))


def _die_while_saving(path: str) -> None:
    st = State.open(path)
    real = st._db.execute

    def execute(sql, *args):
        if sql.startswith("UPDATE snapshots"):
            os._exit(9)  # the process dies with the transaction open
        return real(sql, *args)

    st._db.execute = execute
    st.save_snapshot(fields_snapshot(10, f1=3.0), taken_at="t2")


def test_a_process_killed_during_save_leaves_the_previous_snapshot(db_path):
    with State.open(db_path) as st:
        st.save_snapshot(fields_snapshot(30), taken_at="t1")
    child = CTX.Process(target=_die_while_saving, args=(str(db_path),))
    child.start()
    child.join(20)
    assert child.exitcode == 9
    with State.open(db_path) as st:
        assert len(st.snapshots()) == 1 and st.serial == 1
        assert content(st.load_snapshot()) == content(fields_snapshot(30))


def test_record_history_gives_each_version_with_its_snapshot_span(state):
    a = state.save_snapshot(fields_snapshot(5), taken_at="t1")
    state.save_snapshot(fields_snapshot(5), taken_at="t2")
    c = state.save_snapshot(fields_snapshot(5, f2=7.0), taken_at="t3")
    d = state.save_snapshot(fields_snapshot(2), taken_at="t4")
    history = state.record_history("q.field", 2)
    assert [span for span, _ in history] == [(a, c), (c, d)]
    assert [data["score"]["total"] for _, data in history] == [90.0, 7.0]
    assert state.record_history("q.field", 1)[0].span == (a, None)
    assert state.record_history("q.field", 999) == []


def test_find_records_by_guid_id_qualified_name_or_name(state):
    state.save_snapshot(every_kind(), taken_at="t1")
    by_guid = state.find_records("a-1")
    assert [(r["kind"], r["key"], r["current"]) for r in by_guid] == [("a.asset", "a-1", True)]
    assert state.find_records("default/snowflake/1/SALES/PUBLIC/ORDERS")[0]["key"] == "a-1"
    assert {r["kind"] for r in state.find_records("orders")} == {"a.asset", "q.container"}
    assert state.find_records("10")[0]["data"]["name"] == "orders"
    assert state.find_records("PII")[0]["kind"] == "a.tagdef"
    assert state.find_records("nothing-like-this") == []


def test_find_records_reports_records_no_longer_present(state):
    state.save_snapshot(every_kind(), taken_at="t1")
    state.save_snapshot(fields_snapshot(1), taken_at="t2")
    (found,) = state.find_records("a-1")
    assert found["current"] is False and found["since"] == 1


# --------------------------------------------------------------------------- runs, ownership


def test_runs_are_recorded_and_listed_newest_first(state):
    first = state.start_run("refresh")
    second = state.start_run("apply")
    state.finish_run(first, "ok", counts={"records": 3})
    state.finish_run(second, "error", message="2 changes failed")
    runs = state.runs()
    assert [r["id"] for r in runs] == [second, first]
    assert runs[1]["outcome"] == "ok" and runs[1]["counts"] == {"records": 3}
    assert runs[0]["message"] == "2 changes failed" and runs[0]["ended_at"]
    assert runs[0]["pid"] == os.getpid() and runs[0]["host"] and runs[0]["user"]
    assert len(state.runs(limit=1)) == 1


def test_a_run_is_running_until_finished(state):
    run = state.start_run("plan")
    assert state.runs()[0]["outcome"] == "running" and state.runs()[0]["ended_at"] is None
    with pytest.raises(ValueError):
        state.finish_run(run, "done")
    with pytest.raises(StateError, match="no run 99"):
        state.finish_run(99, "ok")


def test_ownership_is_set_replaced_and_dropped(state):
    run = state.start_run("apply")
    state.set_owned("atlan:qn#tag:PII", {"tag": "PII"}, run)
    state.set_owned("atlan:qn#link", {"url": "https://q/1"}, run)
    state.set_owned("atlan:qn#link", {"url": "https://q/2"}, run, plan_id=4)
    assert state.owned() == {
        "atlan:qn#link": {"url": "https://q/2"}, "atlan:qn#tag:PII": {"tag": "PII"}}
    state.set_owned("atlan:qn#tag:PII", None)
    assert list(state.owned()) == ["atlan:qn#link"]


def test_a_failed_transaction_keeps_ownership_unchanged(state):
    state.set_owned("a", 1)
    with pytest.raises(RuntimeError):
        with state.transaction():
            state.set_owned("b", 2)
            state.set_owned("a", None)
            raise RuntimeError("apply failed")
    assert state.owned() == {"a": 1}


# --------------------------------------------------------------------------- lock


def test_a_second_acquire_fails_naming_the_holder(state, db_path):
    lock = state.acquire_lock("apply")
    with State.open(db_path) as other:
        with pytest.raises(LockError) as info:
            other.acquire_lock("plan")
    message = str(info.value)
    assert f"{lock.user}@{lock.host} pid {os.getpid()}" in message
    assert "`apply`" in message and lock.since in message
    # the holder is alive here: wait for it, do not release its lock
    assert "still running" in message and "force-unlock" not in message


def _foreign_lock(db_path: Path, *, host: str, pid: int, command: str = "apply") -> str:
    """Write a lock row as another process would have left it; returns its id."""
    lock_id = f"lock-{host}-{pid}"
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("INSERT INTO lock (id, user, host, pid, command, since) VALUES (?, ?, ?, ?, ?, ?)",
                     [lock_id, "someone", host, pid, command, "2026-12-01T00:00:00Z"])
        conn.execute("INSERT INTO runs (command, started_at, outcome, user, host, pid) "
                     "VALUES (?, ?, 'running', 'someone', ?, ?)", [command, "2026-12-01T00:00:00Z", host, pid])
    return lock_id


def _dead_pid() -> int:
    proc = CTX.Process(target=int)
    proc.start()
    proc.join()
    return proc.pid


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(state, db_path):
    import socket

    dead = _dead_pid()
    _foreign_lock(db_path, host=socket.gethostname(), pid=dead)
    mine = state.acquire_lock("plan")
    assert state.lock_info() == mine and mine.pid == os.getpid()
    assert mine.replaced is not None and mine.replaced.pid == dead
    note = mine.takeover_note()
    assert f"pid {dead}" in note and "killed" in note
    killed = [r for r in state.runs() if r["pid"] == dead]
    assert [r["outcome"] for r in killed] == ["killed"] and killed[0]["ended_at"]


def test_a_lock_held_on_another_host_is_never_taken_over(state, db_path):
    lock_id = _foreign_lock(db_path, host="some-other-host.example", pid=_dead_pid())
    with pytest.raises(LockError) as info:
        state.acquire_lock("plan")
    assert f"qatlan force-unlock {lock_id}" in str(info.value) and "another host" in str(info.value)
    # qatlan cannot tell whether it lives: force-unlock is the way, and the run stays as it was
    assert state.force_unlock(lock_id).host == "some-other-host.example"
    assert state.lock_info() is None
    assert [r["outcome"] for r in state.runs()] == ["running"]


def test_force_unlock_refuses_a_live_holder_on_this_host_unless_forced(state):
    lock = state.acquire_lock("apply")
    with pytest.raises(StateError, match="held by a live process") as info:
        state.force_unlock(lock.id)
    assert "--force" in info.value.hint
    assert state.lock_info() == lock
    assert state.force_unlock(lock.id, force=True) == lock
    assert state.lock_info() is None


def test_acquire_waits_for_a_release_within_the_timeout(state, db_path):
    lock = state.acquire_lock("apply")
    def release():
        with State.open(db_path) as st:
            st.release_lock(lock.id)

    releaser = threading.Timer(0.3, release)
    releaser.start()
    with State.open(db_path) as other:
        started = time.monotonic()
        mine = other.acquire_lock("plan", timeout=5)
        assert 0.2 < time.monotonic() - started < 4.5
        assert other.lock_info() == mine and mine.command == "plan"
    releaser.join()


def test_acquire_gives_up_after_the_timeout(state):
    state.acquire_lock("apply")
    started = time.monotonic()
    with pytest.raises(LockError, match=r"waited 0.3 s"):
        state.acquire_lock("plan", timeout=0.3)
    assert time.monotonic() - started >= 0.3


def test_force_unlock_needs_the_holders_id(state, db_path):
    import socket

    dead = _dead_pid()
    lock_id = _foreign_lock(db_path, host=socket.gethostname(), pid=dead)
    with pytest.raises(StateError, match="is not the state's lock"):
        state.force_unlock("wrong-id")
    assert state.force_unlock(lock_id).pid == dead
    assert state.lock_info() is None
    assert [r["outcome"] for r in state.runs()] == ["killed"]
    assert state.release_lock(lock_id) is False
    with pytest.raises(StateError, match="not locked"):
        state.force_unlock(lock_id)


def test_locked_block_releases_even_on_error(state):
    with pytest.raises(RuntimeError):
        with state.locked("apply") as lock:
            assert state.lock_info() == lock
            raise RuntimeError
    assert state.lock_info() is None


def test_only_one_row_can_ever_be_in_the_lock_table(state):
    state.acquire_lock("apply")
    with pytest.raises(sqlite3.IntegrityError):
        state._db.execute("INSERT INTO lock (id, command) VALUES ('x', 'y')")


def _hold_lock(path: str, held, done) -> None:
    with State.open(path) as st:
        with st.locked("apply"):
            held.set()
            done.wait(20)


def test_a_lock_held_by_another_process_blocks_and_names_it(db_path):
    State.open(db_path).close()
    held, done = CTX.Event(), CTX.Event()
    child = CTX.Process(target=_hold_lock, args=(str(db_path), held, done))
    child.start()
    try:
        assert held.wait(20)
        with State.open(db_path) as st, pytest.raises(LockError) as info:
            st.acquire_lock("plan")
        assert f"pid {child.pid}" in str(info.value)
    finally:
        done.set()
        child.join(20)
    with State.open(db_path) as st:
        assert st.lock_info() is None


def _race_for_lock(path: str, start, results) -> None:
    with State.open(path) as st:
        start.wait(20)
        try:
            st.acquire_lock("race")
            results.put("won")
        except LockError:
            results.put("lost")


def test_processes_racing_for_the_lock_give_exactly_one_winner(db_path):
    State.open(db_path).close()
    start, results = CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=_race_for_lock, args=(str(db_path), start, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    outcomes = sorted(results.get(timeout=20) for _ in procs)
    for p in procs:
        p.join(20)
    assert outcomes == ["lost", "lost", "lost", "won"]


# --------------------------------------------------------------------------- docs


def test_docs_describe_every_table_and_column(state):
    sections = DOCS.read_text(encoding="utf-8").split("### `")[1:]
    documented = {s.split("`")[0]: s for s in sections}
    tables = [t for t in state._db.table_names() if t != "_sqlite_migrations"]
    assert set(tables) <= set(documented)
    for table in tables:
        for column in state._db[table].columns_dict:
            assert f"| `{column}` |" in documented[table], (table, column)



_WRITER = """
import sys, time
from qatlan.state import State
st = State.open(sys.argv[1])
for _ in range(300):
    st.finish_run(st.start_run(sys.argv[2]), "ok", message="x" * 2000)
if sys.argv[2] == "killed":
    print("written", flush=True)
    time.sleep(60)
st.close()
"""


def test_opening_the_state_keeps_this_process_s_other_connections_safe(tmp_path):
    """Opening the state must not drop the SQLite locks this process already holds.

    POSIX file locks belong to the process: closing any descriptor of the file drops them
    all. When `State.open` read the file's header with `open()`, a process that already had
    the state open (a viewer, a long-lived process, a test) lost its locks; the next writer
    took itself for the last user, deleted the WAL index that process still mapped, and
    from then on the process read "database disk image is malformed".
    """
    import subprocess
    import sys

    path = tmp_path / "qatlan.db"
    killed = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "killed"],
                              stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "written"
    viewer = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        viewer.execute("SELECT sum(length(message)) FROM runs").fetchone()
        killed.kill()
        killed.wait()
        with State.open(path) as again:
            again.meta()
        for _ in range(2):
            subprocess.run([sys.executable, "-c", _WRITER, str(path), "other"], check=True, timeout=120)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as fresh:
            assert fresh.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert fresh.execute("SELECT count(*) FROM runs").fetchone()[0] == 900
    finally:
        viewer.close()
