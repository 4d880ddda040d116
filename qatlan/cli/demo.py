"""`qatlan demo`: the whole loop against an in-process sandbox, with no setup at all.

    run_demo(None, emit=print)        # a temporary folder, removed at the end
    run_demo(Path("demo"), emit=print)  # keep qatlan.toml, state/qatlan.db and plan.json

Generates a small sandbox world, serves both APIs inside this process (no sockets, no
network), writes a throwaway qatlan.toml and state, and runs refresh → match → plan (saved)
→ apply → plan again, then shows the run history and how to do the same for real. The
sandbox's fake tokens are handed to the config in memory only: nothing is exported to the
environment or written to a file. Text goes to `emit`; nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from qatlan import render
from qatlan.apply import apply_plan
from qatlan.cli.common import fail, handle_errors, locked
from qatlan.config import URL_ENV, Config, load_config
from qatlan.errors import QatlanError
from qatlan.pipeline import PlanOptions, check_applicable, make_plan, make_stored_plan, match_report
from qatlan.plan import Plan, read_saved_plan
from qatlan.refresh import refresh
from qatlan.state import State

if TYPE_CHECKING:  # the sandbox is imported only when the demo runs
    from qatlan.sandbox.server import Sandbox
    from qatlan.sandbox.world import World

__all__ = ["DEFAULT_SPEC", "DemoResult", "commands", "demo_config_text", "run_demo"]

commands = typer.Typer()

#: small enough to run in seconds, with every kind of mess the generator makes
# (seed 3: none of its Atlan tags collides with a Qualytics global tag; see docs/apply.md)
DEFAULT_SPEC = "tables=40,columns=6,seed=3"
ATLAN_URL = "http://atlan.sandbox"
QUALYTICS_URL = "http://qualytics.sandbox"
#: plan lines shown before the rest is left to plan.txt
PLAN_HEAD = 30

Emit = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    planned: int  # changes in the first plan
    applied: int  # changes applied or adopted
    converged: bool  # the plan after apply says "in sync"
    seconds: float


#: the first line of the demo's qatlan.toml: a folder whose qatlan.toml starts otherwise is not the demo's
DEMO_MARK = "# qatlan demo: a throwaway configuration for the in-process sandbox"


def _reuse(directory: Path) -> bool:
    """Make `directory` ready for a demo; True when an earlier demo's state was removed.

    Each demo generates its sandbox world anew, so an earlier demo's state describes a world
    that is gone (what it owned, what it created): it is removed, with its plan files. A
    folder holding a qatlan.toml or a state/ that no demo wrote is refused, never touched."""
    config, state = directory / "qatlan.toml", directory / "state"
    ours = config.is_file() and config.read_text(encoding="utf-8", errors="replace").startswith(DEMO_MARK)
    if not ours and (config.exists() or state.exists()):
        raise QatlanError(f"{directory} holds a qatlan.toml or state/ that the demo did not write; "
                          "the demo leaves it alone",
                          hint="give --dir a new or empty folder")
    if not ours:
        return False
    shutil.rmtree(state, ignore_errors=True)
    for name in ("plan.json", "plan.txt"):
        (directory / name).unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def _workspace(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="qatlan-demo-") as tmp:
        yield Path(tmp)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def demo_config_text(world: "World") -> str:
    """qatlan.toml for the sandbox world: its URLs, the Atlan integration, its mappings."""
    lines = [DEMO_MARK, "",
             "[atlan]", f'url = "{ATLAN_URL}"', "",
             "[qualytics]", f'url = "{QUALYTICS_URL}"', "integration_id = 1", "",
             "[state]", 'path = "state/qatlan.db"']
    for m in world.meta.get("mapping", []):
        if not m.get("visible_to_sync", True):
            continue
        entry = {"datastore_id": m["datastore_id"], "connection": m["connection_qualified_name"],
                 "database": m["database"], "schema": m["schema"]}
        lines += ["", "[[mappings]]", *(f"{k} = {_toml_value(v)}" for k, v in entry.items())]
    return "\n".join(lines) + "\n"


def _env(sandbox: "Sandbox") -> dict[str, str]:
    """The environment the demo's config reads: the sandbox's fake tokens, nothing else real."""
    tokens = sandbox.tokens
    atlan = tokens["atlan"].get("qualytics-sync") or next(iter(tokens["atlan"].values()))
    # the URL variables would point the demo's config at a real tenant: not passed on
    urls = {name for names in URL_ENV.values() for name in names}
    return {**{k: v for k, v in os.environ.items() if k not in urls}, "ATLAN_API_TOKEN": atlan,
            "QUALYTICS_API_TOKEN": next(iter(tokens["qualytics"].values()))}


def run_demo(directory: Path | None = None, *, spec: str = DEFAULT_SPEC, emit: Emit = lambda _: None,
             clock: Callable[[], float] = time.monotonic) -> DemoResult:
    """Run the demo in `directory` (a temporary folder when None); returns what happened."""
    from qatlan.sandbox.generate import generate_world
    from qatlan.sandbox.server import Sandbox
    from qatlan.sandbox.world import World

    started = clock()
    emit("qatlan demo: the whole loop against local Atlan and Qualytics sandboxes "
         "(in this process; no network, no real tokens).\n")
    world = World(generate_world(spec))
    sandbox = Sandbox(world)
    with _workspace(directory) as folder:
        again = directory is not None and _reuse(folder)
        (folder / "qatlan.toml").write_text(demo_config_text(world), encoding="utf-8")
        config = load_config(folder / "qatlan.toml", env=_env(sandbox))
        _intro(emit, spec, folder, directory is None, again)
        with State.open(config.state.path) as state, locked(state, "demo"):
            planned, applied, converged = _loop(config, state, sandbox, folder, emit)
            _history(emit, state)
    _next_steps(emit)
    return DemoResult(folder, planned, applied, converged, clock() - started)


def _intro(emit: Emit, spec: str, folder: Path, temporary: bool, again: bool) -> None:
    # no counts here: the refresh below says what qatlan reads (the generator's own totals
    # include what is out of sync's scope, and would disagree with it)
    emit(f"World `{spec}`: a generated Atlan and Qualytics, with case differences, ambiguous "
         "names, tag conflicts and people's announcements mixed in.")
    kept = "removed at the end; pass --dir DIR to keep it" if temporary else "kept"
    if again:
        kept += "; the previous demo's state was removed, as the world is generated anew"
    emit(f"Workspace: {folder} (qatlan.toml, state/qatlan.db; {kept}).")


def _transports(sandbox: "Sandbox") -> dict[str, Any]:
    return {"atlan_transport": sandbox.atlan_transport(),
            "qualytics_transport": sandbox.qualytics_transport()}


def _loop(config: Config, state: State, sandbox: "Sandbox", folder: Path, emit: Emit) -> tuple[int, int, bool]:
    transports = _transports(sandbox)
    _step(emit, "qatlan refresh", "read both sides into a snapshot in the state")
    emit(render.refresh_summary(refresh(config, state, **transports)))
    _step(emit, "qatlan match", "which Qualytics assets have an Atlan twin, and why the rest do not")
    result, snapshot = match_report(config, state, PlanOptions(refresh=False))
    emit(_head(render.match_report(result, snapshot), 24, "(the full report: `qatlan match`)"))
    _step(emit, "qatlan plan --out plan.json", "what apply would change")
    plan, _ = make_stored_plan(config, state, PlanOptions(refresh=False), out=folder / "plan.json")
    _show_plan(emit, plan, folder)
    _step(emit, "qatlan apply plan.json", "re-read each target, write in batches, journal each outcome")
    saved = read_saved_plan(folder / "plan.json")
    check_applicable(saved, state)
    applied = apply_plan(config, state, saved.plan, **transports)
    emit(render.apply_summary(applied))
    _step(emit, "qatlan plan", "refresh again: both sides now agree")
    again = make_plan(config, state, PlanOptions(), **transports)
    emit(_plan_text(again))
    n = applied.counts()
    return len(plan.changes), n["applied"] + n["adopted"], again.in_sync()


def _step(emit: Emit, command: str, what: str) -> None:
    emit(f"\n$ {command}    # {what}")


def _plan_text(plan: Plan) -> str:
    return render.human(plan)


def _head(text: str, limit: int, more: str) -> str:
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join([*lines[:limit], f"  ... {len(lines) - limit} more lines {more}"])


def _show_plan(emit: Emit, plan: Plan, folder: Path) -> None:
    text = _plan_text(plan)
    (folder / "plan.txt").write_text(text + "\n", encoding="utf-8")
    lines = text.splitlines()
    if len(lines) <= PLAN_HEAD + 12:
        emit(text)
        return
    tail = [i for i, line in enumerate(lines) if line.startswith("Plan:")]
    cut = tail[0] if tail else len(lines) - 1
    emit("\n".join(lines[:PLAN_HEAD]))
    emit(f"  ... {cut - PLAN_HEAD} more lines (the whole plan: plan.txt in the workspace)")
    emit("\n".join(lines[cut:]))


def _history(emit: Emit, state: State) -> None:
    _step(emit, "qatlan history", "every run is recorded in the state, newest first")
    emit(render.runs_table(state.runs()))


def _next_steps(emit: Emit) -> None:
    emit("\nThe same against your Atlan and Qualytics:\n"
         "  qatlan init --atlan-url https://YOUR-TENANT.atlan.com --qualytics-url https://YOUR-TENANT.qualytics.io\n"
         "  export ATLAN_API_TOKEN=...       # an Atlan API token whose persona can update the connections\n"
         "  export QUALYTICS_API_TOKEN=...   # a Qualytics token (Admin or Manager)\n"
         "  # in qatlan.toml: [qualytics] integration_id, and [[mappings]] for your datastores\n"
         "  qatlan refresh && qatlan match\n"
         "  qatlan plan --out plan.json\n"
         "  qatlan apply plan.json\n"
         "Docs: docs/apply.md (how apply works), docs/sandbox.md (the sandbox: `qatlan sandbox up`).")


@commands.command()
@handle_errors
def demo(
    directory: Path = typer.Option(None, "--dir", metavar="DIR", help="Keep the demo's config and state in DIR "
                                                      "(default: a temporary folder, removed after)."),
    spec: str = typer.Option(None, "--generate", metavar="SPEC", help="The sandbox world to generate "
                                                      "(default: a small one; see docs/sandbox.md)."),
) -> None:
    """The whole loop against a local sandbox: refresh, plan, apply, plan again.

    Needs no configuration, no tokens and no network: both APIs run in this process.

    Example: qatlan demo --dir demo
    """
    from qatlan.sandbox.errors import SandboxError

    try:
        result = run_demo(directory, spec=spec or DEFAULT_SPEC, emit=typer.echo)
    except SandboxError as exc:  # a bad --generate spec
        raise fail(str(exc), exc.hint) from None
    if not result.converged:
        raise fail("the demo's second plan is not empty: apply did not converge",
                   hint="please report this with the output above")
