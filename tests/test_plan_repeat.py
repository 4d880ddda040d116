"""A plan made again from the same inputs is stored without being decoded (issue 13).

The oracle is the plan decoded whole: the repeat must have the same canonical JSON (so the
same checksum), load back equal, write the same plan file, and render the same text,
whatever the plan holds.
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
from strategies import scenarios

from qatlan import render
from qatlan.pipeline import PlanOptions, make_plan, make_stored_plan
from qatlan.plan import PlanFileWriter, plan_checksum, read_saved_plan
from qatlan.planner import plan as pure_plan
from qatlan.state import State
from qatlan.state.plans import _replace

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
