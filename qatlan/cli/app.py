"""The `qatlan` app: the root options, the command modules, and `qatlan sandbox` mounted lazily.

Each command parses its options, calls one or two library functions, renders the result and
maps qatlan errors to a one- or two-line message and an exit code: 0 ok, 1 error (a usage
error too, as Terraform does, so that 2 means only "changes present" with
`plan --detailed-exitcode`), 130 interrupted. `--debug` shows the traceback.
"""

from __future__ import annotations

import inspect
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
from qatlan.cli import apply, plan, state, watch
from qatlan.cli.common import _options, register

__all__ = ["app", "main"]

#: the command group whose module is imported only when it is used
_SANDBOX = "sandbox"
#: the command whose module is imported only when it is used (or listed)
_DEMO = "demo"


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
        return [*super().list_commands(ctx), _DEMO, _SANDBOX]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name == _DEMO:
            # imported when used: it pulls in the whole pipeline, which the read commands
            # (log, history, state ...) do not need at start-up
            from qatlan.cli import demo

            examples_last(demo.commands)
            command = typer.main.get_command(demo.commands)
            command.name = _DEMO
            return command
        if cmd_name != _SANDBOX:
            return super().get_command(ctx, cmd_name)
        from qatlan.sandbox.cli import app as sandbox_app

        examples_last(sandbox_app)
        command = typer.main.get_command(sandbox_app)
        command.name = _SANDBOX
        return command


#: `-h` as well as `--help`, on every command (click passes it down to subcommands)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


#: click's names for the types of values, which typer (0.2x) shows as `<int>`, `<str>`...
_TYPE_NAMES = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT", "path": "PATH", "bool": "BOOLEAN"}


def _clean_placeholders() -> None:
    """Help shows what a value is, as click does: nothing after a flag (typer 0.2x shows
    `<bool>`, as if it took a value), the metavar when there is one, else click's name for
    the type (`INTEGER`, `TEXT`, `PATH`). Left alone if this typer has no such hook."""
    for cls_name in ("TyperOption", "TyperArgument"):
        cls = getattr(typer.core, cls_name, None)
        original = getattr(cls, "display_type_rich", None)
        if original is None or getattr(original, "_qatlan", False):
            continue

        def display_type_rich(self: Any, ctx: Any, _original: Any = original) -> Any:
            if getattr(self, "is_flag", False) and not getattr(self, "count", False):
                return None
            shown = _original(self, ctx)
            if isinstance(shown, str) and shown.startswith("<") and shown.endswith(">"):
                inner = shown[1:-1]
                return _TYPE_NAMES.get(inner, inner.upper())
            return shown

        display_type_rich._qatlan = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich  # type: ignore[union-attr]


_clean_placeholders()

app = typer.Typer(
    name="qatlan",
    cls=_Group,
    help="Keep Qualytics and Atlan in sync like Terraform: refresh, plan, apply.",
    no_args_is_help=True,
    add_completion=True,
    context_settings=CONTEXT_SETTINGS,
    pretty_exceptions_enable=False,
    epilog="Example: qatlan init --atlan-url https://acme.atlan.com --qualytics-url "
           "https://acme.qualytics.io && qatlan plan --out plan.json",
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
    no_color: bool = typer.Option(
        False, "--no-color", help="No colours or other escape codes (also: NO_COLOR=1, TERM=dumb)."
    ),
) -> None:
    """Keep Qualytics and Atlan in sync like Terraform: refresh, plan, apply."""
    from qatlan.render import set_no_color

    _options["debug"] = debug
    set_no_color(no_color)


for _module in (state, plan, apply, watch):
    register(_module.commands, app)

#: the example that ends the help of a command group whose module gives it none
GROUP_EXAMPLES = {"state": "Example: qatlan state list && qatlan state show ORDERS"}


def examples_last(typer_app: typer.Typer) -> None:
    """Make every command's help end with its example: the `Example:` paragraph of its
    docstring moves to the epilog, which help prints after the options. Groups without an
    example get theirs from GROUP_EXAMPLES. Idempotent."""
    for info in typer_app.registered_commands:
        if isinstance(info.epilog, str):
            continue
        doc = info.help if isinstance(info.help, str) else inspect.getdoc(info.callback) or ""
        head, found, example = doc.partition("Example:")
        if found:
            info.help = head.rstrip()
            info.epilog = "Example:" + example.rstrip()
    for group in typer_app.registered_groups:
        sub = group.typer_instance
        if sub is None:
            continue
        example = GROUP_EXAMPLES.get(group.name or "")
        if example and not isinstance(sub.info.epilog, str):
            sub.info.epilog = example
        examples_last(sub)


examples_last(app)


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
