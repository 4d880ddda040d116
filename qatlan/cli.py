"""The `qatlan` command line: thin glue over the library.

Each command parses its options, calls one or two library functions, renders the result and
maps qatlan errors to a one- or two-line message and an exit code (0 ok, 1 error, 2 changes
present with `plan --detailed-exitcode`). `--debug` shows the traceback.
"""

from __future__ import annotations

import sys

import typer

from qatlan import __version__
from qatlan._cli.common import _options

app = typer.Typer(
    name="qatlan",
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


def _mount_subcommands() -> None:
    from qatlan._cli import apply_cmds, plan_cmds, read_cmds
    from qatlan.sandbox import cli as sandbox_cli

    read_cmds.register(app)
    plan_cmds.register(app)
    apply_cmds.register(app)
    app.add_typer(sandbox_cli.app, name="sandbox")


_mount_subcommands()


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
