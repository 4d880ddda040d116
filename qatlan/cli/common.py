"""Shared CLI plumbing: error handling, common options, config and state opening, and the
`register` helper each command module uses to add its commands to the app."""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer

from qatlan.errors import QatlanError

try:  # typer 0.16+ runs its own copy of click: only its UsageError prints usage and exits
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer, plain click
    from click import UsageError

F = TypeVar("F", bound=Callable[..., Any])

_options = {"debug": False}


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    """Print an error (and a hint) on stderr and return the Exit to raise."""
    typer.echo(f"Error: {message}", err=True)
    if hint:
        typer.echo(f"  {hint}", err=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn QatlanError (and Ctrl-C) into a message and exit code; --debug shows the traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QatlanError as exc:
            if _options["debug"]:
                traceback.print_exc()
            raise fail(str(exc), exc.hint) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- shared options

CONFIG_OPTION = typer.Option(
    None, "--config", "-c", envvar="QATLAN_CONFIG", metavar="PATH",
    help="Path to qatlan.toml (default: ./qatlan.toml, optional when the environment sets both URLs).",
)
STATE_OPTION = typer.Option(
    None, "--state", envvar="QATLAN_STATE", metavar="PATH",
    help="Path to the state database (default: the \\[state] path in qatlan.toml).",
)
#: assets whose changes `plan` and `apply` list on a terminal by default; a million-column first
#: plan would otherwise print half a gigabyte (`show`, `--json` and `--out` keep everything)
MAX_ASSETS = 1000

LOCK_TIMEOUT_OPTION = typer.Option(
    0.0, "--lock-timeout", metavar="SECONDS", help="Seconds to wait for another run's state lock before failing."
)


def load(path: Path | None) -> Any:
    """The configuration at `path`; without one, ./qatlan.toml, which the environment may
    replace entirely (both URLs set). Says on stderr which file URL a variable overrides."""
    from qatlan.config import load_config

    config = load_config(path if path is not None else Path("qatlan.toml"), optional=path is None)
    for key, (variable, in_file) in config.url_sources().items():
        used = getattr(config, key.split(".")[0]).url
        if isinstance(in_file, str) and in_file != used:
            typer.echo(f"Note: {key} is {used} from ${variable}, not {in_file} from "
                       f"{config.path.name if config.path else 'the file'}.", err=True)
    return config


def state_path(config: Any, override: Path | None) -> Path:
    return Path(override) if override is not None else Path(config.state.path)


def read_state(config: Path | None, state: Path | None) -> Any:
    """The state opened read-only, for a read command (history, log, state list/show/diff):
    with --state (or QATLAN_STATE) no qatlan.toml is read; it works on a read-only copy."""
    from qatlan.state import State

    return State.open_readonly(Path(state) if state is not None else Path(load(config).state.path))


def open_state(path: Path, *, create: bool = True) -> Any:
    from qatlan.state import State

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only parent, a file where a folder should be
        raise fail(f"cannot create the state's folder {path.parent}: {exc.strerror or exc}",
                   "pass --state PATH (or set QATLAN_STATE) to a writable place, or fix the "
                   "folder's permissions") from None
    return State.open(path, create=create)


@contextlib.contextmanager
def locked(st: Any, command: str, timeout: float = 0.0, *,
           plan_checksum: str | None = None) -> Iterator[Any]:
    """`st.locked(...)`, saying so on stderr when it took over the lock of a dead run."""
    with st.locked(command, timeout, plan_checksum=plan_checksum) as info:
        note = info.takeover_note()
        if note:
            typer.echo(note, err=True)
        yield info


def register(commands: typer.Typer, app: typer.Typer) -> None:
    """Add the commands of a command module's `commands` app to the main app."""
    app.registered_commands.extend(commands.registered_commands)
    app.registered_groups.extend(commands.registered_groups)

