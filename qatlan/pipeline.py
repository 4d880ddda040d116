"""The planning pipeline, as a library: config and state in, a stored `Plan` out.

    from qatlan.config import load_config
    from qatlan.pipeline import PlanOptions, make_plan
    from qatlan.state import State

    with State.open("state/qatlan.db") as state:
        plan = make_plan(load_config("qatlan.toml"), state, PlanOptions(pull_only=True))

`make_plan` refreshes (unless `refresh=False`), matches, plans with the pure planner, applies
the mass-removal rule, stores the plan in the state's `plans` table and records a `plan` run
(`make_stored_plan` also returns the stored plan's checksum, so callers need not compute it).
`check_not_stale` is the Terraform-style lineage/serial check a saved plan must pass before
apply. The CLI (`qatlan plan`, `qatlan match`) is a thin shell over these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qatlan import __version__
from qatlan.apply import settle_open_intents
from qatlan.config import Config
from qatlan.errors import ConfigError, PlanFileError, StaleStateError, StateError
from qatlan.match import MatchResult, match, resolve_domains
from qatlan.model import Snapshot
from qatlan.normalize import iso_utc
from qatlan.plan import Plan, PlanFileWriter, SavedPlan, peek_plan_file, read_saved_plan, signature_ok
from qatlan.planner import (
    ChangeSink,
    PlanSettings,
    check_removals,
    human_tag_names,
    outside_assets,
    owned_item_count,
    owned_tag_index,
    plan_partitioned,
    scope,
)
from qatlan.refresh import OLDEST_FIELD_READ, refresh
from qatlan.state import State

__all__ = [
    "PLAN_KEY_ENV",
    "PlanOptions",
    "check_applicable",
    "check_not_stale",
    "check_patterns",
    "make_plan",
    "make_stored_plan",
    "match_report",
    "open_saved_plan",
    "options_of",
    "plan_inputs",
    "settings_from",
]

ProgressFn = Callable[[str, int, "int | None"], None]
#: the environment variable holding the key that signs plan files travelling between machines
PLAN_KEY_ENV = "QATLAN_PLAN_KEY"


@dataclass(frozen=True)
class PlanOptions:
    """What one `qatlan plan` run asks for, on top of qatlan.toml."""

    refresh: bool = True  # False: plan from the latest snapshot (--no-refresh)
    full_refresh: bool = False  # --full
    pull_only: bool = False  # Atlan → Qualytics only
    push_only: bool = False  # Qualytics → Atlan only
    targets: tuple[str, ...] = ()  # --target patterns (shell wildcards)
    excludes: tuple[str, ...] = ()  # --exclude patterns
    create_definitions: bool | None = None  # plan missing definitions; None: [sync] create_definitions
    allow_mass_removal: bool = False  # accept removing more than max_removal_share


# --------------------------------------------------------------------------- config → planner


def check_patterns(patterns: tuple[str, ...], flag: str) -> None:
    """Refuse --target/--exclude patterns that cannot be what the user meant."""
    for p in patterns:
        problem = None
        if not p.strip():
            problem = "is empty"
        elif _unclosed_bracket(p):
            problem = "has a '[' without its ']'"
        if problem:
            raise ConfigError(
                f"{flag} {p!r} {problem}",
                hint="patterns are shell wildcards matched against addresses and asset names: "
                     "* any text, ? one character, [abc] one of a set (e.g. --target '*ORDERS*')",
            )


def _unclosed_bracket(pattern: str) -> bool:
    # fnmatch treats an unclosed [ as a literal, which is almost never what was meant
    return re.search(r"\[(?![^\]]*\])", pattern.replace("[]]", "").replace("[!]]", "")) is not None


def options_of(plan: Plan, config: Config, given: PlanOptions = PlanOptions()) -> PlanOptions:
    """The options `plan` was made with, where `given` (this run's flags) does not set them:
    definitions, direction, targets and excludes (not --allow-mass-removal, which is asked
    for again). Used to plan again for an apply that was interrupted and went stale."""
    s = plan.settings
    create = given.create_definitions
    if create is None and "create_definitions" in s:
        create = bool(s["create_definitions"])
    pull_only, push_only = given.pull_only, given.push_only
    if not (pull_only or push_only):
        pull_only = config.sync.push and s.get("push") is False and bool(s.get("pull"))
        push_only = config.sync.pull and s.get("pull") is False and bool(s.get("push"))
    return dataclasses.replace(
        given, create_definitions=create, pull_only=pull_only, push_only=push_only,
        targets=given.targets or tuple(s.get("targets") or ()),
        excludes=given.excludes or tuple(s.get("excludes") or ()),
    )


def settings_from(config: Config, options: PlanOptions = PlanOptions()) -> PlanSettings:
    """PlanSettings from qatlan.toml and the run's options; ConfigError for bad options."""
    if options.pull_only and options.push_only:
        raise ConfigError("--pull-only and --push-only exclude each other",
                          hint="pass one of them, or neither to sync both ways")
    check_patterns(tuple(options.targets), "--target")
    check_patterns(tuple(options.excludes), "--exclude")
    sync = config.sync
    return PlanSettings(
        pull=sync.pull and not options.push_only,
        push=sync.push and not options.pull_only,
        push_tags=sync.push_tags,
        announcements=sync.announcements,
        overwrite_tags=sync.overwrite_tags,
        domains=tuple(sync.domains),
        cm_set_name=config.atlan.custom_metadata_set,
        link_name=config.atlan.link_name,
        qualytics_ui_url=config.qualytics.ui_url or "",
        integration_id=config.qualytics.integration_id,
        max_removal_share=sync.max_removal_share,
        cm_edits=sync.cm_edits,
        create_definitions=(sync.create_definitions if options.create_definitions is None
                            else options.create_definitions),
        allow_mass_removal=options.allow_mass_removal,
        targets=tuple(options.targets),
        excludes=tuple(options.excludes),
    )


# --------------------------------------------------------------------------- pipeline


def _snapshot_id(config: Config, state: State, options: PlanOptions, now: Callable[[], float],
                 progress: ProgressFn | None, transports: Mapping[str, Any],
                 run_id: int | None = None) -> int:
    """The snapshot to plan from: a fresh refresh, or the latest one with refresh=False."""
    if options.refresh:
        return refresh(config, state, full=options.full_refresh, progress=progress, now=now,
                       **transports).snapshot_id
    # no refresh, so no settling by it: what an interrupted apply sent is read back here
    # (no request at all unless the journal holds open intents)
    settle_open_intents(config, state, run_id=run_id, now=now, **transports)
    snapshot_id = state.latest_snapshot_id()
    if snapshot_id is None:
        raise StateError("no snapshot yet: run qatlan refresh",
                         hint="or run `qatlan plan` without --no-refresh to read both sides first")
    return snapshot_id


def _snapshot(config: Config, state: State, options: PlanOptions, now: Callable[[], float],
              progress: ProgressFn | None, transports: Mapping[str, Any],
              run_id: int | None = None) -> tuple[int, Snapshot]:
    """(snapshot id, snapshot): a fresh refresh, or the latest one with refresh=False."""
    snapshot_id = _snapshot_id(config, state, options, now, progress, transports, run_id)
    return snapshot_id, state.load_snapshot(snapshot_id)


def make_plan(config: Config, state: State, options: PlanOptions = PlanOptions(), *,
              now: Callable[[], float] = time.time, progress: ProgressFn | None = None,
              **transports: Any) -> Plan:
    """Refresh (unless `options.refresh` is False), match, plan, check removals, store.

    The plan is stored in the state's `plans` table and a `plan` run is recorded (outcome
    `error` with the message when anything fails, including a refused mass removal).
    `transports` (`atlan_transport`, `qualytics_transport`) are test seams for the refresh.
    """
    return make_stored_plan(config, state, options, now=now, progress=progress, **transports)[0]


def make_stored_plan(config: Config, state: State, options: PlanOptions = PlanOptions(), *,
                     now: Callable[[], float] = time.time, progress: ProgressFn | None = None,
                     out: str | os.PathLike[str] | None = None, key: str | None = None,
                     lazy: bool = False, **transports: Any) -> tuple[Plan, str]:
    """`make_plan`, returning `(plan, plan_checksum(plan))` (the checksum comes from storing).

    With `out`, the plan is also saved to that file (`qatlan plan --out`, signed with `key`),
    from the same encoding that stores it: the plan is serialised once. The file's folder is
    checked before any work, and no file is left when planning fails or is refused.

    With nothing changed since a stored plan (same `plan_inputs`), that plan is stored again
    with this snapshot and time without being decoded (incremental planning at its
    coarsest: a query and a copy, not a walk).

    `lazy=True` is for callers that only show the plan (`qatlan plan`): each datastore's
    changes are spilled to a temporary file as soon as they are planned, and the plan comes
    back with its changes left in the state (`StoredChanges`: counted and listed asset by
    asset on demand, decoded whole only when walked). Memory then follows the largest
    datastore, not the plan. Otherwise the changes are in memory, as `Change` objects.
    """
    settings = settings_from(config, options)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(PlanFileWriter(out)) if out is not None else None
        tee = writer.write if writer else None
        with state.run("plan") as run:
            snapshot_id = _snapshot_id(config, state, options, now, progress, transports, run.id)
            base = _base(config, state, snapshot_id)
            inputs = plan_inputs(config, settings, base, state.owned_serial)
            twin = state.plan_by_inputs(inputs)
            if twin is None:
                # the snapshot is freed when _plan returns, before the plan is stored; with
                # lazy, each datastore's changes are spilled to a file as they are planned
                sink = stack.enter_context(state.change_spill()) if lazy else None
                result, owned = _plan(config, state, settings, snapshot_id, base, now, sink)
                check_removals(result, owned_item_count(owned), settings)
                checksum = state.save_plan(result, run.id, tee=tee, inputs=inputs)
                if lazy:  # listed from the rows just stored; the spill goes
                    result = state.stored_changes(result, checksum)
            else:
                checksum, result = state.save_repeat(twin, base, iso_utc(now()), run.id,
                                                     tee=tee, inputs=inputs)
                if not lazy:
                    result = dataclasses.replace(result, changes=tuple(result.changes))
            if writer is not None:
                writer.commit(checksum, key)
            run.finish("ok", counts=result.summary())
    return result, checksum


def _base(config: Config, state: State, snapshot_id: int) -> dict[str, Any]:
    """What a plan of `snapshot_id` is built from: `Plan.base`."""
    base: dict[str, Any] = {"lineage": state.lineage, "serial": state.serial, "snapshot_id": snapshot_id}
    oldest = state.watermarks(snapshot_id).get(OLDEST_FIELD_READ)
    if oldest is not None:  # what the plan relies on: the oldest Qualytics field read
        base["oldest_field_read"] = iso_utc(float(oldest))
        base["max_field_age"] = config.qualytics.max_field_age
    info = state.snapshot_info(snapshot_id)
    if not info["complete"]:
        base["missing"] = list(info["missing"])
    return base


def plan_inputs(config: Config, settings: PlanSettings, base: Mapping[str, Any],
                owned_serial: int) -> str:
    """A digest of everything the planner's answer depends on: the snapshot's content (the
    state's lineage and serial: the serial moves whenever a refresh saw a change), what qatlan
    owns (`owned_serial` moves with every write to it), the settings and mappings, what the
    plan records in `base` (the snapshot id aside: a refresh that saw nothing new makes a
    new snapshot of the same content) and this qatlan's version. Two plans with the same
    inputs have the same changes."""
    payload = {
        "qatlan": __version__,
        "settings": dataclasses.asdict(settings),
        "mappings": [m.model_dump(mode="json") for m in config.mappings],
        "base": {k: v for k, v in base.items() if k != "snapshot_id"},
        "owned_serial": owned_serial,
    }
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _plan(config: Config, state: State, settings: PlanSettings, snapshot_id: int,
          base: Mapping[str, Any], now: Callable[[], float],
          sink: ChangeSink | None = None) -> tuple[Plan, dict[str, Any]]:
    """The plan of `snapshot_id` and the ownership it was made with (read after the refresh,
    which may have recorded writes of an interrupted apply).

    Planned one matched datastore at a time (`plan_partitioned`): the shared part of the
    snapshot is loaded once, each datastore's records are read, planned and dropped before
    the next, so memory follows the largest datastore, not the tenant."""
    owned = state.owned()
    shared = state.load_shared(snapshot_id)
    used = state.used_domains(snapshot_id) if settings.domains else None
    sc = scope(shared, settings, config.mappings, used)
    extra = outside_assets(owned, sc.prefixes)
    if extra:
        shared = state.load_shared(snapshot_id, extra)
    human = None
    if settings.overwrite_tags:
        display = {h: d.display_name for h, d in shared.tag_defs.items()}
        human = human_tag_names(state.tagged_assets(snapshot_id), owned_tag_index(owned), display)
    parts = (state.load_part(snapshot_id, ds_id, prefix) for ds_id, prefix in sc.prefixes.items())
    result = plan_partitioned(shared, parts, settings, rules=config.mappings, owned=owned,
                              human_tags=human, scope_=sc, base=dict(base),
                              created_at=iso_utc(now()), sink=sink)
    return result, owned


def match_report(config: Config, state: State, options: PlanOptions = PlanOptions(), *,
                 now: Callable[[], float] = time.time, progress: ProgressFn | None = None,
                 **transports: Any) -> tuple[MatchResult, Snapshot]:
    """Refresh (unless `options.refresh` is False) and match; nothing is planned or stored."""
    _, snapshot = _snapshot(config, state, options, now, progress, transports)
    domain_guids = None
    if config.sync.domains:
        domain_guids = resolve_domains(snapshot.domains, config.sync.domains, snapshot.assets)
    return match(snapshot, config.mappings, domain_guids), snapshot



# --------------------------------------------------------------------------- stale plans


def open_saved_plan(path: str | os.PathLike[str], state: State) -> SavedPlan:
    """A saved plan file, checked as `read_saved_plan` does, for applying with `state`.

    When `state` stored the very plan the file holds (the file's plan bytes hash to its
    checksum, and the state recorded a plan with that checksum: `peek_plan_file`), the plan
    comes from the state with its changes left there, streamed one at a time by apply: the
    file is hashed, not parsed, and memory does not follow the plan's size. Any other file
    (a signed plan from another machine, an edited one) is read whole and checked."""
    peeked = peek_plan_file(path)
    if peeked is not None:
        plan = state.load_plan(peeked[0], lazy=True)
        if plan is not None:
            return SavedPlan(plan, *peeked)
    return read_saved_plan(path)


def check_applicable(saved: SavedPlan, state: State, key: str | None = None) -> None:
    """Refuse a saved plan that this state did not make, whatever checksum it carries: its
    checksum must be one the state recorded when it made a plan, or the file must be signed
    with `key` (QATLAN_PLAN_KEY, for plans that travel between machines). Then the stale
    checks (`check_not_stale`). Raises PlanFileError / StaleStateError."""
    if saved.plan.base.get("lineage") != state.lineage:
        check_not_stale(saved.plan, state)  # another state database: that message first
    recorded = state.plan_id(saved.checksum) is not None
    if not recorded and not (key and signature_ok(saved, key)):
        signed = " or signed with the key in QATLAN_PLAN_KEY" if key else ""
        raise PlanFileError(
            f"this plan was not made with this state{signed}: no plan with its checksum "
            f"{saved.checksum[:12]} was ever recorded here, so it may have been edited "
            "(an edited plan is refused whatever checksum it carries)",
            hint=f"make the plan with this state (`qatlan plan --out FILE --state ...`), or, for "
                 f"plans that travel between machines, set {PLAN_KEY_ENV} to the same secret "
                 "for `qatlan plan` and `qatlan apply`",
        )
    check_not_stale(saved.plan, state)


def check_not_stale(plan: Plan, state: State) -> None:
    """Refuse a saved plan whose state moved on (Terraform's two checks, two messages).

    A different lineage means another state database; a different serial means a refresh
    saw changes since the plan was made. Raises StaleStateError.
    """
    lineage, serial = plan.base.get("lineage"), plan.base.get("serial")
    if lineage != state.lineage:
        raise StaleStateError(
            "the plan was made against a different state database "
            f"(plan lineage {lineage}, state {state.path} has lineage {state.lineage})",
            hint="apply it with the state it was made with (--state PATH), or make a new plan",
        )
    if serial != state.serial:
        raise StaleStateError(
            "Saved plan is stale: the state changed since the plan was made; "
            "run `qatlan plan` again",
            hint=f"the plan was made at state serial {serial}; the state is now at serial "
                 f"{state.serial} (a refresh saw changes on either side)",
        )
