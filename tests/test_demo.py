"""`qatlan demo`: one command, no configuration, no network, the whole loop."""

from __future__ import annotations

import socket
import time

from typer.testing import CliRunner

from qatlan.cli.demo import run_demo
from stateful_apply import cli_app

runner = CliRunner()


def test_the_demo_runs_the_whole_loop_and_ends_in_sync(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAN_API_TOKEN", "a-real-looking-secret-123")
    started = time.monotonic()
    result = runner.invoke(cli_app(), ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 30
    out = result.output
    for step in ("$ qatlan refresh", "$ qatlan match", "$ qatlan plan --out plan.json",
                 "$ qatlan apply plan.json", "$ qatlan history"):
        assert step in out
    assert "Apply complete!" in out and "0 failed" in out
    assert out.rstrip().count("No changes. Both sides are in sync.") == 1
    assert "qatlan init" in out and "ATLAN_API_TOKEN" in out
    assert "a-real-looking-secret-123" not in out
    assert "sandbox-sync-token" not in out and "qualytics-sandbox-token" not in out
    assert (tmp_path / "demo" / "qatlan.toml").exists() and (tmp_path / "demo" / "plan.json").exists()
    written = (tmp_path / "demo" / "qatlan.toml").read_text()
    assert "sandbox-sync-token" not in written and "qualytics-sandbox-token" not in written


def test_the_demo_needs_no_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the demo opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    lines: list[str] = []
    result = run_demo(None, emit=lines.append)
    assert result.converged and result.applied == result.planned > 0
    assert not result.directory.exists()  # the temporary workspace is gone
    assert any("removed at the end" in line for line in lines)


def test_a_bad_generator_spec_is_one_clear_error(tmp_path):
    result = runner.invoke(cli_app(), ["demo", "--generate", "bogus=1", "--dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "Error: generator spec: unknown key 'bogus'" in result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output
