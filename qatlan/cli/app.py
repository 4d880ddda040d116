"""The `qatlan` app: the root options, the command modules, and `qatlan sandbox` mounted lazily.

Each command parses its options, calls one or two library functions, renders the result and
maps qatlan errors to a one- or two-line message and an exit code (0 ok, 1 error, 2 changes
present with `plan --detailed-exitcode`). `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import typer
from typer.core import TyperGroup

from qatlan import __version__
from qatlan.cli import apply, demo, plan, state
from qatlan.cli.common import _options, register

__all__ = ["app", "main"]

#: the command group whose module is imported only when it is used
_SANDBOX = "sandbox"


class _Group(TyperGroup):
    """The root group. `qatlan sandbox` is looked up only when asked for (a run or a help
    listing), so the product's commands never import the sandbox."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), _SANDBOX]

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
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
