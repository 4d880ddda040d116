"""`qatlan plan`, `qatlan show` and `qatlan match` as a user runs them: over real HTTP."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox, sandbox_config_doc
from qatlan import __version__, render
from qatlan.cli import app
from qatlan.cli import plan as plan_cmds
from qatlan.plan import read_plan_file

pytestmark = pytest.mark.http
runner = CliRunner()


APP = app


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))


def _toml(doc: dict) -> str:
    lines = []
    for section in ("atlan", "qualytics", "sync", "state"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {_value(v)}" for k, v in doc.get(section, {}).items()]
    for m in doc.get("mappings", []):
        lines.append("[[mappings]]")
        lines += [f"{k} = {_value(v)}" for k, v in m.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def live():
    sb = make_sandbox("tables=40,seed=4").start()
    yield sb
    sb.stop()


def write_config(tmp_path: Path, sb) -> Path:
    doc = sandbox_config_doc(sb.world, base_url_atlan=sb.atlan_url, base_url_qualytics=sb.qualytics_url)
    doc["state"] = {"path": str(tmp_path / "state" / "qatlan.db")}
    path = tmp_path / "qatlan.toml"
    path.write_text(_toml(doc))
    return path


@pytest.fixture
def cfg(tmp_path, live, monkeypatch) -> str:
    for name, value in TOKENS_ENV.items():
        monkeypatch.setenv(name, value)
    return str(write_config(tmp_path, live))


def invoke(*args: str):
    return runner.invoke(APP, list(args))


def no_traceback(result) -> bool:
    return "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)


# --------------------------------------------------------------------------- plan


def test_plan_on_a_fresh_world_exits_2_and_lists_every_kind_of_change(cfg):
    result = invoke("plan", "-c", cfg, "--detailed-exitcode", "--create-definitions")
    assert result.exit_code == 2, result.output
    out = result.stdout
    assert "# atlan:typedef#cm:Qualytics will be created" in out
    assert "+ cm:Qualytics.Quality Score: " in out
    assert "+ link: Qualytics " in out
    assert "+ announcement: warning " in out
    assert " (external)" in out and "  # qualytics:" in out
    assert any(line.strip().startswith("+ tag:") and "(external)" not in line for line in out.splitlines())
    assert "Plan: " in out and " to add, 0 to change, 0 to destroy." in out
    assert "Note: You didn't use the --out option to save this plan" in out


def test_plan_without_definitions_says_which_are_missing_and_that_changes_wait(cfg):
    result = invoke("plan", "-c", cfg, "--no-create-definitions", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "Atlan definitions missing" in result.stdout and "atlan:typedef#cm:Qualytics" in result.stdout
    assert "wait for Atlan definitions" in result.stdout
    assert "qatlan plan --create-definitions" in result.stdout


def test_changes_that_only_wait_for_definitions_are_drift_not_in_sync(cfg):
    result = invoke("plan", "-c", cfg, "--no-create-definitions", "--detailed-exitcode",
                    "--target", "*#cm:*", "--json")
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    assert data["changes"] == [] and data["summary"]["waiting"] == data["waiting"] > 0
    text = invoke("plan", "-c", cfg, "--no-create-definitions", "--no-refresh", "--target", "*#cm:*").stdout
    assert "Both sides are in sync" not in text
    assert f"Not in sync: {data['waiting']:,} changes wait for Atlan definitions" in text
    markdown = invoke("plan", "-c", cfg, "--no-create-definitions", "--no-refresh", "--target",
                      "*#cm:*", "--markdown").stdout
    assert "Not in sync" in markdown and "qatlan plan --create-definitions" in markdown


def test_the_first_plan_includes_the_definitions_by_default(cfg):
    result = invoke("plan", "-c", cfg, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "atlan:typedef#cm:Qualytics" in {c["address"] for c in data["changes"]}
    assert data["waiting"] == 0


def test_plan_with_nothing_to_do_exits_0_with_detailed_exitcode(cfg):
    result = invoke("plan", "-c", cfg, "--detailed-exitcode", "--target", "no-such-asset")
    assert result.exit_code == 0, result.output
    assert "No changes. Both sides are in sync." in result.stdout


def test_plan_json_is_valid_versioned_json_on_stdout_only(cfg):
    result = invoke("plan", "-c", cfg, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["format_version"] == 1 and len(data["checksum"]) == 64
    summary = data["summary"]
    assert summary["add"] + summary["change"] + summary["destroy"] + summary["adopt"] == len(data["changes"]) > 0
    assert "Note:" in result.stderr


def test_plan_markdown_fits_a_pull_request_comment_and_says_when_it_is_cut(cfg):
    result = invoke("plan", "-c", cfg, "--markdown", "--no-create-definitions")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### qatlan plan") and len(result.stdout) <= 65536
    assert "<details>" in result.stdout and "not shown" not in result.stdout
    big = invoke("plan", "-c", cfg, "--markdown", "--create-definitions", "--no-refresh").stdout
    assert len(big) <= 65536 and "more changes not shown; see the CI logs" in big


def test_out_then_show_gives_the_same_plan_as_json_and_as_text(cfg, tmp_path):
    saved = tmp_path / "plan.json"
    planned = invoke("plan", "-c", cfg, "--out", str(saved), "--json")
    assert planned.exit_code == 0, planned.output
    shown = invoke("show", str(saved), "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == json.loads(planned.stdout)
    human = invoke("plan", "-c", cfg, "--no-refresh", "--out", str(saved), "--create-definitions")
    assert f"Saved the plan to: {saved}" in human.stdout and f"qatlan apply {saved}" in human.stdout
    text = invoke("show", str(saved)).stdout
    assert human.stdout.startswith(text.rstrip("\n"))
    cut = render.markdown(read_plan_file(saved), limit=900)
    assert len(cut) <= 900 and "more changes not shown" in cut


def _canonical(plan) -> bytes:
    return json.dumps(plan.to_dict(), sort_keys=True, separators=(",", ":")).encode()


def test_plan_prints_saves_and_stores_exactly_what_one_json_dumps_gives(cfg, tmp_path):
    saved = tmp_path / "plan.json"
    planned = invoke("plan", "-c", cfg, "--out", str(saved), "--json", "--create-definitions")
    assert planned.exit_code == 0, planned.output
    plan = read_plan_file(saved)
    assert len(plan.changes) > 200  # more than one streamed piece
    checksum = hashlib.sha256(_canonical(plan)).hexdigest()
    # the file: the wrapper, the plan object canonical (encoded once with the state's copy),
    # then the checksum
    doc = {"format_version": 1, "qatlan_version": __version__, "plan": json.loads(_canonical(plan)),
           "checksum": checksum}
    assert saved.read_text() == json.dumps(doc, separators=(",", ":")) + "\n"
    # stdout: one line, the same document (its dicts in the plan's own key order)
    assert planned.stdout.count("\n") == 1
    assert json.loads(planned.stdout) == render.json(plan)
    with sqlite3.connect(tmp_path / "state" / "qatlan.db") as db:
        stored = db.execute("SELECT checksum, body FROM plans ORDER BY id DESC").fetchone()
    assert stored[0] == checksum and zlib.decompress(stored[1]) == _canonical(plan)


def test_plan_human_output_is_exactly_the_rendered_plan_then_the_saved_note(cfg, tmp_path):
    saved = tmp_path / "plan.json"
    human = invoke("plan", "-c", cfg, "--out", str(saved), "--create-definitions")
    assert human.exit_code == 0, human.output
    expected = render.human(read_plan_file(saved)) + "\n\n" + plan_cmds._saved_note(saved) + "\n"
    assert human.stdout == expected


def test_show_refuses_an_edited_plan_without_a_traceback(cfg, tmp_path):
    saved = tmp_path / "plan.json"
    assert invoke("plan", "-c", cfg, "--out", str(saved)).exit_code == 0
    doc = json.loads(saved.read_text())
    doc["plan"]["changes"][0]["after"] = {"name": "Evil", "url": "https://evil.example"}
    saved.write_text(json.dumps(doc))
    result = invoke("show", str(saved))
    assert result.exit_code == 1
    assert "the plan file was edited after it was saved; make a new plan" in result.stderr
    assert no_traceback(result)


@pytest.mark.parametrize("flag, side", [("--pull-only", "qualytics:"), ("--push-only", "atlan:")])
def test_pull_only_and_push_only_keep_one_direction(cfg, flag, side):
    data = json.loads(invoke("plan", "-c", cfg, "--json", flag).stdout)
    assert data["changes"] and all(c["address"].startswith(side) for c in data["changes"])


def test_target_and_exclude_filter_the_plan(cfg):
    data = json.loads(invoke("plan", "-c", cfg, "--json", "--target", "*#link").stdout)
    assert data["changes"] and all(c["address"].endswith("#link") for c in data["changes"])
    data = json.loads(invoke("plan", "-c", cfg, "--json", "--no-refresh", "--exclude", "*#link",
                             "--exclude", "qualytics:*").stdout)
    assert data["changes"] and not any(c["address"].endswith("#link") or c["address"].startswith("qualytics:")
                                       for c in data["changes"])


# --------------------------------------------------------------------------- match


def test_match_accounts_for_every_asset_and_gives_hints(cfg):
    result = invoke("match", "-c", cfg)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.strip().startswith("total"))
    reasons = header.split()[2:]
    for level in ("datastores", "containers", "fields"):
        row = next(line for line in result.stdout.splitlines() if line.startswith(level))
        numbers = [int(n.replace(",", "")) for n in row.split()[1:]]
        assert numbers[1] + sum(numbers[2:]) == numbers[0], (level, reasons, numbers)
    assert "nearest: " in result.stdout and "candidates: " in result.stdout


def test_match_json_from_the_latest_snapshot(cfg):
    assert invoke("match", "-c", cfg).exit_code == 0
    result = invoke("match", "-c", cfg, "--no-refresh", "--json")
    data = json.loads(result.stdout)
    assert data["summary"]["container"]["total"] > 0 and data["skipped"]


# --------------------------------------------------------------------------- errors


def test_no_refresh_before_any_refresh_says_to_refresh(cfg):
    result = invoke("plan", "-c", cfg, "--no-refresh")
    assert result.exit_code == 1
    assert "qatlan refresh" in result.stderr and no_traceback(result)


def test_no_refresh_with_an_empty_state_says_there_is_no_snapshot(cfg, tmp_path):
    from qatlan.state import State

    State.open(tmp_path / "state" / "qatlan.db").close()
    result = invoke("plan", "-c", cfg, "--no-refresh")
    assert result.exit_code == 1
    assert "no snapshot yet: run qatlan refresh" in result.stderr and no_traceback(result)


@pytest.mark.parametrize("args, message", [
    (["--target", "[ORDERS"], "--target '[ORDERS' has a '[' without its ']'"),
    (["--exclude", ""], "--exclude '' is empty"),
    (["--pull-only", "--push-only"], "--pull-only and --push-only exclude each other"),
    (["--json", "--markdown"], "--json and --markdown exclude each other"),
])
def test_bad_options_are_one_line_errors(cfg, args, message):
    result = invoke("plan", "-c", cfg, *args)
    assert result.exit_code == 1
    assert message in result.stderr and no_traceback(result)


def test_a_missing_config_is_an_error_that_says_how_to_make_one(tmp_path):
    result = invoke("plan", "-c", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert "not found" in result.stderr and "qatlan init" in result.stderr and no_traceback(result)


def test_show_of_a_missing_file_is_an_error(tmp_path):
    result = invoke("show", str(tmp_path / "plan.json"))
    assert result.exit_code == 1 and "not found" in result.stderr and no_traceback(result)


@pytest.mark.parametrize("args", [
    ["plan", "--bogus"],
    ["plan", "-out=p.json"],
    ["plan", "--detailed-exitcode", "--lock-timeout", "30s"],
    ["--no-such-flag"],
    ["state", "show"],
])
def test_a_usage_error_exits_1_never_2_which_means_changes(args):
    result = runner.invoke(APP, args)
    assert result.exit_code == 1, result.output
    assert "Usage:" in result.output



def test_an_unwritable_out_path_is_refused_before_any_work_and_leaves_nothing(cfg, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = invoke("plan", "-c", cfg, "--out", str(blocker / "plan.json"))
    assert result.exit_code == 1
    assert "cannot write the plan" in result.output and "Traceback" not in result.output
    # refused before the refresh: no snapshot was taken, no plan recorded
    with sqlite3.connect(tmp_path / "state" / "qatlan.db") as db:
        assert db.execute("SELECT count(*) FROM plans").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


def test_a_plan_that_fails_leaves_no_file_and_no_temp_file(cfg, tmp_path, monkeypatch):
    import qatlan.pipeline as pipeline

    def refuse(*args, **kwargs):
        raise pipeline.ConfigError("refused for the test")

    monkeypatch.setattr(pipeline, "check_removals", refuse)
    out = tmp_path / "plans" / "plan.json"
    out.parent.mkdir()  # --out never creates folders
    result = invoke("plan", "-c", cfg, "--out", str(out))
    assert result.exit_code != 0 and "refused for the test" in result.output
    assert list(out.parent.iterdir()) == []
