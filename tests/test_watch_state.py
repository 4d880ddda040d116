"""What `qatlan watch` keeps in the state (issue 15): the work queue's at-least-once rules,
patch snapshots that equal a full save of the same content, and which changes go without a
person.
"""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from strategies import scenarios, snapshots
from qatlan.plan import Action, Change
from qatlan.planner import plan
from qatlan.state import State
from qatlan.state.watchq import ECHO_KEEP_MS
from qatlan.watch import kind_of, split_by_kind
from qatlan.watch.poll import is_echo


# ---- the queue

def test_duplicate_keys_collapse_and_restart_the_debounce():
    with State.open(":memory:") as st:
        assert st.enqueue(["q:c:1", "q:c:1", "a:x/y"], now=100, debounce=5, source="atlan") == 2
        assert st.enqueue(["q:c:1"], now=103, debounce=5, source="atlan") == 0
        assert [d["key"] for d in st.due_keys(106, 10)] == ["a:x/y"]  # q:c:1 waits until 108
        due = st.due_keys(108, 10)
        assert [(d["key"], d["events"]) for d in due] == [("a:x/y", 1), ("q:c:1", 2)]


def test_a_key_with_an_event_during_its_reconcile_stays_queued():
    with State.open(":memory:") as st:
        st.enqueue(["q:c:1", "q:c:2"], now=100, debounce=0, source="poll")
        taken = st.due_keys(100, 10)
        st.enqueue(["q:c:2"], now=101, debounce=0, source="atlan")  # while reconciling
        st.keys_done(taken)
        assert [d["key"] for d in st.due_keys(200, 10)] == ["q:c:2"]
        assert st.queue_depth() == 1


def test_a_failed_reconcile_brings_its_keys_back_after_a_growing_backoff():
    with State.open(":memory:") as st:
        st.enqueue(["q:c:1"], now=0, debounce=0, source="poll")
        waits = []
        for _ in range(4):
            st.keys_retry(["q:c:1"], now=1000)
            waits.append(st.next_due() - 1000)
        assert waits == [5, 10, 20, 40]


def test_at_start_the_configured_debounce_applies_to_queued_keys():
    with State.open(":memory:") as st:
        st.enqueue(["q:c:1"], now=100, debounce=120, source="atlan")
        st.rebase_queue(2)
        assert st.next_due() == 102
        st.rebase_queue(500)  # never later than it was
        assert st.next_due() == 102


@given(st.lists(st.integers(1, 30), min_size=2, max_size=8, unique=True), st.data())
def test_an_update_is_an_echo_exactly_when_qatlan_s_stamps_chain_from_what_the_state_knows(times, data):
    """Stamps (before, after) of qatlan's writes, kept in the state and read back; an update
    seen by a poll is qatlan's own only if a chain of them leads to it from the known time."""
    times = sorted(times)
    chain = [(times[i], times[i + 1]) for i in range(len(times) - 1)]
    cut = data.draw(st.integers(0, len(chain)), label="a write qatlan did not make")
    stamps = chain[:cut] + chain[cut + 1:]
    with State.open(":memory:") as db:
        db.record_echoes([("g", b, a) for b, a in stamps] + [("other", 1, 99)])
        kept = db.echo_stamps(["g"])
    known, now = times[0], times[-1]
    assert is_echo(known, now, kept.get("g", ())) == (cut == len(chain))
    assert all(is_echo(times[i], times[j], chain) for i in range(len(times)) for j in range(i, len(times)))


def test_old_echo_stamps_go():
    with State.open(":memory:") as st:
        st.record_echoes([("a", 1, 2), ("b", 5, 3)])  # after before before: no stamp
        st.record_echoes([("c", ECHO_KEEP_MS + 10, ECHO_KEEP_MS + 20)])
        assert st.echo_stamps(["a", "b", "c"]) == {"c": [(ECHO_KEEP_MS + 10, ECHO_KEEP_MS + 20)]}


def test_watermarks_survive_reopening(tmp_path):
    with State.open(tmp_path / "q.db") as st:
        st.set_watch_mark("atlan_polled_ms", 123)
        st.enqueue(["a:t"], now=1, debounce=0, source="poll")
    with State.open(tmp_path / "q.db") as st:
        assert st.watch_mark("atlan_polled_ms") == 123 and st.queue_depth() == 1


# ---- patch snapshots

def _pick(draw, mapping, n):
    keys = sorted(mapping, key=str)
    return draw(st.lists(st.sampled_from(keys), max_size=n, unique=True)) if keys else []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), snapshots(), st.data())
def test_a_patch_snapshot_holds_what_a_full_save_of_the_merged_content_holds(first, later, data):
    """Re-reading a few records (some changed, some gone) and saving them as a patch gives the
    snapshot that saving the whole merged content gives."""
    containers = _pick(data.draw, later.containers, 3)
    assets = _pick(data.draw, later.assets, 4)
    gone_fields = _pick(data.draw, first.fields, 2)
    assume(containers or assets or gone_fields)
    records = [later.containers[k] for k in containers] + [later.assets[k] for k in assets]
    scope = ([("q.container", str(k)) for k in containers] + [("a.asset", k) for k in assets]
             + [("q.field", str(k)) for k in gone_fields])
    merged = dataclasses.replace(
        first,
        containers={**first.containers, **{k: later.containers[k] for k in containers}},
        assets={**first.assets, **{k: later.assets[k] for k in assets}},
        fields={k: f for k, f in first.fields.items() if k not in gone_fields},
    )
    with State.open(":memory:") as a, State.open(":memory:") as b:
        a.save_snapshot(first, taken_at="t1")
        patched = a.save_patch(records, scope, taken_at="t2")
        b.save_snapshot(first, taken_at="t1")
        whole = b.save_snapshot(merged, taken_at="t2")
        got, want = a.load_snapshot(patched), b.load_snapshot(whole)
        for name in ("datastores", "containers", "fields", "connections", "assets", "links"):
            assert dict(getattr(got, name)) == dict(getattr(want, name)), name
        assert a.serial == b.serial
        assert a.snapshot_info(patched)["counts"] == b.snapshot_info(whole)["counts"]
        assert a.snapshot_info(patched)["changes"] == b.snapshot_info(whole)["changes"]
        assert dict(a.load_snapshot(1).fields) == dict(first.fields)  # the earlier one unchanged


# ---- what goes without a person

@settings(max_examples=60, deadline=None)
@given(scenarios(), st.sets(st.sampled_from(["custom_metadata", "links", "announcements",
                                              "external_tags", "atlan_tags", "definitions"])))
def test_auto_apply_takes_exactly_the_configured_kinds_and_nothing_that_waits_for_a_held_definition(
        scenario, kinds):
    snapshot, owned, s = scenario
    changes = plan(snapshot, s, owned=owned).changes
    auto, held = split_by_kind(changes, kinds)
    assert sorted(map(id, auto + held)) == sorted(map(id, changes))
    assert all(kind_of(c) in kinds for c in auto)
    held_defs = {c.address for c in held if kind_of(c) == "definitions"}
    assert not any(held_defs & set(c.target.get("needs") or ()) for c in auto)


def test_each_part_of_a_change_has_its_kind():
    def change(side: str, part: str) -> Change:
        return Change("a#x", Action.UPDATE, {"v": 1}, {"v": 2}, None, {"side": side, "part": part})

    assert [kind_of(change("atlan", p)) for p in ("cm", "link", "announcement", "tag", "typedef")] == [
        "custom_metadata", "links", "announcements", "atlan_tags", "definitions"]
    assert kind_of(change("qualytics", "tag")) == "external_tags"


# ---- ownership read by prefix (what a reconcile loads)

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.lists(st.sampled_from(["atlan:", "atlan:default/postgres/1700000000/sales/public/",
                                              "atlan:default/postgres/1700000000/sales/public#",
                                              "qualytics:wh/", "qualytics:wh#", "qualytics:", "x"]),
                             max_size=3))
def test_ownership_by_prefix_and_its_item_count_agree_with_the_whole(scenario, prefixes):
    from qatlan.planner import owned_item_count

    _, owned, _ = scenario
    with State.open(":memory:") as st_:
        for address, value in owned.items():
            st_.set_owned(address, value)
        assert st_.owned(prefixes) == {a: v for a, v in st_.owned().items()
                                       if any(a.startswith(p) for p in prefixes)}
        assert st_.owned_item_count() == owned_item_count(st_.owned())


def test_polls_and_reconciles_split_atlan_s_request_budget(tmp_path):
    from qatlan.config import parse_config
    from qatlan.watch import Reconciler

    def budgets(rpm: int) -> tuple[int, int]:
        cfg = parse_config({"atlan": {"url": "https://a.atlan.com", "requests_per_minute": rpm},
                            "qualytics": {"url": "https://q.qualytics.io"}}, env={})
        r = Reconciler(cfg, tmp_path / "q.db")
        return r.config.atlan.requests_per_minute, r.poll_config.atlan.requests_per_minute

    assert budgets(400) == (300, 100)
    assert budgets(5) == (4, 1)
    assert budgets(0) == (0, 0)  # no client-side limit stays none


def test_a_key_queued_only_by_qatlan_s_own_writes_is_told_apart():
    with State.open(":memory:") as st:
        st.record_echoes([("t1", 100, 200), ("t2", 100, 200)])
        st.enqueue(["a:x/T1"], now=1, debounce=0, source="atlan", updates={"a:x/T1": [("t1", 150)]})
        st.enqueue(["a:x/T1"], now=2, debounce=0, source="atlan", updates={"a:x/T1": [("t1", 200)]})
        # a person's write after qatlan's read-back
        st.enqueue(["a:x/T2"], now=1, debounce=0, source="atlan", updates={"a:x/T2": [("t2", 150)]})
        st.enqueue(["a:x/T2"], now=2, debounce=0, source="atlan", updates={"a:x/T2": [("t2", 201)]})
        # an Atlan event, then a poll (which reports no update): reconciled
        st.enqueue(["a:x/T3"], now=1, debounce=0, source="atlan", updates={"a:x/T3": [("t1", 150)]})
        st.enqueue(["a:x/T3"], now=2, debounce=0, source="poll")
        st.enqueue(["q:c:1"], now=1, debounce=0, source="qualytics")
        due = st.due_keys(10, 10)
        assert [d["key"] for d in st.own_writes(due)] == ["a:x/T1"]


def test_a_key_with_more_events_than_are_kept_is_reconciled():
    from qatlan.state.watchq import MAX_UPDATES
    with State.open(":memory:") as st:
        st.record_echoes([("t1", 0, 10_000)])
        for i in range(MAX_UPDATES + 1):
            st.enqueue(["a:x/T1"], now=i, debounce=0, source="atlan", updates={"a:x/T1": [("t1", i + 1)]})
        assert st.own_writes(st.due_keys(10_000, 10)) == []
