"""`qatlan apply`: a saved plan, an interrupted apply's plan, or a new plan after a typed `yes`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

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

APPROVE_PROMPT = (
    "\nDo you want to perform these actions?\n"
    "  qatlan will perform the actions described above.\n"
    "  Only 'yes' will be accepted to approve.\n\n"
    "  Enter a value"
)


def _interactive() -> bool:
    """Whether a person can answer the approval question (a seam for tests)."""
    return sys.stdin.isatty()


def _approve(auto_approve: bool) -> None:
    """Ask for a typed `yes`. Ctrl-C is an interruption (130, like anywhere else); a closed
    input or any other answer cancels (1)."""
    if auto_approve:
        return
    typer.echo(APPROVE_PROMPT + ": ", nl=False)
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip() != "yes":
        typer.echo("\nApply cancelled.")
        raise typer.Exit(1)
    typer.echo("")


def _saved_plan_to_apply(st: Any, saved: Any, run_id: int) -> Any:
    """The saved plan, once checked (None: it is empty); a refused plan ends its run."""
    from qatlan.errors import QatlanError
    from qatlan.pipeline import PLAN_KEY_ENV, check_applicable
    from qatlan.render import status_line

    try:
        check_applicable(saved, st, os.environ.get(PLAN_KEY_ENV) or None)
    except QatlanError as exc:
        st.finish_run(run_id, "error", counts={}, message=f"plan refused: {exc}")
        raise
    if saved.plan.is_empty():
        st.finish_run(run_id, "ok", counts={})
        typer.echo(status_line(saved.plan))
        return None
    return saved.plan, saved.checksum


def _plan_to_apply(cfg: Any, st: Any, options: Any, auto_approve: bool) -> Any:
    """(plan, checksum) this run applies (None: nothing to do): an interrupted apply's, or a
    new one; asks for approval. Either plan's changes stay in the state until applied."""
    from qatlan.apply import find_interrupted
    from qatlan.pipeline import make_stored_plan, options_of
    from qatlan.render import Progress, human, use_color

    left = find_interrupted(st)
    if left is not None and not left.stale:
        typer.echo(f"Resuming the apply of plan {left.checksum[:12]} that was interrupted "
                   f"(run {left.run_id}, started {left.started_at}): {left.left} of "
                   f"{len(left.plan.changes)} changes left. Settled changes are not repeated.")
        _approve(auto_approve)
        return left.plan, left.checksum
    if left is not None:
        options = options_of(left.plan, cfg, options)
        typer.echo(f"The apply of plan {left.checksum[:12]} was interrupted (run {left.run_id}, "
                   f"started {left.started_at}) and the state has changed since: planning again "
                   f"with that plan's options ({_describe(options)}).")
    progress = Progress()
    try:
        plan, checksum = make_stored_plan(cfg, st, options, progress=progress, lazy=True)
    finally:
        progress.close()
    typer.echo(human(plan, color=use_color(sys.stdout), max_assets=MAX_ASSETS))
    if plan.is_empty():
        return None
    _approve(auto_approve)
    return plan, checksum


@commands.command()
@handle_errors
def apply(
    planfile: Path = typer.Argument(None, help="A plan saved with `qatlan plan --out FILE`; "
                                               "applied as it is, without asking."),
    auto_approve: bool = typer.Option(False, "--auto-approve", help="Skip the typed `yes`."),
    parallelism: int = typer.Option(None, "--parallelism", min=1, max=64,
                                    help="Batches in flight at once (default: atlan.concurrency from qatlan.toml)."),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    create_definitions: bool = typer.Option(None, "--create-definitions/--no-create-definitions",
                                            help="Create the missing Atlan definitions, or let their values wait "
                                                 "(default: \\[sync] create_definitions, true)."),
    allow_mass_removal: bool = typer.Option(False, "--allow-mass-removal",
                                            help="Accept a plan that removes more than max_removal_share."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Apply a saved plan, or plan now and apply after a typed `yes`.

    Targets are read again first: what already matches is not written again.

    What changed since the plan is reported as drifted. Rerun after a kill: nothing repeats.

    Example: qatlan plan --out plan.json && qatlan apply plan.json
    """
    from qatlan.apply import apply_plan
    from qatlan.pipeline import PlanOptions, open_saved_plan
    from qatlan.render import Progress, apply_summary

    cfg = load(config)
    if planfile is not None and (create_definitions is not None or allow_mass_removal):
        raise fail("--[no-]create-definitions and --allow-mass-removal shape a new plan; a saved plan "
                   "is applied as it was made", hint="pass them to `qatlan plan --out FILE` instead")
    if planfile is None and not auto_approve and not _interactive():
        raise fail("qatlan apply asks for a typed `yes`, but there is no terminal to ask on",
                   hint="pass --auto-approve, or save a plan (`qatlan plan --out FILE`) and "
                        "apply that file")
    options = PlanOptions(create_definitions=create_definitions, allow_mass_removal=allow_mass_removal)
    with open_state(state_path(cfg, state)) as st:
        # a plan this state stored is taken from the state, the file only hashed
        saved = open_saved_plan(planfile, st) if planfile is not None else None
        # a saved plan's run is recorded with the lock, in one transaction: whenever this
        # process is killed, the next `qatlan apply` finds that run and resumes this plan
        checksum = saved.checksum if saved is not None else None
        with locked(st, "apply", lock_timeout, plan_checksum=checksum) as lock:
            run_id = lock.run_id
            if saved is not None:
                chosen = _saved_plan_to_apply(st, saved, run_id)
            else:
                chosen = _plan_to_apply(cfg, st, options, auto_approve)
            if chosen is None:
                return
            plan, checksum = chosen
            progress = Progress()
            try:
                result = apply_plan(cfg, st, plan, parallelism=parallelism, progress=progress,
                                    run_id=run_id, checksum=checksum)
            finally:
                progress.close()
    typer.echo(apply_summary(result))
    result.raise_for_failures()


def _describe(options: Any) -> str:
    parts = ["create definitions" if options.create_definitions is not False else "no new definitions"]
    if options.pull_only:
        parts.append("pull only")
    if options.push_only:
        parts.append("push only")
    parts += [f"--target {t}" for t in options.targets] + [f"--exclude {e}" for e in options.excludes]
    return ", ".join(parts)
