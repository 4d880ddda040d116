"""Bad endpoints as a user meets them: a closed port, a name that does not resolve, a server
that hangs, and a URL that reaches the wrong service. Each ends soon, with a clear message
and lines on stderr while qatlan waits (docs/commands.md, "Bad endpoints")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox
from qatlan.cli import app

pytestmark = pytest.mark.http
runner = CliRunner()


def _config(tmp_path: Path, atlan: str, qualytics: str, **extra: object) -> Path:
    more = "".join(f"{k} = {v}\n" for k, v in extra.items())
    path = tmp_path / "qatlan.toml"
    path.write_text(f'[atlan]\nurl = "{atlan}"\n{more}[qualytics]\nurl = "{qualytics}"\n{more}')
    return path


def _refresh(config: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QATLAN_", "ATLAN_", "QUALYTICS_"))}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "qatlan", "refresh", "-c", str(config)],
                            capture_output=True, text=True, env={**env, **TOKENS_ENV}, timeout=timeout)
    return result, time.monotonic() - started


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_port_fails_within_about_ten_seconds_saying_each_retry(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    result, seconds = _refresh(_config(tmp_path, url, url))
    assert result.returncode == 1
    assert seconds < 14, seconds
    assert "cannot reach" in result.stderr
    assert "check atlan.url in qatlan.toml" in result.stderr or "check qualytics.url in qatlan.toml" in result.stderr
    assert "ConnectError, retry 1 of 5" in result.stderr  # a line while retrying
    assert "Traceback" not in result.stderr


def test_a_name_that_does_not_resolve_is_not_retried(tmp_path):
    url = "http://qatlan-no-such-host.invalid"
    result, seconds = _refresh(_config(tmp_path, url, url))
    assert result.returncode == 1
    assert seconds < 8, seconds
    assert "the host name does not resolve" in result.stderr
    assert "retry" not in result.stderr


class _Hanging:
    """A server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_a_hanging_server_is_given_up_after_one_timeout_with_lines_while_waiting(tmp_path):
    server = _Hanging()
    try:
        result, seconds = _refresh(_config(tmp_path, server.url, server.url, timeout=11))
    finally:
        server.close()
    assert result.returncode == 1
    assert seconds < 18, seconds  # one read timeout, not six of them
    assert "has not answered GET" in result.stderr and "for 10 s" in result.stderr
    assert "did not answer" in result.stderr and "within 11 s" in result.stderr


@pytest.fixture(scope="module")
def live():
    sb = make_sandbox("tables=6,seed=4").start()
    yield sb
    sb.stop()


def test_an_atlan_url_that_reaches_qualytics_says_so(tmp_path, live):
    config = _config(tmp_path, live.qualytics_url, live.qualytics_url, max_retries=0)
    result = runner.invoke(app, ["refresh", "-c", str(config)], env=TOKENS_ENV)
    assert result.exit_code == 1
    assert "404" in result.output
    assert (f"{live.qualytics_url} answered, but not as the Atlan API does: check that "
            "atlan.url in qatlan.toml is your Atlan URL") in result.output


def test_a_qualytics_url_from_the_environment_that_reaches_atlan_names_the_variable(tmp_path, live):
    config = _config(tmp_path, live.atlan_url, "http://unused.example", max_retries=0)
    result = runner.invoke(app, ["refresh", "-c", str(config)],
                           env={**TOKENS_ENV, "QUALYTICS_URL": live.atlan_url})
    assert result.exit_code == 1
    assert "not as the Qualytics API does: check that $QUALYTICS_URL is your Qualytics URL" in result.output
