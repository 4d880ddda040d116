"""What the terminal accepts: colour (`--no-color`, `NO_COLOR`, `TERM=dumb`, not a terminal)
and live progress (a terminal, not `CI`). One place, so that every command agrees."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["interactive", "set_no_color", "use_color"]

_state = {"no_color": False}


def set_no_color(value: bool) -> None:
    """The root `--no-color` option."""
    _state["no_color"] = bool(value)


def _dumb(env: Mapping[str, str]) -> bool:
    return env.get("TERM", "").strip().lower() == "dumb"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def use_color(stream: Any, env: Mapping[str, str] = os.environ) -> bool:
    """Whether to write ANSI colours to `stream`: a terminal, and none of `--no-color`,
    `NO_COLOR` (any non-empty value, https://no-color.org) or `TERM=dumb`."""
    if _state["no_color"] or env.get("NO_COLOR") or _dumb(env):
        return False
    return _isatty(stream)


def interactive(stream: Any, env: Mapping[str, str] = os.environ) -> bool:
    """Whether `stream` takes a live, rewritten progress line: a terminal that is not
    `TERM=dumb`, outside CI (`CI` set to anything but empty/false/0)."""
    ci = env.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return _isatty(stream) and not _dumb(env) and not ci
