"""Commands around the state: init, refresh, state list/show, history, force-unlock."""

from __future__ import annotations

from pathlib import Path

import typer

from qatlan.cli.common import (
    CONFIG_OPTION,
    LOCK_TIMEOUT_OPTION,
    STATE_OPTION,
    handle_errors,
    load,
    locked,
    open_state,
    state_path,
)

commands = typer.Typer()


@commands.command()
@handle_errors
def init(
    path: Path = typer.Argument(Path("qatlan.toml"), help="Where to write the config."),
    atlan_url: str = typer.Option(None, "--atlan-url", help="Your Atlan tenant, e.g. https://acme.atlan.com."),
    qualytics_url: str = typer.Option(None, "--qualytics-url", help="Your Qualytics, e.g. https://acme.qualytics.io."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented qatlan.toml to start from.

    Example: qatlan init --atlan-url https://acme.atlan.com --qualytics-url https://acme.qualytics.io
    """
    from qatlan.config import init_config

    written = init_config(path, atlan_url=atlan_url, qualytics_url=qualytics_url, force=force)
    typer.echo(f"Wrote {written or path}. Set ATLAN_API_TOKEN and QUALYTICS_API_TOKEN, then run `qatlan refresh`.")


@commands.command()
@handle_errors
def refresh(
    full: bool = typer.Option(False, "--full", help="Read everything, not only what changed."),
    accept_scope: bool = typer.Option(False, "--accept-scope", help="Take the datastores that match now as the scope, after a deliberate change (else one that no longer matches makes the snapshot incomplete)."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> None:
    """Read both catalogs into a new snapshot in the state.

    Incremental by default; exits 1 when part of either side could not be read.

    Example: qatlan refresh --full
    """
    from qatlan.refresh import refresh as run_refresh
    from qatlan.render import Progress, missing_lines, refresh_summary

    cfg = load(config)
    progress = Progress()
    with open_state(state_path(cfg, state)) as st, locked(st, "refresh", lock_timeout):
        try:
            result = run_refresh(cfg, st, full=full, accept_scope=accept_scope, progress=progress)
        finally:
            progress.close()
    typer.echo(refresh_summary(result))
    if not result.complete:
        typer.echo(missing_lines(result.missing), err=True)
        raise typer.Exit(1)


state_app = typer.Typer(help="Inspect the state: snapshots and records.", no_args_is_help=True)
commands.add_typer(state_app, name="state")


@state_app.command("list")
@handle_errors
def state_list(config: Path = CONFIG_OPTION, state: Path = STATE_OPTION) -> None:
    """List the snapshots the state holds.

    Example: qatlan state list
    """
    from qatlan.render import snapshots_table

    with open_state(state_path(load(config), state), create=False) as st:
        meta = st.meta()
        typer.echo(f"state {st.path}: lineage {meta['lineage']}, serial {meta['serial']}")
        typer.echo(snapshots_table(st.snapshots()))


@state_app.command("show")
@handle_errors
def state_show(
    key: str = typer.Argument(..., help="A GUID, Qualytics id, qualifiedName or name."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Show what one asset looked like in each snapshot.

    Example: qatlan state show default/snowflake/1700000001/SALES/PUBLIC/ORDERS
    """
    from qatlan.render import record_history

    with open_state(state_path(load(config), state), create=False) as st:
        matches = st.find_records(key)
        histories = {(m["kind"], m["key"]): st.record_history(m["kind"], m["key"]) for m in matches}
    typer.echo(record_history(matches, histories))
    if not matches:
        raise typer.Exit(1)


@commands.command()
@handle_errors
def history(
    limit: int = typer.Option(20, "--limit", help="How many runs to show."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Show past runs (refresh, plan, apply) with their outcome and counts.

    Example: qatlan history --limit 5
    """
    from qatlan.render import runs_table

    with open_state(state_path(load(config), state), create=False) as st:
        typer.echo(runs_table(st.runs(limit)))


@commands.command("force-unlock")
@handle_errors
def force_unlock(
    lock_id: str = typer.Argument(..., help="The lock id printed by the run that holds it."),
    force: bool = typer.Option(False, "--force",
                               help="Release the lock even though its holder is still running on this host."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Release a state lock left by a run on another host that is gone.

    A lock whose holder died on this host is taken over by the next run by itself; one whose
    holder is still running here is refused unless --force.

    Example: qatlan force-unlock 8c3e1f0a-...
    """
    with open_state(state_path(load(config), state), create=False) as st:
        info = st.force_unlock(lock_id, force=force)
    if force and info.alive:
        typer.echo(f"Warning: {info.holder} is still running; it and the next run may now write "
                   "at the same time and share the API rate limits.", err=True)
    typer.echo(f"Released lock {lock_id} held by {info.describe()}.")
