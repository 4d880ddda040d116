"""Rough edges a new user hit (issue 16), each as the user meets it (docs/commands.md)."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV
from qatlan.cli import app
from qatlan.cli.demo import run_demo

runner = CliRunner()


def _closed_port_config(tmp_path: Path) -> Path:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "qatlan.toml"
    path.write_text(f'[atlan]\nurl = "http://127.0.0.1:{port}"\n[qualytics]\nurl = "http://127.0.0.1:{port}"\n')
    return path


# --------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def two_demos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "D"
    outputs = []
    results = []
    for _ in range(2):
        lines: list[str] = []
        results.append(run_demo(folder, emit=lines.append))
        outputs.append("\n".join(lines))
    return folder, results, outputs


def test_the_demo_runs_twice_in_the_same_folder(two_demos):
    folder, results, outputs = two_demos
    assert [r.converged for r in results] == [True, True]
    assert results[1].planned == results[0].planned  # the same world, planned from scratch again
    assert "the previous demo's state was removed" in outputs[1]
    assert "the previous demo's state was removed" not in outputs[0]
    assert (folder / "state" / "qatlan.db").is_file() and (folder / "plan.json").is_file()


def test_the_demo_s_counts_agree_with_its_refresh(two_demos):
    before_match = two_demos[2][0].split("$ qatlan match")[0]
    counts: dict[str, set[int]] = {}
    for number, noun in re.findall(r"(\d[\d,]*) (containers|fields|assets)\b", before_match):
        counts.setdefault(noun, set()).add(int(number.replace(",", "")))
    assert set(counts) == {"containers", "fields", "assets"}  # the refresh summary says them
    assert all(len(values) == 1 for values in counts.values()), counts


def test_the_demo_s_history_is_newest_first_like_qatlan_history(two_demos):
    history = two_demos[2][0].split("$ qatlan history")[1]
    ids = [int(m) for m in re.findall(r"^\s+(\d+)\s+(?:refresh|plan|apply)\b", history, re.M)]
    assert len(ids) >= 4 and ids == sorted(ids, reverse=True)


def test_the_demo_leaves_a_folder_it_did_not_write_alone(tmp_path):
    (tmp_path / "qatlan.toml").write_text("# mine\n")
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "the demo did not write" in result.output and "Traceback" not in result.output
    assert (tmp_path / "qatlan.toml").read_text() == "# mine\n"
    assert not (tmp_path / "state").exists()


# --------------------------------------------------------------------------- plan


def test_plan_out_into_a_missing_folder_fails_before_reading_and_creates_nothing(tmp_path):
    config = _closed_port_config(tmp_path)
    out = tmp_path / "nonexistent" / "dir" / "p.json"
    started = time.monotonic()
    result = runner.invoke(app, ["plan", "-c", str(config), "--out", str(out)], env=TOKENS_ENV)
    assert time.monotonic() - started < 3  # no connection was tried
    assert result.exit_code == 1
    assert f"cannot write the plan to {out}: {out.parent} does not exist" in result.output
    assert not (tmp_path / "nonexistent").exists()


def test_pull_only_with_push_only_is_refused_at_once(tmp_path):
    config = _closed_port_config(tmp_path)
    started = time.monotonic()
    result = runner.invoke(app, ["plan", "-c", str(config), "--pull-only", "--push-only"], env=TOKENS_ENV)
    assert time.monotonic() - started < 2
    assert result.exit_code == 1
    assert "--pull-only and --push-only exclude each other" in result.output
    assert not (tmp_path / "state").exists()  # nothing opened, nothing read


# --------------------------------------------------------------------------- state


def test_a_state_folder_that_cannot_be_created_is_one_clear_line(tmp_path):
    config = _closed_port_config(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = runner.invoke(app, ["refresh", "-c", str(config), "--state", str(blocker / "state" / "q.db")],
                           env=TOKENS_ENV)
    assert result.exit_code == 1
    assert f"Error: cannot create the state's folder {blocker / 'state'}" in result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_missing_state_under_a_read_only_folder_is_one_clear_line(tmp_path):
    config = _closed_port_config(tmp_path)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        result = runner.invoke(app, ["refresh", "-c", str(config), "--state", str(read_only / "state" / "q.db")],
                               env=TOKENS_ENV)
    finally:
        read_only.chmod(0o755)
    assert result.exit_code == 1
    assert "cannot create the state's folder" in result.output and "Permission denied" in result.output
    assert "unexpected" not in result.output
