"""Saved plan files: atomic write, exact round trip, and one distinct refusal per problem."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qatlan import __version__
from qatlan.errors import PlanFileError
from qatlan.model import Skip
from qatlan.plan import Action, Change, Conflict, LazyList, Plan, iter_json
from qatlan.plan import PLAN_FILE_VERSION, read_plan_file, sign, write_plan_file
from qatlan.plan import plan_checksum

QN = "default/snowflake/1/DB/PUBLIC/ORDERS"


def sample_plan() -> Plan:
    changes = (
        Change(f"atlan:{QN}#cm:Qualytics", Action.UPDATE, {"Quality Score": 81.2},
               {"Quality Score": 82.0}, None, {"guid": "g1", "attributes": {"Quality Score": "h1"}}),
        Change(f"atlan:{QN}#tag:PII", Action.CREATE, None, {"name": "PII"}, None,
               {"guid": "g1", "needs": []}),
        Change("qualytics:Sales/orders#tag:Gold", Action.CREATE, None,
               {"name": "Gold", "type": "external"}, None, {"id": 7}),
        Change(f"atlan:{QN}#announcement", Action.DELETE,
               {"type": "warning", "title": "Qualytics: 1 active anomaly", "message": "ünïcode ✓"},
               None, "no active anomalies left", {"guid": "g1"}),
    )
    return Plan(
        changes=tuple(sorted(changes, key=lambda c: (c.address, c.action.value))),
        unchanged=12,
        conflicts=(Conflict(f"atlan:{QN}#link", "link_not_owned", "someone else's Link"),),
        skipped=(Skip("container", 4, "customers", "ambiguous", "candidates: A, a"),),
        settings={"pull": True, "targets": []},
        base={"lineage": "3f0c", "serial": 4, "snapshot_id": 9},
        created_at="2026-01-01T00:00:00Z",
    )


def test_a_written_plan_reads_back_equal_with_the_same_checksum(tmp_path):
    plan = sample_plan()
    path = write_plan_file(plan, tmp_path / "plan.json")
    back = read_plan_file(path)
    assert back == plan
    assert [c.target for c in back.changes] == [c.target for c in plan.changes]
    # the file holds the plan canonical (sorted keys); renderers order values themselves
    assert [c.after or c.before for c in back.changes] == [c.after or c.before for c in plan.changes]
    assert plan_checksum(back) == plan_checksum(plan)


def test_the_file_is_the_documented_wrapper(tmp_path):
    path = write_plan_file(sample_plan(), tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    assert set(doc) == {"format_version", "qatlan_version", "checksum", "plan"}
    assert doc["format_version"] == PLAN_FILE_VERSION
    assert doc["checksum"] == plan_checksum(sample_plan())
    assert doc["plan"]["base"] == {"lineage": "3f0c", "serial": 4, "snapshot_id": 9}


def test_writing_replaces_the_file_atomically_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "out" / "plan.json"
    path.parent.mkdir()  # the folder must exist: a plan file never creates folders
    write_plan_file(sample_plan(), path)
    write_plan_file(Plan(changes=(), created_at="x"), path)
    assert read_plan_file(path).changes == ()
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]


def test_a_missing_file_is_refused_saying_so(tmp_path):
    with pytest.raises(PlanFileError, match="not found") as err:
        read_plan_file(tmp_path / "nope.json")
    assert "qatlan plan --out" in err.value.hint


def test_a_file_that_is_not_json_is_refused_saying_so(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("PK\x03\x04 a terraform zip?")
    with pytest.raises(PlanFileError, match="not JSON"):
        read_plan_file(path)


def test_json_that_is_not_a_plan_file_is_refused(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"hello": "world"}')
    with pytest.raises(PlanFileError, match="not a qatlan plan file"):
        read_plan_file(path)


def test_an_unknown_format_version_is_refused_stating_the_rule(tmp_path):
    path = write_plan_file(sample_plan(), tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    doc["format_version"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError) as err:
        read_plan_file(path)
    message = str(err.value)
    assert "format_version 2 is not supported" in message
    assert "reads format_version 1 only" in message


@pytest.mark.parametrize("edit", [
    lambda p: next(c for c in p["changes"] if "#cm:" in c["address"])["after"].update(
        {"Quality Score": 99.0}),
    lambda p: p["base"].update({"serial": 5}),
    lambda p: p["changes"][0]["target"].update({"guid": "someone-else"}),
    lambda p: p["changes"].pop(),
])
def test_an_edited_plan_is_refused_as_edited(tmp_path, edit):
    path = write_plan_file(sample_plan(), tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    edit(doc["plan"])
    path.write_text(json.dumps(doc, indent=2))
    with pytest.raises(PlanFileError, match="the plan file was edited after it was saved; make a new plan"):
        read_plan_file(path)


def test_reformatting_the_json_is_not_an_edit(tmp_path):
    path = write_plan_file(sample_plan(), tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc, indent=4))
    assert read_plan_file(path) == sample_plan()


def test_each_problem_has_its_own_message(tmp_path):
    messages = set()
    good = write_plan_file(sample_plan(), tmp_path / "good.json")
    doc = json.loads(good.read_text())
    cases = {
        "missing": None,
        "not_json": "{",
        "not_plan": "[]",
        "version": json.dumps({**doc, "format_version": 9}),
        "edited": json.dumps({**doc, "checksum": "0" * 64}),
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.json"
        if text is not None:
            path.write_text(text)
        with pytest.raises(PlanFileError) as err:
            read_plan_file(path)
        messages.add(str(err.value).replace(str(path), "FILE"))
    assert len(messages) == len(cases)


def test_writing_into_an_unwritable_place_is_a_plan_file_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PlanFileError, match="cannot write the plan"):
        write_plan_file(sample_plan(), Path(blocker) / "plan.json")


# --------------------------------------------------------------------------- streamed writing


def one_shot_text(plan: Plan, signature: str | None = None) -> str:
    """The plan file as one `json.dumps` of the whole document writes it (the definition):
    the wrapper's keys in order, the plan object canonical (sorted keys), then its checksum."""
    canonical = json.dumps(plan.to_dict(), sort_keys=True, separators=(",", ":"))
    doc = {"format_version": PLAN_FILE_VERSION, "qatlan_version": __version__,
           "plan": json.loads(canonical), "checksum": hashlib.sha256(canonical.encode()).hexdigest()}
    if signature is not None:
        doc["signature"] = signature
    return json.dumps(doc, separators=(",", ":")) + "\n"


def many_changes_plan(n: int = 250) -> Plan:
    """More changes than one encoded piece holds, with values that JSON must escape."""
    changes = []
    for i in range(n):
        qn = f"{QN}_{i:04d}"
        changes.append(Change(
            f"atlan:{qn}#cm:Qualytics", Action.CREATE, None,
            {"Quality Score": i / 7, "Qualytics URL": f"https://q/ü/{i}",
             "Last Scanned": 10**12 + i},
            "ré\u2028son\t\"quoted\"" if i % 3 == 0 else None,
            MappingProxyType({"guid": f"g{i}", "attributes": {"Quality Score": None},
                              "needs": [i]}),
        ))
    base = sample_plan()
    return Plan(changes=tuple(changes) + base.changes, unchanged=3, conflicts=base.conflicts * 120,
                skipped=base.skipped, settings={"targets": ["*ü*"], "z": {}, "a": []},
                base=base.base, created_at="2026-01-01T00:00:00Z",
                definitions_needed=base.changes[:1])


@pytest.mark.parametrize("plan", [sample_plan(), many_changes_plan(), Plan(changes=())],
                         ids=["sample", "many", "empty"])
def test_the_file_is_byte_for_byte_one_json_dumps_of_the_document(tmp_path, plan):
    path = write_plan_file(plan, tmp_path / "plan.json")
    assert path.read_bytes() == one_shot_text(plan).encode()


def test_the_checksum_is_the_sha256_of_the_sorted_compact_json_of_the_plan_dict():
    plan = many_changes_plan()
    data = plan.to_dict()
    expected = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    assert plan_checksum(plan) == plan_checksum(data) == expected.hexdigest()


def test_a_signed_file_carries_the_signature_after_the_checksum(tmp_path):
    plan = many_changes_plan()
    path = write_plan_file(plan, tmp_path / "plan.json", key="s3cret")
    assert path.read_text() == one_shot_text(plan, sign(plan_checksum(plan), "s3cret"))


def test_a_plan_that_fails_half_way_through_writing_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = write_plan_file(sample_plan(), tmp_path / "plan.json")
    before = path.read_bytes()
    broken = Change(f"atlan:{QN}#link", Action.CREATE, None, {"url": object()})
    plan = Plan(changes=many_changes_plan().changes + (broken,), created_at="x")
    with pytest.raises(TypeError):
        write_plan_file(plan, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (st.lists(inner, max_size=6)
                   | st.dictionaries(st.text(max_size=4), inner, max_size=5)),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, chunk_size=st.integers(1, 4), sort_keys=st.booleans(),
       ensure_ascii=st.booleans(), separators=st.sampled_from([(",", ":"), (", ", ": ")]))
def test_streamed_json_joins_to_exactly_json_dumps(value, chunk_size, sort_keys, ensure_ascii,
                                                   separators):
    options = {"sort_keys": sort_keys, "ensure_ascii": ensure_ascii, "separators": separators}
    pieces = iter_json(value, chunk_size=chunk_size, **options)
    assert "".join(pieces) == json.dumps(value, **options)


def test_lazy_lists_encode_like_the_list_of_their_converted_items():
    items = tuple(range(7))
    value = {"b": LazyList(items, lambda i: {"n": i, "s": "é" * i}), "a": LazyList((), str)}
    expected = {"b": [{"n": i, "s": "é" * i} for i in items], "a": []}
    for size in (1, 3, 7, 100):
        text = "".join(iter_json(value, sort_keys=True, chunk_size=size))
        assert text == json.dumps(expected, sort_keys=True)
