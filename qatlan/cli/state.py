"""Commands around the state: init, refresh, state list/show/diff, log, history, force-unlock.

The read commands (state list/show/diff, log, history) open the state read-only."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from qatlan.cli.common import (
    CONFIG_OPTION,
    LOCK_TIMEOUT_OPTION,
    STATE_OPTION,
    UsageError,
    fail,
    handle_errors,
    load,
    locked,
    open_state,
    read_state,
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

    with read_state(config, state) as st:
        meta = st.meta()
        typer.echo(f"state {st.path}: lineage {meta['lineage']}, serial {meta['serial']}")
        typer.echo(snapshots_table(st.snapshots()))


@state_app.command("show")
@handle_errors
def state_show(
    key: str = typer.Argument(None, help="An address, qualifiedName, name, GUID or Qualytics id (or a pattern like '*ORDERS*' with --at)."),
    at: str = typer.Option(None, "--at", metavar="SNAPSHOT|TIME", help="Show the state as qatlan saw it then: a snapshot id or a time (2026-05-01T12:00:00Z; the last snapshot at or before it)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Show what one asset looked like in each snapshot, or at one point in time (--at).

    Without --at: every stored version of the records KEY names. With --at: the records as
    that snapshot held them (KEY's, or every record when KEY is left out). Tags and custom
    metadata by display name.

    Example: qatlan state show default/snowflake/1700000001/SALES/PUBLIC/ORDERS --at 2026-05-01
    """
    from qatlan import audit, render

    if key is None and at is None:
        raise UsageError("state show needs KEY, --at, or both "
                               "(e.g. qatlan state show '*ORDERS*' --at 3)")
    with read_state(config, state) as st:
        if at is not None:
            sid, records = audit.state_at(st, at, key)
            taken_at = st.snapshot_info(sid)["taken_at"]
            if as_json:
                _echo_json({"snapshot_id": sid, "taken_at": taken_at, "records": records})
            else:
                typer.echo(render.state_at_text(sid, taken_at, records))
            if key is not None and not records:
                raise typer.Exit(1)
            return
        matches, histories = audit.readable_history(st, key)
    if as_json:
        _echo_json([{**m, "versions": [{"valid_from": v.span[0], "valid_to": v.span[1], "data": v.data}
                                       for v in histories[(m["kind"], m["key"])]]} for m in matches])
    else:
        typer.echo(render.record_history(matches, histories))
    if not matches:
        raise typer.Exit(1)


@state_app.command("diff")
@handle_errors
def state_diff(
    a: str = typer.Argument(None, metavar="[A]", help="The earlier snapshot: an id or a time (default: the one before the last)."),
    b: str = typer.Argument(None, metavar="[B]", help="The later snapshot: an id or a time (default: the last)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Show what changed between two snapshots, per record and attribute.

    Exits 0 whether or not they differ (`qatlan plan --detailed-exitcode` is the drift check).

    Example: qatlan state diff 12 14 --json | jq '.records[].name'
    """
    from qatlan import audit, render

    with read_state(config, state) as st:
        first, second, entries = audit.state_diff(st, a, b)
    if as_json:
        _echo_json({"from": first, "to": second, "records": [e.to_dict() for e in entries]})
    else:
        typer.echo(render.diff_text(first, second, entries))


@state_app.command("prune")
@handle_errors
def state_prune(
    keep_snapshots: int = typer.Option(None, "--keep-snapshots", metavar="N", min=1, help="Keep the newest N snapshots."),
    older_than: float = typer.Option(None, "--older-than", metavar="DAYS", min=0, help="Drop snapshots taken more than DAYS days ago."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> None:
    """Drop old snapshots and the plans made from them that were never applied, then VACUUM.

    The latest snapshot is always kept; with both options a snapshot goes only when both let
    it go. Every kept snapshot reads exactly as before, and every change qatlan applied stays
    in `qatlan log`. See docs/state.md#retention.

    Example: qatlan state prune --keep-snapshots 30
    """
    if keep_snapshots is None and older_than is None:
        raise fail("say what to keep: --keep-snapshots N or --older-than DAYS",
                   "e.g. qatlan state prune --keep-snapshots 30")
    path = Path(state) if state is not None else state_path(load(config), None)
    with open_state(path, create=False) as st, locked(st, "prune", lock_timeout):
        with st.run("prune") as run:
            result = st.prune(keep_snapshots=keep_snapshots, older_than_days=older_than)
            counts = {"snapshots": result.snapshots, "versions": result.versions_dropped,
                      "plans": result.plans}
            run.finish("ok", counts=counts)
    if result.keep_from is None:
        typer.echo("Nothing to prune: every snapshot is within what you asked to keep.")
        return
    mb = 1024 * 1024
    typer.echo(f"Pruned {result.snapshots} snapshot(s) before snapshot {result.keep_from}, "
               f"{result.versions_dropped} record version(s) and {result.plans} unapplied plan(s); "
               f"{result.bytes_before / mb:.1f} MB → {result.bytes_after / mb:.1f} MB.")


@commands.command()
@handle_errors
def log(
    asset: str = typer.Argument(..., metavar="ASSET", help="An Atlan qualifiedName, an address (atlan:QUALIFIED_NAME, qualytics:DATASTORE/CONTAINER or qualytics:DATASTORE/CONTAINER/FIELD), a name, a GUID, or a shell pattern ('*ORDERS*')."),
    since: str = typer.Option(None, "--since", metavar="TIME", help="Only events at or after this time (2026-05-01 or 2026-05-01T12:00:00Z)."),
    until: str = typer.Option(None, "--until", metavar="TIME", help="Only events at or before this time."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: {\"asset\": ASSET, \"events\": [...]}, every event with every field."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Show the timeline of one asset: every value seen on either side, every change qatlan
    planned and applied, with run, plan checksum, user@host and where the value came from.

    Example: qatlan log default/snowflake/1700000001/SALES/PUBLIC/ORDERS --since 2026-05-01
    """
    from qatlan import audit, render

    with read_state(config, state) as st:
        events = audit.asset_log(st, asset, since=since, until=until)
    if as_json:
        _echo_json({"asset": asset, "events": [e.to_dict() for e in events]})
    else:
        typer.echo(render.log_table(events, asset))


@commands.command()
@handle_errors
def audit(
    port: int = typer.Option(8001, "--port", min=0, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to listen on (127.0.0.1, localhost or ::1)."),
    config: Path = CONFIG_OPTION,
    state: Path = STATE_OPTION,
) -> None:
    """Browse the state read-only in a browser (Datasette; pip install 'qatlan[audit]').

    Tables linked by their foreign keys, the views of docs/state.md, and canned queries:
    asset timeline, asset versions, last apply, failed changes, conflicts by reason.

    Example: qatlan audit --state archived/qatlan.db --port 8001
    """
    import uvicorn

    from qatlan.audit import audit_app

    with read_state(config, state) as st:  # a state, readable: said here, not by Datasette
        path = Path(st.path)
    app = audit_app(path, host)
    typer.echo(f"Serving {path} read-only at http://{host}:{port}/ (Ctrl-C to stop).", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


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

    with read_state(config, state) as st:
        typer.echo(runs_table(st.runs(limit)))


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


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
