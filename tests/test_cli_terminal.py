"""Terminal habits: help (-h, examples last, no `<bool>`), completion, colour off with
--no-color / NO_COLOR / TERM=dumb on a real pseudo-terminal, and progress lines."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox, sandbox_config_doc
from qatlan.cli import app
from qatlan.render import Progress

runner = CliRunner()
ESC = "\x1b"


def _command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    ctx = click.Context(root)
    paths, todo = [], [((), root)]
    while todo:
        path, command = todo.pop()
        paths.append(path)
        if hasattr(command, "list_commands"):  # a group (typer may run its own copy of click)
            todo += [((*path, name), command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return sorted(paths)


PATHS = _command_paths()


def test_the_command_tree_is_walked():
    assert {(), ("state",), ("state", "list"), ("sandbox",), ("sandbox", "up"), ("plan",)} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "qatlan")
def test_every_help_accepts_h_and_ends_with_an_example(path):
    result = runner.invoke(app, [*path, "-h"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = [line.strip(" │") for line in result.output.splitlines() if line.strip(" │")]
    assert lines[0].startswith("Usage: qatlan")
    assert lines[-1].startswith("Example: qatlan"), lines[-3:]
    # flags take no value, so no placeholder after them; values are named as click does
    assert not re.search(r"<\w+>", result.output), result.output


def test_completion_can_be_installed():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--install-completion" in result.output and "--show-completion" in result.output
    assert "--no-color" in result.output


# --------------------------------------------------------------------------- a real terminal


@pytest.fixture(scope="module")
def live():
    sb = make_sandbox("tables=12,seed=4").start()
    yield sb
    sb.stop()


def _run_in_pty(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run qatlan with stdin, stdout and stderr on one pseudo-terminal; all it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "qatlan", *args], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        code = proc.wait(timeout=120)
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _workspace(tmp_path: Path, sb) -> Path:
    doc = sandbox_config_doc(sb.world, base_url_atlan=sb.atlan_url, base_url_qualytics=sb.qualytics_url)
    lines = []
    for section in ("atlan", "qualytics"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in doc[section].items()]
    (tmp_path / "qatlan.toml").write_text("\n".join(lines) + "\n")
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "TERM", "FORCE_COLOR")}
    return {**env, **TOKENS_ENV, "TERM": "xterm-256color", "COLUMNS": "120", **extra}


def test_a_terminal_gets_colour_by_default(tmp_path, live):
    code, out = _run_in_pty(["plan", "--max-assets", "3"], _env(), _workspace(tmp_path, live))
    assert code == 0, out
    assert ESC in out  # the control case: without it the tests below prove nothing
    assert "Plan:" in out


@pytest.mark.parametrize("args, extra", [
    (["plan"], {"NO_COLOR": "1"}),
    (["--no-color", "plan"], {}),
    (["plan"], {"TERM": "dumb"}),
], ids=["NO_COLOR", "--no-color", "TERM=dumb"])
def test_no_escape_codes_when_colour_is_off(tmp_path, live, args, extra):
    code, out = _run_in_pty([*args, "--max-assets", "3"], _env(**extra), _workspace(tmp_path, live))
    assert code == 0, out
    assert ESC not in out, repr(out[:500])
    assert "Plan:" in out and "qualytics fields:" in out  # progress was shown, plainly


# --------------------------------------------------------------------------- progress lines


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _feed(progress: Progress, clock: list[float]) -> None:
    for i in range(0, 1001, 50):
        clock[0] = i / 100  # 100 items a second, 10 s in all
        progress("qualytics fields", i, 1000)
    progress.close()


def test_off_a_terminal_progress_is_a_plain_line_every_few_seconds_with_rate_and_time_left():
    stream, clock = _Stream(tty=False), [0.0]
    _feed(Progress(stream, clock=lambda: clock[0]), clock)
    assert stream.getvalue().splitlines() == [
        "qualytics fields: 500/1,000 (100/s, about 5 s left)",
        "qualytics fields: 1,000/1,000 in 10 s (100/s)",
    ]


def test_in_ci_a_terminal_gets_plain_lines_too(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("TERM", raising=False)
    stream, clock = _Stream(tty=True), [0.0]
    _feed(Progress(stream, clock=lambda: clock[0]), clock)
    assert stream.getvalue().splitlines()[-1] == "qualytics fields: 1,000/1,000 in 10 s (100/s)"
    assert ESC not in stream.getvalue() and "\r" not in stream.getvalue()


def test_on_a_terminal_rich_draws_one_live_line_and_keeps_the_finished_one(monkeypatch):
    for name in ("CI", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    stream, clock = _Stream(tty=True), [0.0]
    progress = Progress(stream, clock=lambda: clock[0])
    assert progress.live and progress.color
    _feed(progress, clock)
    out = stream.getvalue()
    assert ESC in out  # drawn by rich
    assert "qualytics fields: 1,000/1,000 in 10 s (100/s)" in out
