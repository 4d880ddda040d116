"""Rendering a plan (human, JSON, Markdown) and the match report, from hand-made inputs."""

from __future__ import annotations

import json
import time

import pytest

from qatlan import render
from qatlan.render.human import iter_human
from qatlan.match import DatastoreMatch, MatchResult
from qatlan.model import Skip
from qatlan.model import QContainer, QDatastore, QField, Snapshot
from qatlan.plan import Action, Change, Conflict, Plan
from qatlan.plan import plan_checksum

QN = "default/snowflake/1/DB/PUBLIC/ORDERS"
CM_DEF = {"name": "Qualytics", "attributes": [{"name": "Quality Score", "type": "float"}]}


def make_plan(*changes: Change, **kwargs) -> Plan:
    return Plan(changes=tuple(sorted(changes, key=lambda c: (c.address, c.action.value))),
                created_at="2026-01-01T00:00:00Z",
                base={"lineage": "l", "serial": 1, "snapshot_id": 1}, **kwargs)


def typical_plan(**kwargs) -> Plan:
    return make_plan(
        Change(f"atlan:{QN}#tag:PII", Action.CREATE, None, {"name": "PII"}),
        Change(f"atlan:{QN}#cm:Qualytics", Action.UPDATE,
               {"Quality Score": 81.2, "Active Checks": None, "Coverage": 50.0},
               {"Quality Score": 82.0, "Active Checks": 4, "Coverage": None}),
        Change(f"atlan:{QN}#announcement", Action.DELETE,
               {"type": "warning", "title": "Qualytics: 2 active anomalies", "message": "m"}, None,
               "no active anomalies left"),
        Change(f"atlan:{QN}#link", Action.CREATE, None, {"name": "Qualytics", "url": "https://q/1"}),
        Change("qualytics:Sales/orders#tag:Gold", Action.CREATE, None,
               {"name": "Gold", "type": "external"}),
        Change("atlan:typedef#cm:Qualytics", Action.CREATE, None, CM_DEF),
        **kwargs,
    )


# --------------------------------------------------------------------------- human


def test_human_groups_changes_by_asset_with_terraform_symbols():
    text = render.human(typical_plan())
    assert f"  # atlan:{QN} will be updated" in text
    assert "    + tag:PII" in text
    assert "    ~ cm:Qualytics.Quality Score: 81.2 → 82.0" in text
    assert "    + cm:Qualytics.Active Checks: 4" in text
    assert "    - cm:Qualytics.Coverage: 50.0" in text
    assert '    - announcement: warning "Qualytics: 2 active anomalies"  # no active anomalies left' in text
    assert '    + link: Qualytics "https://q/1"' in text
    assert "  # qualytics:Sales/orders will be updated\n    + tag:Gold (external)" in text


def test_human_lists_at_most_max_assets_and_counts_the_rest_in_full():
    tables = [f"default/snowflake/1/DB/PUBLIC/T{i:03d}" for i in range(30)]
    plan = make_plan(*(Change(f"atlan:{qn}#tag:PII", Action.CREATE, None, {"name": "PII"}) for qn in tables),
                     *(Change(f"atlan:{qn}#link", Action.CREATE, None, {"name": "Qualytics", "url": f"https://q/{i}"})
                       for i, qn in enumerate(tables[:10])))
    full = render.human(plan)
    capped = render.human(plan, max_assets=12)
    assert all(f"atlan:{qn} will be updated" in full for qn in tables)
    listed = [qn for qn in tables if f"atlan:{qn} will be updated" in capped]
    assert len(listed) == 12
    assert "... and 18 changes on 18 more assets not listed here" in capped
    # the summary still counts every change
    assert capped.split("not listed here")[1].count("40 to add") == full.count("40 to add") == 1


def test_human_lists_definitions_before_asset_changes():
    text = render.human(typical_plan())
    assert text.index("# atlan:typedef#cm:Qualytics will be created") < text.index(f"# atlan:{QN}")
    assert '+ custom metadata set "Qualytics" with 1 attributes' in text
    assert '+   attribute "Quality Score" (float)' in text


def test_human_ends_with_the_plan_line_and_skip_and_conflict_counts():
    plan = typical_plan(conflicts=(Conflict(f"atlan:{QN}#link", "link_not_owned", "not ours"),),
                        skipped=(Skip("container", 1, "a", "unmatched"), Skip("field", 2, "b", "ambiguous"),
                                 Skip("change", "atlan:typedef#tag:X", "tag:X", "definition_missing", "2 wait")))
    lines = render.human(plan).splitlines()
    assert lines[-2] == "Plan: 4 to add, 1 to change, 1 to destroy."
    assert lines[-1] == "2 assets skipped, 1 conflict."
    text = "\n".join(lines)
    assert "containers: 1 unmatched" in text and "fields: 1 ambiguous" in text
    assert f"! atlan:{QN}#link: not ours" in text
    assert "atlan:typedef#tag:X (2 wait)" in text


def test_an_empty_plan_says_both_sides_are_in_sync():
    text = render.human(make_plan(unchanged=5))
    assert "No changes. Both sides are in sync." in text
    assert "Plan:" not in text
    assert text.splitlines()[-1] == "0 assets skipped, 0 conflicts."


def test_colour_only_when_asked():
    plain = render.human(typical_plan())
    assert "\033[" not in plain
    coloured = render.human(typical_plan(), color=True)
    assert "\033[32m+\033[0m tag:PII" in coloured and "\033[31m-\033[0m" in coloured


def test_an_incomplete_snapshot_adds_a_note_that_nothing_is_removed():
    text = render.human(typical_plan(complete=False))
    assert "did not read completely, so this plan removes nothing" in text


def test_values_are_quoted_strings_bare_numbers_and_dates_as_iso():
    plan = make_plan(Change(f"atlan:{QN}#cm:Qualytics", Action.CREATE, None,
                            {"Qualytics URL": 'https://q/"x"', "Last Scanned": 1714564800000,
                             "Active Anomalies": 3}))
    text = render.human(plan)
    assert '+ cm:Qualytics.Qualytics URL: "https://q/\\"x\\""' in text
    assert "+ cm:Qualytics.Last Scanned: 2024-05-01T12:00:00Z" in text
    assert "+ cm:Qualytics.Active Anomalies: 3" in text


def test_a_tag_converted_to_external_shows_what_changes():
    plan = make_plan(Change("qualytics:Sales/orders#tag:PII", Action.UPDATE,
                            {"name": "PII", "type": "global"}, {"name": "PII", "type": "external"},
                            "overwrite_tags: the Atlan tag 'PII' wins"))
    assert ('~ tag:PII: type: "global" → "external"  # overwrite_tags: the Atlan tag \'PII\' wins'
            in render.human(plan))


def big_plan(n: int) -> Plan:
    changes = []
    for i in range(n):
        qn = f"default/snowflake/1/DB/S/T{i // 4:06d}"
        kind = i % 4
        if kind == 0:
            changes.append(Change(f"atlan:{qn}#cm:Qualytics", Action.CREATE, None,
                                  {"Quality Score": 80.5, "Active Checks": 3, "Qualytics URL": "https://q/x"}))
        elif kind == 1:
            changes.append(Change(f"atlan:{qn}#link", Action.CREATE, None, {"name": "Qualytics", "url": "https://q"}))
        elif kind == 2:
            changes.append(Change(f"atlan:{qn}#tag:PII", Action.DELETE, {"name": "PII"}, None, "gone"))
        else:
            changes.append(Change(f"qualytics:DS/T{i // 4:06d}#tag:PII", Action.CREATE, None,
                                  {"name": "PII", "type": "external"}))
    return make_plan(*changes)


@pytest.mark.slow
def test_a_200000_change_plan_renders_in_a_few_seconds_with_every_change():
    plan = big_plan(200_000)
    start = time.perf_counter()
    text = render.human(plan)
    elapsed = time.perf_counter() - start
    assert "Plan: 150,000 to add, 0 to change, 50,000 to destroy." in text
    assert text.count("will be updated") == 100_000
    assert elapsed < 15, elapsed


FULL_TEXT = "\n".join([
    "qatlan will perform the following actions:",
    "",
    "  # atlan:typedef#cm:Qualytics will be created",
    '    + custom metadata set "Qualytics" with 1 attributes',
    '    +   attribute "Quality Score" (float)',
    "",
    f"  # atlan:{QN} will be updated",
    '    - announcement: warning "Qualytics: 2 active anomalies"  # no active anomalies left',
    '        message: "m"',
    "    ~ cm:Qualytics.Quality Score: 81.2 → 82.0",
    "    - cm:Qualytics.Coverage: 50.0",
    "    + cm:Qualytics.Active Checks: 4",
    '    + link: Qualytics "https://q/1"',
    "    + tag:PII",
    "",
    "  # qualytics:Sales/orders will be updated",
    "    + tag:Gold (external)",
    "",
    "Conflicts, left as they are (1 link_not_owned):",
    f"  ! atlan:{QN}#link: someone else's Link",
    "",
    "Skipped (1 asset; `qatlan match` lists them with hints):",
    "  containers: 1 ambiguous",
    "",
    "Note: the snapshot did not read completely, so this plan removes nothing (removals are "
    "held back until a complete refresh).",
    "",
    "changes by kind              add    change    destroy",
    "-------------------------  -----  --------  ---------",
    "Atlan definitions              1         0          0",
    "Atlan custom metadata          0         1          0",
    "Atlan tags                     1         0          0",
    "Atlan links                    1         0          0",
    "Atlan announcements            0         0          1",
    "Qualytics tags (external)      1         0          0",
    "",
    "3 items already in sync.",
    "Plan: 4 to add, 1 to change, 1 to destroy.",
    "1 asset skipped, 1 conflict.",
])


def full_plan() -> Plan:
    return typical_plan(
        unchanged=3, complete=False,
        conflicts=(Conflict(f"atlan:{QN}#link", "link_not_owned", "someone else's Link"),),
        skipped=(Skip("container", 4, "customers", "ambiguous", "candidates: A, a"),),
    )


def test_human_text_of_a_plan_with_every_section_is_exactly_as_documented():
    assert render.human(full_plan()) == FULL_TEXT


@pytest.mark.parametrize("batch", [1, 2, 7, 4096])
@pytest.mark.parametrize("color", [False, True])
def test_human_pieces_join_to_the_human_text_and_split_only_at_line_ends(batch, color):
    plan = full_plan()
    pieces = list(iter_human(plan, color=color, batch=batch))
    assert "".join(pieces) == render.human(plan, color=color)
    assert all(piece.startswith("\n") for piece in pieces[1:])
    if not color:
        assert "".join(pieces) == FULL_TEXT


def test_human_pieces_of_a_large_plan_come_in_several_pieces_of_whole_lines():
    plan = big_plan(20_000)
    pieces = list(render.human_pieces(plan))
    assert len(pieces) > 5 and all(piece.startswith("\n") for piece in pieces[1:])
    assert "".join(pieces) == render.human(plan)


# --------------------------------------------------------------------------- json


def test_json_is_the_plan_dict_plus_version_and_checksum():
    plan = typical_plan()
    data = render.json(plan)
    assert list(data)[:3] == ["format_version", "qatlan_version", "checksum"]
    assert data["format_version"] == 1
    assert data["checksum"] == plan_checksum(plan)
    rest = {k: v for k, v in data.items() if k not in ("qatlan_version", "checksum")}
    assert rest == plan.to_dict()
    assert Plan.from_dict(data) == plan


@pytest.mark.parametrize("n", [0, 3, 1_000])
def test_json_pieces_join_to_one_json_dumps_of_the_json_dict(n):
    plan = big_plan(n) if n else full_plan()
    expected = json.dumps(render.json(plan), ensure_ascii=False)
    assert "".join(render.json_pieces(plan)) == expected
    given = "".join(render.json_pieces(plan, checksum=plan_checksum(plan)))
    assert given == expected


# --------------------------------------------------------------------------- markdown


def test_markdown_starts_with_a_summary_table_and_folds_changes_by_asset():
    text = render.markdown(typical_plan())
    assert text.startswith("### qatlan plan")
    assert "**Plan: 4 to add, 1 to change, 1 to destroy.**" in text
    assert "| Atlan custom metadata | 0 | 1 | 0 |" in text
    assert text.index("| changes by kind") < text.index("<details>")
    assert "```diff\n# atlan:typedef#cm:Qualytics will be created" in text
    assert "!   cm:Qualytics.Quality Score: 81.2 → 82.0" in text
    assert "not shown" not in text


def test_markdown_never_exceeds_the_limit_and_says_what_was_cut():
    plan = big_plan(20_000)
    text = render.markdown(plan)
    assert len(text) <= 65536
    assert "more changes not shown; see the CI logs or `qatlan show plan.json`" in text
    shown = sum(text.count(line) for line in (
        "\n+   cm:Qualytics.Quality Score", "\n+   link:", "\n-   tag:PII", "\n+   tag:PII (external)"))
    hidden = int(text.split("… ")[1].split(" more changes")[0].replace(",", ""))
    assert 0 < shown < 20_000 and shown + hidden == 20_000


@pytest.mark.parametrize("limit", [150, 400, 700, 1000, 1100])
def test_markdown_under_a_tiny_limit_still_fits_and_says_it_was_cut(limit):
    plan = typical_plan(conflicts=(Conflict("atlan:x#link", "link_not_owned", "m"),))
    assert len(render.markdown(plan)) > limit
    text = render.markdown(plan, limit=limit)
    assert len(text) <= limit
    assert "not shown" in text


def test_markdown_fences_survive_backticks_in_values():
    plan = make_plan(Change(f"atlan:{QN}#announcement", Action.CREATE, None,
                            {"type": "warning", "title": "```oops```", "message": "m"}))
    text = render.markdown(plan)
    assert "````diff" in text and text.count("````") == 2


def test_markdown_of_an_empty_plan_says_no_changes():
    assert "**No changes. Both sides are in sync.**" in render.markdown(make_plan())


# --------------------------------------------------------------------------- match report


def sample_match(n_unmatched: int = 3) -> tuple[MatchResult, Snapshot]:
    datastores = {1: QDatastore(1, "Sales", "jdbc", "snowflake"), 2: QDatastore(2, "Files", "dfs", "s3")}
    containers = {i: QContainer(i, 1, f"t{i}", "table") for i in range(1, 6 + n_unmatched)}
    containers[100] = QContainer(100, 2, "landing", "file")
    fields = {1: QField(1, 1, "id"), 2: QField(2, 1, "amount")}
    snapshot = Snapshot(id=3, taken_at="2026-01-01T00:00:00Z", datastores=datastores,
                        containers=containers, fields=fields)
    skipped = [Skip("datastore", 2, "Files", "file_datastore", "file datastores are not synced"),
               Skip("container", 100, "landing", "file_datastore", "datastore 2 is skipped", True),
               Skip("container", 5, "t5", "ambiguous", "candidates: Table T5, Table t5"),
               Skip("field", 2, "amount", "unmatched", "nearest: AMOUNT_USD")]
    skipped += [Skip("container", i, f"t{i}", "unmatched", f"nearest: T{i}_V2") for i in range(6, 6 + n_unmatched)]
    result = MatchResult(
        datastores={1: DatastoreMatch("default/snowflake/1", "DB", "PUBLIC", "g-schema")},
        containers={i: f"g{i}" for i in range(1, 5)}, fields={1: "g-col"},
        skipped=tuple(skipped),
        totals={"datastore": 2, "container": len(containers), "field": 2})
    return result, snapshot


def test_match_report_accounts_for_every_asset_per_level():
    result, snapshot = sample_match()
    text = render.match_report(result, snapshot)
    row = next(line for line in text.splitlines() if line.startswith("containers"))
    numbers = [int(n) for n in row.split()[1:]]
    total, matched, reasons = numbers[0], numbers[1], numbers[2:]
    assert total == 9 and matched + sum(reasons) == total


def test_match_report_names_skipped_assets_with_their_hints():
    result, snapshot = sample_match()
    text = render.match_report(result, snapshot)
    assert "Sales/t6 — nearest: T6_V2" in text
    assert "Sales/t1/amount — nearest: AMOUNT_USD" in text
    assert "Sales/t5 — candidates: Table T5, Table t5" in text
    assert "+ 1 containers of skipped datastores (file_datastore 1)" in text


def test_match_report_caps_long_lists():
    result, snapshot = sample_match(n_unmatched=45)
    text = render.match_report(result, snapshot)
    assert "… 25 more" in text


def test_match_json_has_counts_and_every_skip():
    result, _ = sample_match()
    data = render.match_json(result)
    assert data["format_version"] == 1
    assert data["summary"]["container"]["total"] == 9
    assert len(data["skipped"]) == len(result.skipped)
    assert data["datastores"]["1"]["schema"] == "PUBLIC"
