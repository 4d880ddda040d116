"""Commands that plan: plan, show, match. Glue over qatlan.pipeline, qatlan.render, qatlan.plan."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import typer

from qatlan.cli.common import (
    CONFIG_OPTION,
    MAX_ASSETS,
    LOCK_TIMEOUT_OPTION,
    STATE_OPTION,
    fail,
    handle_errors,
    load,
    locked,
    open_state,
    state_path,
)

commands = typer.Typer()

NOT_SAVED = ("Note: You didn't use the --out option to save this plan, so qatlan can't "
             "guarantee to take exactly these actions if you run `qatlan apply` now.")


#: characters gathered before each write when echoing pieces
_ECHO_BATCH = 1 << 20


def _echo_json(data: object) -> None:
    # one line, like `terraform show -json` (pipe through `jq .` to read it)
    typer.echo(json.dumps(data, ensure_ascii=False))


def _echo_pieces(pieces: Iterable[str]) -> None:
    """Echo the text of `pieces` and a newline, like `typer.echo("".join(pieces))`, about a
    megabyte per write. Pieces must not split an ANSI code (echo strips those off a pipe)."""
    batch: list[str] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= _ECHO_BATCH:
            typer.echo("".join(batch), nl=False)
            batch, size = [], 0
    batch.append("\n")
    typer.echo("".join(batch), nl=False)


def _saved_note(out: Path) -> str:
    return (f"Saved the plan to: {out}\n\nTo perform exactly these actions, run:\n"
            f"    qatlan apply {out}")


@commands.command()
@handle_errors
def plan(
    no_refresh: bool = typer.Option(False, "--no-refresh", help="Plan from the latest snapshot; do not read either side."),
    full: bool = typer.Option(False, "--full", help="Refresh everything, not only what changed."),
    out: Path = typer.Option(None, "--out", metavar="FILE", help="Save the plan here for `qatlan apply FILE`."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (docs/plan-format.md)."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print a pull-request comment (under 65,536 characters)."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 0 when in sync, 2 for changes (or changes waiting for definitions), 1 for errors."),
    max_assets: int = typer.Option(MAX_ASSETS, "--max-assets", min=0, metavar="N", help="List the changes of at most N assets on the terminal and count the rest (0: all; --json, --out and `show` always have every change)."),
    target: list[str] = typer.Option(None, "--target", metavar="PATTERN", help="Only changes whose address or asset matches (shell wildcards; repeatable)."),
    exclude: list[str] = typer.Option(None, "--exclude", metavar="PATTERN", help="Leave out changes whose address or asset matches (repeatable)."),
    pull_only: bool = typer.Option(False, "--pull-only", help="Only Atlan → Qualytics (tags)."),
    push_only: bool = typer.Option(False, "--push-only", help="Only Qualytics → Atlan (scores, tags, links, announcements)."),
    create_definitions: bool = typer.Option(None, "--create-definitions/--no-create-definitions", help="Plan the missing Atlan tag and custom metadata definitions, or let their values wait (default: \\[sync] create_definitions, true)."),
    allow_mass_removal: bool = typer.Option(False, "--allow-mass-removal", help="Accept a plan that removes more than \\[sync] max_removal_share of what qatlan owns."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> None:
    """Refresh both sides and show what qatlan would change.

    Example: qatlan plan --out plan.json --target '*ORDERS*'
    """
    from qatlan.pipeline import PLAN_KEY_ENV, PlanOptions, make_stored_plan
    from qatlan.render import Progress

    if as_json and as_markdown:
        raise fail("--json and --markdown exclude each other", "pass one of them")
    if pull_only and push_only:  # before the config, the state and a refresh
        raise fail("--pull-only and --push-only exclude each other",
                   "pass one of them, or neither to sync both ways")
    cfg = load(config)
    options = PlanOptions(refresh=not no_refresh, full_refresh=full, pull_only=pull_only,
                          push_only=push_only, targets=tuple(target or ()),
                          excludes=tuple(exclude or ()), create_definitions=create_definitions,
                          allow_mass_removal=allow_mass_removal)
    progress = Progress()
    with open_state(state_path(cfg, state), create=not no_refresh) as st, \
            locked(st, "plan", lock_timeout):
        try:
            result, checksum = make_stored_plan(cfg, st, options, progress=progress, out=out, lazy=True,
                                                key=os.environ.get(PLAN_KEY_ENV) or None)
        finally:
            progress.close()
    _print_plan(result, as_json, as_markdown, checksum, max_assets=max_assets)
    if not result.is_empty():
        note = _saved_note(out) if out is not None else NOT_SAVED
        typer.echo("\n" + note, err=as_json or as_markdown)
    if not result.complete:  # removals are held back: an error, like a failed refresh
        from qatlan.render import missing_lines

        typer.echo(missing_lines(list(result.base.get("missing") or [])), err=True)
        raise typer.Exit(1)
    if detailed_exitcode and not result.in_sync():  # changes, or changes waiting for definitions
        raise typer.Exit(2)


def _print_plan(result, as_json: bool, as_markdown: bool, checksum: str | None = None, *,
                max_assets: int = 0) -> None:
    from qatlan import render

    if as_json:
        # one line, like `terraform show -json` (pipe through `jq .` to read it)
        _echo_pieces(render.json_pieces(result, checksum=checksum))
    elif as_markdown:
        typer.echo(render.markdown(result), nl=False)
    else:
        _echo_pieces(render.human_pieces(result, color=render.use_color(sys.stdout), max_assets=max_assets))


@commands.command()
@handle_errors
def show(
    file: Path = typer.Argument(..., metavar="FILE", help="A plan saved with `qatlan plan --out FILE`."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON (docs/plan-format.md)."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print a pull-request comment."),
) -> None:
    """Print a saved plan, human-readable or as JSON.

    Example: qatlan show plan.json --json | jq '.summary'
    """
    from qatlan.plan import open_plan_file

    if as_json and as_markdown:
        raise fail("--json and --markdown exclude each other", "pass one of them")
    saved = open_plan_file(file)  # read a change at a time: its changes stay in the file
    _print_plan(saved.plan, as_json, as_markdown)


@commands.command()
@handle_errors
def match(
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    no_refresh: bool = typer.Option(False, "--no-refresh", help="Match the latest snapshot; do not read either side."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> None:
    """Show how Qualytics assets match Atlan assets, and why the rest are skipped.

    Example: qatlan match --no-refresh
    """
    from qatlan import render
    from qatlan.pipeline import PlanOptions, match_report
    from qatlan.render import Progress

    cfg = load(config)
    progress = Progress()
    with open_state(state_path(cfg, state), create=not no_refresh) as st, \
            locked(st, "match", lock_timeout):
        try:
            result, snapshot = match_report(cfg, st, PlanOptions(refresh=not no_refresh),
                                            progress=progress)
        finally:
            progress.close()
    if as_json:
        _echo_json(render.match_json(result))
    else:
        typer.echo(render.match_report(result, snapshot), nl=False)
