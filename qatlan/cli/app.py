"""The `qatlan` app: the root options, the command modules, and `qatlan sandbox` mounted lazily.

Each command parses its options, calls one or two library functions, renders the result and
maps qatlan errors to a one- or two-line message and an exit code: 0 ok, 1 error (a usage
error too, as Terraform does, so that 2 means only "changes present" with
`plan --detailed-exitcode`), 130 interrupted. `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import typer
from typer.core import TyperGroup

try:  # typer 0.16+ runs its own copy of click: its usage errors are not click's
    from typer._click.exceptions import UsageError as _TyperUsageError
except ImportError:  # pragma: no cover - older typer, plain click
    _TyperUsageError = click.UsageError

from qatlan import __version__
from qatlan.cli import apply, demo, plan, state
from qatlan.cli.common import _options, register

__all__ = ["app", "main"]

#: the command group whose module is imported only when it is used
_SANDBOX = "sandbox"


#: click exits 2 on a usage error (an unknown flag, a bad value); qatlan exits 1
USAGE_ERROR_EXIT = 1
_USAGE_ERRORS = (click.UsageError, _TyperUsageError)


class _Group(TyperGroup):
    """The root group. `qatlan sandbox` is looked up only when asked for (a run or a help
    listing), so the product's commands never import the sandbox. A usage error anywhere
    below it exits 1, not click's 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except _USAGE_ERRORS as exc:
            exc.exit_code = USAGE_ERROR_EXIT
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _USAGE_ERRORS as exc:
            exc.exit_code = USAGE_ERROR_EXIT
            raise

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), _SANDBOX]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name != _SANDBOX:
            return super().get_command(ctx, cmd_name)
        from qatlan.sandbox.cli import app as sandbox_app

        command = typer.main.get_command(sandbox_app)
        command.name = _SANDBOX
        return command


app = typer.Typer(
    name="qatlan",
    cls=_Group,
    help="Keep Qualytics and Atlan in sync like Terraform: refresh, plan, apply.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"qatlan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Keep Qualytics and Atlan in sync like Terraform: refresh, plan, apply."""
    _options["debug"] = debug


for _module in (state, plan, apply, demo):
    register(_module.commands, app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # last resort: never a bare traceback unless --debug
        if _options["debug"] or "--debug" in sys.argv:
            raise
        typer.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        typer.echo("  Run again with --debug for the traceback, and please report it.", err=True)
        raise SystemExit(1) from None
