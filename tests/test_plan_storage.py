"""Storing big plans without holding them (issue 13).

A plan made again from the same inputs is stored without being decoded; a plan whose changes
were spilled to a file while planned (`ChangeSpill`) is stored from the spill. The oracle is
the plan held whole in memory: the same canonical JSON (so the same checksum), the same rows,
the same plan file, the same text on the terminal, whatever the plan holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import scenarios, two_datastores

from qatlan import render
from qatlan.errors import PlanFileError
from qatlan.pipeline import PlanOptions, make_plan, make_stored_plan, open_saved_plan
from qatlan.plan import (PlanFileWriter, each_change, open_plan_file, plan_checksum, read_saved_plan,
                         write_plan_file)
from qatlan.planner import plan as pure_plan
from qatlan.state import State
from qatlan.state.plans import _replace
from qatlan.state.spill import ChangeSpill
from test_planner_partition import _partitioned

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BASE = {"lineage": "3f0c", "serial": 4, "snapshot_id": 9, "oldest_field_read": "2026-01-01T00:00:00.000Z"}
LATER = {"lineage": "3f0c", "serial": 4, "snapshot_id": 1234567, "missing": ["atlan:é\"x"]}


def _texts(p) -> dict[str, object]:
    """Everything a user sees of a plan."""
    return {
        "human": [render.render_human(p, max_assets=n) for n in (0, 1, 2, 1000)],
        "markdown": render.render_markdown(p),
        # a decoded plan's dicts have sorted keys, as in every saved plan: compare values
        "json": json.loads("".join(render.json_pieces(p, checksum="c"))),
        "summary": p.summary(), "empty": p.is_empty(), "in_sync": p.in_sync(),
        "tally": p.tally(),
    }


@PROPERTY
@given(scenarios(), st.sampled_from([BASE, LATER]))
def test_a_repeat_is_the_plan_decoded_whole_with_a_new_base_and_time(scenario, later):
    snapshot, owned, plan_settings = scenario
    first = pure_plan(snapshot, plan_settings, owned=owned, base=BASE, created_at="2026-01-01T00:00:00.000Z")
    expected = dataclasses.replace(first, base=later, created_at="2026-02-02T10:00:00.123Z")
    with tempfile.TemporaryDirectory() as tmp, State.open(Path(tmp) / "s.db") as state:
        state.save_plan(first, inputs="same")
        twin = state.plan_by_inputs("same")
        out = Path(tmp) / "p.json"
        with PlanFileWriter(out) as writer:
            checksum, lazy = state.save_repeat(twin, later, expected.created_at, tee=writer.write)
            writer.commit(checksum)
        assert checksum == plan_checksum(expected)
        assert state.load_plan(checksum) == expected
        assert read_saved_plan(out).plan == expected
        assert _texts(lazy) == _texts(expected)
        # walking the changes decodes them, targets and all
        assert dataclasses.replace(lazy, changes=tuple(lazy.changes)) == expected
        assert [c.target for c in lazy.changes] == [c.target for c in expected.changes]
        # loaded with its changes left in the state (how apply takes a stored plan), the
        # twin and the repeat stream the changes of the plan decoded whole
        for wanted, plan in ((checksum, expected), (plan_checksum(first), first)):
            loaded = state.load_plan(wanted, lazy=True)
            assert len(loaded.changes) == len(plan.changes)
            streamed = list(each_change(loaded.changes))
            assert dataclasses.replace(loaded, changes=tuple(streamed)) == plan
            assert [c.target for c in streamed] == [c.target for c in plan.changes]
        # the plan file of the repeat is taken from the state, not parsed
        saved = open_saved_plan(out, state)
        assert saved.checksum == checksum and saved.signature is None
        assert dataclasses.replace(saved.plan, changes=tuple(each_change(saved.plan.changes))) == expected


def test_replacing_spans_in_a_text_cut_anywhere():
    text = b'{"base":{"a":1},"changes":[1,2,3],"created_at":"x"}'
    edits = [(8, 15, b'{"b":22}'), (47, 50, b'"yz"')]
    want = b'{"base":{"b":22},"changes":[1,2,3],"created_at":"yz"}'
    for size in range(1, len(text) + 1):
        chunks = [text[i:i + size] for i in range(0, len(text), size)]
        assert b"".join(_replace(chunks, edits)) == want, size
    assert b"".join(_replace([text], [(len(text), len(text), b"!")])) == text + b"!"


def test_plan_again_with_nothing_changed_stores_no_second_body(config, state, transports, tmp_path):
    first = make_plan(config, state, now=lambda: 1767225600.0, **transports)
    again, checksum = make_stored_plan(config, state, PlanOptions(refresh=False), lazy=True,
                                       now=lambda: 1767225660.0, out=tmp_path / "again.json")
    assert again.changes and not isinstance(again.changes, tuple)  # left in the state
    assert again.created_at == "2026-01-01T00:01:00.000Z"
    eager = dataclasses.replace(first, created_at=again.created_at)
    assert checksum == plan_checksum(eager)
    assert read_saved_plan(tmp_path / "again.json").checksum == checksum
    assert render.render_human(again) == render.render_human(eager)
    with contextlib.closing(sqlite3.connect(state.path)) as db:
        rows = db.execute("SELECT length(body), changes_from FROM plans ORDER BY id").fetchall()
    assert rows[0][0] > 0 and rows[1] == (0, 1)
    # a library caller gets the changes decoded
    third = make_plan(config, state, PlanOptions(refresh=False), now=lambda: 1767225600.0)
    assert isinstance(third.changes, tuple) and third == first


def _rows(state: State, checksum: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(state.path)) as db:
        return db.execute(
            "SELECT address, asset, part, action, before, after, reason, source FROM plan_changes "
            "WHERE plan_id = (SELECT id FROM plans WHERE checksum = ?) ORDER BY id", [checksum]).fetchall()


@PROPERTY
@given(two_datastores())
def test_a_spilled_plan_is_stored_as_the_plan_held_in_memory(scenario):
    world, owned, plan_settings = scenario
    held = _partitioned(world, owned, plan_settings)
    spill = ChangeSpill()
    try:
        spilled = _partitioned(world, owned, plan_settings, sink=spill)
        assert not isinstance(spilled.changes, tuple)
        assert len(spilled.changes) == len(held.changes) and spilled.tally() == held.tally()
        assert spilled.summary() == held.summary() and spilled.is_empty() == held.is_empty()
        assert list(spilled.changes) == list(held.changes)
        assert [c.target for c in spilled.changes] == [json.loads(json.dumps(c.target)) for c in held.changes]
        assert plan_checksum(spilled) == plan_checksum(held)
        with tempfile.TemporaryDirectory() as tmp, State.open(Path(tmp) / "s.db") as state:
            one, two = state.save_plan(held), state.save_plan(spilled)
            assert one == two and _rows(state, one) == _rows(state, two)
            lazy = state.stored_changes(spilled, two)
            assert _texts(lazy) == _texts(held)
    finally:
        spill.close()


def test_a_spilled_plan_settles_a_tag_spelled_two_ways_on_one_definition():
    """The spelling of a new tag definition is known only once every part is planned: the
    changes that need the spelling given up are rewritten on their way out of the spill."""
    from strategies import a_connection, a_schema, a_table, q_container, q_datastore
    from qatlan.model import QTag, Snapshot
    from qatlan.planner import PlanSettings

    records = [a_connection(), a_schema(), a_table("a", "ta"), a_table("b", "tb"), q_datastore(),
               q_container(10, "a", tags=(QTag("pii"),)), q_container(11, "b", tags=(QTag("PII"),))]
    world = Snapshot.from_records(records)
    for create in (True, False):
        s = PlanSettings(create_definitions=create)
        held = _partitioned(world, {}, s)
        spill = ChangeSpill()
        spilled = _partitioned(world, {}, s, sink=spill)
        needs = {n for c in spilled.changes for n in c.target.get("needs", ())}
        assert needs == ({"atlan:typedef#tag:PII"} if create else set())
        assert plan_checksum(spilled) == plan_checksum(held)
        spill.close()


def test_a_stored_plan_streams_its_changes_whatever_the_chunks(config, state, transports, monkeypatch):
    """`qatlan plan --json` re-encodes a stored plan's changes one at a time, cut from its
    body as it is inflated: a change split across chunks comes out whole."""
    from qatlan.state import plans

    first = make_plan(config, state, PlanOptions(create_definitions=True), now=lambda: 1767225600.0,
                      **transports)
    lazy = state.stored_changes(first, plan_checksum(first))
    for size in (1, 7, 64, 1 << 20):
        monkeypatch.setattr(plans, "_CHUNK", size)
        assert [json.loads(t) for t in lazy.changes.json_pieces()] == [
            json.loads(json.dumps(c.to_dict())) for c in first.changes]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios(), st.data())
def test_a_plan_file_changed_anywhere_is_refused_or_read_as_the_stored_plan(scenario, data):
    """`qatlan apply FILE` takes a plan the state stored from the state, the file only
    hashed: a byte changed anywhere in the file either leaves the same plan (the version
    text in its head) or is refused, never applied as something else."""
    snapshot, owned, plan_settings = scenario
    first = pure_plan(snapshot, plan_settings, owned=owned, base=BASE, created_at="2026-01-01T00:00:00.000Z")
    with tempfile.TemporaryDirectory() as tmp, State.open(Path(tmp) / "s.db") as state:
        out = Path(tmp) / "p.json"
        with PlanFileWriter(out) as writer:
            checksum = state.save_plan(first, tee=writer.write)
            writer.commit(checksum)
        at, version = _change_one_byte(out, data)
        try:
            saved = open_saved_plan(out, state)
        except PlanFileError:
            saved = None
        if saved is not None:  # only the version text may change, and the plan is the same
            assert at in version
            assert saved.checksum == checksum
            assert dataclasses.replace(saved.plan, changes=tuple(each_change(saved.plan.changes))) == first


@PROPERTY
@given(scenarios(), st.sampled_from([1, 5, 64, 1 << 20]))
def test_a_plan_file_read_a_change_at_a_time_shows_as_the_file_read_whole(scenario, chunk):
    """`qatlan show FILE` reads a file as `qatlan plan --out` writes it a change at a time
    (its changes stay in the file): whatever the plan and however the reads are cut, every
    text of it is the text of the plan read whole."""
    from qatlan.plan import file as plan_file

    snapshot, owned, plan_settings = scenario
    plan = pure_plan(snapshot, plan_settings, owned=owned, base=BASE, created_at="2026-01-01T00:00:00.000Z")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        out = Path(tmp) / "p.json"
        write_plan_file(plan, out)
        stack.enter_context(_patched(plan_file, "_READ", chunk))
        saved = open_plan_file(out)
        whole = read_saved_plan(out)
        assert saved.checksum == whole.checksum and len(saved.plan.changes) == len(plan.changes)
        assert _texts(saved.plan) == _texts(whole.plan)
        assert list(each_change(saved.plan.changes)) == list(plan.changes)
        assert dataclasses.replace(saved.plan, changes=tuple(saved.plan.changes)) == plan


@contextlib.contextmanager
def _patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios(), st.data())
def test_a_plan_file_changed_anywhere_is_refused_or_shown_as_it_was(scenario, data):
    snapshot, owned, plan_settings = scenario
    plan = pure_plan(snapshot, plan_settings, owned=owned, base=BASE, created_at="2026-01-01T00:00:00.000Z")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.json"
        write_plan_file(plan, out)
        at, version = _change_one_byte(out, data)
        try:
            saved = open_plan_file(out)
        except PlanFileError:
            saved = None
        if saved is not None:  # only the version text may change, and the plan is the same
            assert at in version
            assert dataclasses.replace(saved.plan, changes=tuple(each_change(saved.plan.changes))) == plan


def _change_one_byte(path: Path, data) -> tuple[int, range]:
    """Change one byte of the file anywhere; returns where, and where its version text is."""
    raw = bytearray(path.read_bytes())
    start = raw.index(b'"qatlan_version":"') + len(b'"qatlan_version":"')
    version = range(start, raw.index(b'"', start))
    at = data.draw(st.integers(0, len(raw) - 1), label="at")
    raw[at] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="byte")
    path.write_bytes(bytes(raw))
    return at, version
