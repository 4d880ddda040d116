"""The audit library on states built directly: `asset_log` reconstructs what `state_at` shows,
for any sequence of snapshots and applies (property), and `state_diff` against DeepDiff."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from qatlan.audit import asset_log, flatten, state_at, state_diff
from qatlan.model import AAsset, ACMAttribute, ACMDef, Announcement, ATagDef, QContainer, QDatastore, Snapshot
from qatlan.model import QualityScore
from qatlan.plan import Action, Change, Plan
from qatlan.state import State

TAGS = {"h_pii": "PII", "h_gold": "Gold", "h_fin": "Finance"}
CM = ACMDef("h_set", "Qualytics", (ACMAttribute("h_score", "Quality Score", "float"),
                                   ACMAttribute("h_checks", "Active Checks", "int")))
QN = "default/snowflake/1/DB/S/ORDERS"
GUID = "g-orders"


def _asset(tags: list[str], score: float | None, checks: int | None, announced: str | None) -> AAsset:
    cm = tuple(sorted((k, v) for k, v in (("h_score", score), ("h_checks", checks)) if v is not None))
    return AAsset(GUID, "Table", QN, "ORDERS", "default/snowflake/1", "default/snowflake/1/DB/S",
                  tags=tuple(sorted(tags)), cm=cm,
                  announcement=Announcement("warning", announced, "m") if announced else None)


def _container(total: float) -> QContainer:
    return QContainer(7, 1, "ORDERS", "table", score=QualityScore(total=total), active_checks=1)


step = hst.fixed_dictionaries({
    "asset": hst.none() | hst.builds(
        _asset, hst.lists(hst.sampled_from(sorted(TAGS)), unique=True, max_size=3),
        hst.none() | hst.sampled_from([10.0, 55.5, 80]), hst.none() | hst.integers(0, 3),
        hst.none() | hst.sampled_from(["one anomaly", "two anomalies"])),
    "total": hst.sampled_from([1.0, 2.5, 99.0]),
    "apply": hst.booleans(),
})


def _snapshot(s: dict[str, Any]) -> Snapshot:
    records: list[Any] = [QDatastore(1, "pg", "jdbc", "postgresql"), _container(s["total"]), CM,
                          *(ATagDef(h, name) for h, name in TAGS.items())]
    if s["asset"] is not None:
        records.append(s["asset"])
    return Snapshot.from_records(records)


def _apply(state: State, i: int, score: float) -> None:
    """A plan writing the score, journaled applied (as apply records it)."""
    change = Change(f"atlan:{QN}#cm:Qualytics", Action.CREATE, None, {"Quality Score": score},
                    target={"source": "qualytics:pg/ORDERS"})
    p = Plan(changes=(change,), base={"lineage": state.lineage, "serial": state.serial},
             created_at=f"2026-01-01T00:{i:02d}:30.000Z")
    checksum = state.save_plan(p)
    state.record_outcomes(checksum, None, state.plan_id(checksum),
                          [(change.address, "create", "applied", None)],
                          at=f"2026-01-01T00:{i:02d}:31.000Z")


def _replayed(events: list, address: str, upto: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for e in events:
        if e.event != "observed" or e.asset != address or e.snapshot_id > upto:
            continue
        if e.after is None:
            values.pop(e.attribute, None)
        else:
            values[e.attribute] = e.after
    return values


def _shown(state: State, sid: int, address: str) -> dict[str, Any]:
    _, records = state_at(state, str(sid), address)
    mine = [r for r in records if r["address"] == address]
    return {".".join(k): v for k, v in flatten(mine[0]["data"]).items()} if mine else {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hst.lists(step, min_size=1, max_size=6))
def test_log_reconstructs_every_value_state_show_at_reports(steps):
    with State.open(":memory:") as state:
        ids = []
        for i, s in enumerate(steps):
            ids.append(state.save_snapshot(_snapshot(s), taken_at=f"2026-01-01T00:{i:02d}:00.000Z"))
            if s["apply"]:
                _apply(state, i, 42.0 + i)
        for address in (f"atlan:{QN}", "qualytics:pg/ORDERS"):
            if not any(s["asset"] for s in steps) and address.startswith("atlan:"):
                continue  # the asset was never seen and never changed: nothing to log
            events = asset_log(state, address)
            for sid in ids:
                assert _replayed(events, address, sid) == _shown(state, sid, address), (address, sid)


@settings(max_examples=40, deadline=None)
@given(step, step)
def test_state_diff_lists_exactly_the_attributes_that_differ(a, b):
    with State.open(":memory:") as state:
        first = state.save_snapshot(_snapshot(a), taken_at="2026-01-01T00:00:00.000Z")
        second = state.save_snapshot(_snapshot(b), taken_at="2026-01-01T00:01:00.000Z")
        _, _, entries = state_diff(state)
        for address in (f"atlan:{QN}", "qualytics:pg/ORDERS"):
            before, after = _shown(state, first, address), _shown(state, second, address)
            expected = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
            listed = {attr for e in entries if e.address == address for attr, *_ in e.attributes}
            assert listed == expected
            assert all(w is None for e in entries for *_, w in e.attributes)  # no apply: all drift


def _old_state(path) -> None:
    """A state as qatlan made it before plans were stored as rows: the migrations up to
    `_container_reads`/`_journal_intents`, a stored plan (zlib JSON only) and its journal."""
    import json
    import sqlite3
    import zlib

    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from qatlan.plan import canonical_pieces, plan_checksum
    from qatlan.state import schema

    old = Migrations("qatlan")
    for m in schema.MIGRATIONS._migrations:
        if m.name.endswith(("plan_inputs", "audit")):
            break
        old(name=m.name)(m.fn)
    db = Database(sqlite3.connect(path, isolation_level=None))
    schema.migrate(db, old)
    change = Change(f"atlan:{QN}#cm:Qualytics", Action.CREATE, None, {"Quality Score": 80.0},
                    target={"source": "qualytics:pg/ORDERS"})
    p = Plan(changes=(change,), base={"lineage": "x", "serial": 0}, created_at="2026-01-01T00:00:00.000Z")
    checksum = plan_checksum(p)
    db["plans"].insert({"created_at": p.created_at, "lineage": "x", "serial": 0, "checksum": checksum,
                        "summary": json.dumps(p.summary()),
                        "body": zlib.compress(b"".join(canonical_pieces(p)))})
    db["journal"].insert({"plan_checksum": checksum, "address": change.address, "action": "create",
                          "outcome": "applied", "at": "2026-01-01T00:00:01.000Z"})
    db.conn.close()


def test_a_state_made_before_the_audit_tables_is_migrated_with_its_plans_as_rows(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    _old_state(path)
    # read-only first: migrated in memory, the file left as it was
    with State.open_readonly(path) as st:
        events = asset_log(st, f"atlan:{QN}")
    assert [(e.event, e.attribute, e.after) for e in events] == [
        ("applied", "cm:Qualytics.Quality Score", 80.0)]
    assert events[0].source == "qualytics:pg/ORDERS"
    with sqlite3.connect(path) as conn:
        assert "plan_changes" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    # then for real
    with State.open(path) as st:
        assert asset_log(st, f"atlan:{QN}") == events
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT outcome, before, after, plan_id FROM journal").fetchone()
        assert row[0] == "applied" and row[1] is None and row[3] == 1
        assert json.loads(row[2]) == {"Quality Score": 80.0}
        assert conn.execute("SELECT count(*) FROM asset_changes").fetchone()[0] == 1


def test_an_asset_is_found_by_address_qualified_name_name_guid_id_or_pattern():
    from qatlan.model import QField

    with State.open(":memory:") as state:
        field = QField(70, 7, "ID", score=QualityScore(total=5.0))
        snap = Snapshot.from_records([QDatastore(1, "pg/main", "jdbc", "postgresql"),
                                      _container(1.0), field, _asset(["h_pii"], 1.0, None, None), CM,
                                      *(ATagDef(h, n) for h, n in TAGS.items())])
        state.save_snapshot(snap, taken_at="2026-01-01T00:00:00.000Z")
        h = state.history
        table, container = f"atlan:{QN}", "qualytics:pg/main/ORDERS"
        assert set(h.asset_records(QN).values()) == {table}
        assert set(h.asset_records(table).values()) == {table}
        assert set(h.asset_records(GUID).values()) == {table}
        assert set(h.asset_records("ORDERS").values()) == {table, container}
        assert set(h.asset_records("7").values()) == {container}
        assert set(h.asset_records(container).values()) == {container}
        assert set(h.asset_records("qualytics:pg/main").values()) == {"qualytics:pg/main"}
        assert set(h.asset_records("qualytics:pg/main/ORDERS/ID").values()) == {container + "/ID"}
        assert set(h.asset_records("*ORDERS*").values()) == {table, container, container + "/ID"}
        assert h.asset_records("qualytics:pg/main/NOPE") == {}
        events = asset_log(state, "qualytics:pg/main/ORDERS/ID")
        assert ("score.total", 5.0) in [(e.attribute, e.after) for e in events]
        tags = [e for e in asset_log(state, QN) if e.attribute == "tags"]
        assert tags[0].after == ["PII"]  # display names, not h_pii
