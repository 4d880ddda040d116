"""Opening the state file: what it must be, and its versioned migrations.

Migrations are `sqlite_utils.Migrations` steps (recorded in `_sqlite_migrations`, set
`qatlan`); each step also writes its number to `meta.schema_version`, which is what the
version check reads. A file is accepted when it is empty or new, or when it is an SQLite
database with qatlan's `meta` table; anything else is refused untouched.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from qatlan import __version__
from qatlan.errors import StateError
from qatlan.normalize import iso_utc
from qatlan.state.base import write_transaction

MIGRATIONS = Migrations("qatlan")
_STEPS: list[str] = []


def _step(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    """Register `fn` as the next migration; it also records its number in meta."""
    number = len(_STEPS) + 1
    name = f"{number:04d}_{fn.__name__.lstrip('_')}"

    def run(db: Database) -> None:
        fn(db)
        db.execute("UPDATE meta SET schema_version = ?", [number])

    run.__name__ = name
    MIGRATIONS(name=name)(run)
    _STEPS.append(name)
    return fn


@_step
def _initial(db: Database) -> None:
    db["meta"].create(
        {"id": int, "lineage": str, "serial": int, "schema_version": int, "created_at": str},
        pk="id",
        not_null={"lineage", "serial", "schema_version", "created_at"},
    )
    db["meta"].insert(
        {"id": 1, "lineage": str(uuid.uuid4()), "serial": 0, "schema_version": 0,
         "created_at": iso_utc()}
    )
    db["runs"].create(
        {"id": int, "command": str, "started_at": str, "ended_at": str, "outcome": str,
         "counts": str, "message": str, "user": str, "host": str, "pid": int},
        pk="id",
        not_null={"command", "started_at", "outcome"},
    )
    db["snapshots"].create(
        {"id": int, "taken_at": str, "complete": int, "missing": str, "run_id": int,
         "serial": int, "counts": str, "changes": str, "watermarks": str},
        pk="id",
        not_null={"taken_at", "complete", "missing", "counts", "changes", "watermarks"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    _create_records(db)
    db["ownership"].create(
        {"address": str, "value": str, "run_id": int, "plan_id": int, "updated_at": str},
        pk="address",
        not_null={"value", "updated_at"},
    )
    db["lock"].create(
        {"id": str, "user": str, "host": str, "pid": int, "command": str, "since": str},
        pk="id",
    )
    # at most one row: every row has the same value for the expression (1)
    db.execute("CREATE UNIQUE INDEX lock_single_row ON lock((1))")


def _create_records(db: Database) -> None:
    db["records"].create(
        {"id": int, "kind": str, "key": str, "hash": str, "data": str,
         "valid_from": int, "valid_to": int},
        pk="id",
        not_null={"kind", "key", "hash", "data", "valid_from"},
        foreign_keys=[("valid_from", "snapshots", "id"), ("valid_to", "snapshots", "id")],
    )
    db["records"].create_index(["kind", "key"])
    db["records"].create_index(["valid_from"])
    db["records"].create_index(["valid_to"])


@_step
def _plans_and_journal(db: Database) -> None:
    # every plan qatlan made (body: zlib-compressed plan JSON), for audit and `apply`
    db["plans"].create(
        {"id": int, "created_at": str, "run_id": int, "snapshot_id": int, "lineage": str,
         "serial": int, "checksum": str, "summary": str, "body": bytes},
        pk="id",
        not_null={"created_at", "lineage", "serial", "checksum", "summary", "body"},
    )
    # one row per change of a plan that apply has settled, committed as soon as known
    db["journal"].create(
        {"id": int, "plan_checksum": str, "address": str, "action": str, "outcome": str,
         "error": str, "run_id": int, "at": str},
        pk="id",
        not_null={"plan_checksum", "address", "action", "outcome", "at"},
    )
    db["journal"].create_index(["plan_checksum", "address"], unique=True)
    # Qualytics containers qatlan wrote to since the last refresh: re-read their fields
    db["refresh_hints"].create({"kind": str, "key": str, "run_id": int}, pk=("kind", "key"))


@_step
def _runs_plan_checksum(db: Database) -> None:
    # the plan an apply run works on, in its own column (it was the text of `runs.message`,
    # "applying plan <checksum>", while the run was going); runs are looked up by command
    db["runs"].add_column("plan_checksum", str)
    db.execute(
        "UPDATE runs SET plan_checksum = substr(message, 15, 64) "
        "WHERE command = 'apply' AND message LIKE 'applying plan %'"
    )
    db["runs"].create_index(["command", "id"])


@_step
def _container_reads(db: Database) -> None:
    # when refresh last read each Qualytics container's fields (epoch seconds), so that none
    # is older than [qualytics] max_field_age; not part of any snapshot's content
    db["container_reads"].create({"container_id": int, "read_at": float}, pk="container_id",
                                 not_null={"read_at"})


@_step
def _journal_intents(db: Database) -> None:
    # write-ahead intents: a change is journaled `intent` before its request is sent; the
    # next command finds the open ones (few, usually none) through this partial index
    db.execute("CREATE INDEX IF NOT EXISTS journal_intents ON journal (plan_checksum) "
               "WHERE outcome = 'intent'")


@_step
def _plan_inputs(db: Database) -> None:
    # what a plan was computed from (`plans.inputs`, a digest of the state's serial, what
    # qatlan owns, the settings and qatlan's version): a plan whose inputs match a stored
    # one is that plan again, so it is not recomputed. `meta.owned_serial` moves with every
    # write to `ownership` (the triggers), so the digest never has to read that table.
    db["plans"].add_column("inputs", str)
    db["plans"].create_index(["inputs"])
    db["meta"].add_column("owned_serial", int, not_null_default=0)
    _ownership_triggers(db)


def _ownership_triggers(db: Database) -> None:
    for event in ("INSERT", "UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER IF NOT EXISTS ownership_{event.lower()} AFTER {event} ON "
                   "ownership BEGIN UPDATE meta SET owned_serial = owned_serial + 1; END")


@_step
def _audit(db: Database) -> None:
    # issue 14: a state any SQLite tool can audit. Each planned change and conflict is a row
    # (a plan reused unchanged points at its twin's rows: `plans.changes_from`); journal rows
    # carry the plan id and the change's before/after; runs, snapshots, plans, changes and
    # journal are linked by foreign keys (declared for tools such as Datasette; SQLite does
    # not enforce them unless a connection asks); documented views answer the usual questions.
    db["plans"].add_column("changes_from", int)
    db["plan_changes"].create(
        {"id": int, "plan_id": int, "address": str, "asset": str, "part": str, "action": str,
         "before": str, "after": str, "reason": str, "source": str},
        pk="id", not_null={"plan_id", "address", "asset", "part", "action"},
        foreign_keys=[("plan_id", "plans", "id")],
    )
    db["plan_changes"].create_index(["plan_id", "address"], unique=True)
    db["plan_changes"].create_index(["asset"])
    db["plan_changes"].create_index(["address"])
    db["plan_changes"].create_index(["source"])
    db["plan_conflicts"].create(
        {"id": int, "plan_id": int, "address": str, "asset": str, "rule": str, "message": str},
        pk="id", not_null={"plan_id", "address", "asset", "rule", "message"},
        foreign_keys=[("plan_id", "plans", "id")],
    )
    db["plan_conflicts"].create_index(["plan_id"])
    db["plan_conflicts"].create_index(["asset"])
    for column in ("plan_id", "before", "after"):
        db["journal"].add_column(column, int if column == "plan_id" else str)
    db.add_foreign_keys([
        ("plans", "run_id", "runs", "id"), ("plans", "snapshot_id", "snapshots", "id"),
        ("plans", "changes_from", "plans", "id"),
        ("journal", "run_id", "runs", "id"), ("journal", "plan_id", "plans", "id"),
        ("ownership", "run_id", "runs", "id"), ("ownership", "plan_id", "plans", "id"),
        ("refresh_hints", "run_id", "runs", "id"),
    ])
    _ownership_triggers(db)  # rebuilding `ownership` for its foreign keys dropped them
    db["journal"].create_index(["plan_id", "address"])
    db["runs"].create_index(["started_at"])
    # existing states: the stored plans' changes as rows, and the journal linked to them
    from qatlan.state.plans import backfill_rows

    backfill_rows(db)
    for sql in VIEWS.values():
        db.execute(sql)


#: the documented views (docs/state.md#views), created by the `_audit` migration
VIEWS = {
    "planned_changes": """
CREATE VIEW planned_changes AS
SELECT p.id AS plan_id, p.checksum AS plan_checksum, p.created_at AS planned_at,
       p.run_id AS plan_run_id, p.snapshot_id, c.asset, c.address, c.part, c.action,
       c.before, c.after, c.source, c.reason
FROM plans p JOIN plan_changes c ON c.plan_id = coalesce(p.changes_from, p.id)""",
    "asset_changes": """
CREATE VIEW asset_changes AS
SELECT j.at, j.outcome, c.asset, j.address, c.part, j.action, j.before, j.after, c.source,
       c.reason, j.error, j.plan_id, j.plan_checksum, j.run_id, r.user, r.host
FROM journal j
LEFT JOIN plans p ON p.id = j.plan_id
LEFT JOIN plan_changes c ON c.plan_id = coalesce(p.changes_from, p.id) AND c.address = j.address
LEFT JOIN runs r ON r.id = j.run_id""",
    "failed_changes": """
CREATE VIEW failed_changes AS
SELECT * FROM asset_changes WHERE outcome IN ('failed', 'drifted', 'intent')""",
    "latest_values": """
CREATE VIEW latest_values AS
SELECT r.kind, r.key, coalesce(json_extract(r.data, '$.qualified_name'),
       json_extract(r.data, '$.name'), json_extract(r.data, '$.display_name')) AS name,
       r.data, r.valid_from AS since_snapshot, s.taken_at AS since
FROM records r JOIN snapshots s ON s.id = r.valid_from WHERE r.valid_to IS NULL""",
    "record_versions": """
CREATE VIEW record_versions AS
SELECT r.kind, r.key, coalesce(json_extract(r.data, '$.qualified_name'),
       json_extract(r.data, '$.name'), json_extract(r.data, '$.display_name')) AS name,
       r.data, r.valid_from, f.taken_at AS observed_from, r.valid_to, t.taken_at AS observed_until
FROM records r JOIN snapshots f ON f.id = r.valid_from LEFT JOIN snapshots t ON t.id = r.valid_to""",
}


@_step
def _record_names(db: Database) -> None:
    # `qatlan log` finds an asset's versions by qualifiedName or name without reading every
    # record. `kind` leads each index so that SQLite prefers it to the (kind, key) index for
    # `kind = ? AND json_extract(...) = ?` without statistics; partial, so only these kinds pay
    db.execute("DROP INDEX IF EXISTS records_qualified_name")  # an earlier, single-column form
    _field_indexes(db, (("records_asset_qualified_name", "a.asset", "qualified_name"),
                        ("records_asset_name", "a.asset", "name"),
                        ("records_container_name", "q.container", "name"),
                        ("records_field_container", "q.field", "container_id")))


def _field_indexes(db: Database, specs: tuple[tuple[str, str, str], ...]) -> None:
    """Partial indexes (name, record kind, JSON field) on `(kind, json_extract(data, field))`,
    over the records of that kind only."""
    for name, kind, field in specs:
        db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON records "
                   f"(kind, json_extract(data, '$.{field}')) WHERE kind = '{kind}'")


@_step
def _partition_indexes(db: Database) -> None:
    # issue 13: a plan reads one datastore at a time (qatlan.state.partitions): its containers
    # by datastore, their fields (records_field_container), the Atlan assets in a range of
    # qualifiedNames (records_asset_qualified_name) and the Links on those assets; the shared
    # part holds the assets of other types (schemas), found by type (records_asset_type)
    _field_indexes(db, (("records_container_datastore", "q.container", "datastore_id"),
                        ("records_link_asset", "a.link", "asset_guid"),
                        ("records_asset_type", "a.asset", "type_name")))


@_step
def _watch(db: Database) -> None:
    # issue 15: `qatlan watch`'s work queue and watermarks live in the state, so a restart
    # (or a SIGKILL) loses no key: a key leaves the queue only once its reconcile finished
    db["watch_queue"].create(
        {"key": str, "due": float, "first_seen": float, "last_seen": float, "events": int,
         "attempts": int, "source": str},
        pk="key", not_null={"due", "first_seen", "last_seen", "events", "attempts"})
    db["watch_queue"].create_index(["due"])
    db["watch_marks"].create({"name": str, "value": str}, pk="name", not_null={"value"})


@_step
def _echo_stamps(db: Database) -> None:
    # issue 15: an Atlan asset's update time before and after each write qatlan made to it,
    # so that a poll can tell qatlan's own writes (an echo) from a person's change
    db["echo_stamps"].create({"guid": str, "before_ms": int, "after_ms": int},
                             pk=("guid", "before_ms", "after_ms"))
    db["echo_stamps"].create_index(["after_ms"])


@_step
def _watch_updates(db: Database) -> None:
    # issue 15: the (GUID, updateTime) pairs of the Atlan events that queued a key, while every event
    # for it named one (NULL once any other event or a poll named the key): a key whose
    # events were all qatlan's own writes is dropped without a reconcile
    db["watch_queue"].add_column("updates", str)


@_step
def _plan_spans(db: Database) -> None:
    # issue 13: a plan made again from the same inputs is its twin's body with `base` and
    # `created_at` replaced. `spans`: where the base, changes and created_at values sit in
    # the body's JSON text; `base`: the plan's own base (a repeat's body is empty and read
    # from its twin's, `changes_from`); `tally`: the counts its summaries need
    # (`qatlan.plan.model.tally`), so a repeat is summarised without reading its changes
    for column in ("spans", "base", "tally"):
        db["plans"].add_column(column, str)


SCHEMA_VERSION = len(_STEPS)


# --------------------------------------------------------------------------- opening


def connect(path: str | Path, *, create: bool, busy_timeout: float) -> Database:
    """Open (and create or migrate) the state database at `path`."""
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path)
        _check_file(path, create)
        _check_writable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
        try:
            _check_sqlite(conn, path)
        except StateError:
            conn.close()
            raise
        db = Database(conn, execute_plugins=False)
        _check_tables(db, path, create)
        if not memory:
            _enable_wal(db, busy_timeout)
            # FULL: each commit is on disk before the next request goes out, so an intent
            # journaled before a write survives a power loss too, not only a killed process
            db.execute("PRAGMA synchronous=FULL")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise _read_only(path) from None
        raise StateError(f"{path}: cannot open the state: {exc}") from None
    return db


def _check_writable(path: Path) -> None:
    """Refuse, in one line, to write a state on a read-only mount or without write permission
    on the file or its folder (SQLite needs the folder for its `-wal` and `-shm` files, and
    to create a new state)."""
    if path.exists():
        if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            raise _read_only(path)
    elif path.parent.is_dir() and not os.access(path.parent, os.W_OK):
        raise StateError(f"cannot create the state {path}: its folder {path.parent} cannot be written",
                         hint="pass --state PATH (or set QATLAN_STATE) to a writable place, or fix "
                              "the folder's permissions")


def _read_only(path: str | Path) -> StateError:
    return StateError(
        f"the state {path} is read-only (its file or folder cannot be written); this command "
        "writes the state",
        hint="copy it somewhere writable to run refresh, plan or apply; the read commands "
             "(history, log, show, state list/show/diff) work on it as it is",
    )


#: what the read commands need; a state with these but older migrations pending (indexes,
#: columns they do not read) is read as it is
READ_TABLES = frozenset({"plan_changes", "plan_conflicts", "journal", "records", "snapshots", "runs"})


def connect_readonly(path: str | Path, *, busy_timeout: float) -> Database:
    """Open the state at `path` for reading only (`mode=ro`): nothing is created, migrated or
    written, so a state on a read-only mount or an archived copy can be audited. A file in
    WAL mode whose folder is not writable and that has no `-shm` file beside it cannot be
    opened `mode=ro`; it is opened `immutable=1` then (nobody can be writing to it there).
    A state made before the audit tables is migrated in memory, never on disk; one that
    lacks only later indexes is read as it is."""
    path = Path(path)
    _check_file(path, create=False)
    conn = None
    try:
        conn = _open_ro(path, busy_timeout)
        _check_sqlite(conn, path)
        db = Database(conn, execute_plugins=False)
        _check_tables(db, path, create=False)
        if MIGRATIONS.pending(db) and not READ_TABLES <= set(db.table_names()):
            # made before the audit tables: read a migrated copy (memory the size of the file;
            # any write command migrates the file itself once)
            memory = sqlite3.connect(":memory:", isolation_level=None)
            conn.backup(memory)
            conn.close()
            db = Database(memory, execute_plugins=False)
            migrate(db)
        return db
    except StateError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path}: cannot open the state to read it: {exc}") from None


def _open_ro(path: Path, busy_timeout: float) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=busy_timeout, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc):
            raise
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)


def _enable_wal(db: Database, busy_timeout: float) -> None:
    """WAL mode (persistent in the file, so only a new file switches). Two processes that
    create the state at once may both try to switch: SQLite then refuses one at once with
    "database is locked" instead of waiting, so that one tries again until the timeout."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _check_file(path: Path, create: bool) -> None:
    """Refuse a folder, or a missing state when not creating. The file is never opened here:
    see `_check_sqlite`."""
    if path.is_dir():
        raise StateError(f"{path} is a folder, not a state file", hint="set [state] path to a file")
    if not create and (not path.exists() or path.stat().st_size == 0):
        raise StateError(f"no qatlan state at {path}", hint="run `qatlan refresh` to create it")


def _check_sqlite(conn: sqlite3.Connection, path: str | Path) -> None:
    """Refuse a file that is not an SQLite database, reading its header through SQLite.

    Never with `open()`: POSIX file locks belong to the process, and closing *any* descriptor
    of the file drops every lock the process holds on it, those of its open SQLite
    connections included. Another process then takes itself for the last user, checkpoints
    and deletes the WAL index those connections still map, and their view of the state is
    "database disk image is malformed" (a write through it would corrupt the file). SQLite's
    own descriptors are shared between a process's connections, so reading through SQLite
    keeps the locks.
    """
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_NOTADB:
            raise
        raise StateError(
            f"{path} is not a qatlan state: it is not an SQLite database; qatlan left it alone",
            hint="point [state] path in qatlan.toml at a new file, or move this one away",
        ) from None


def _check_tables(db: Database, path: str | Path, create: bool) -> None:
    names = [n for n in db.table_names() if not n.startswith("sqlite_")]
    if "meta" in names and {"lineage", "serial", "schema_version"} <= set(db["meta"].columns_dict):
        row = db.execute("SELECT schema_version FROM meta").fetchone()
        _check_version(row[0] if row else 0, path)
        return
    others = [n for n in names if n != MIGRATIONS.migrations_table]
    if others:
        raise StateError(
            f"{path} is an SQLite database but not a qatlan state (it has tables "
            f"{', '.join(sorted(others)[:5])}, and no qatlan meta table); qatlan left it alone",
            hint="point [state] path in qatlan.toml at a new file",
        )
    if not create:
        raise StateError(f"no qatlan state at {path}", hint="run `qatlan refresh` to create it")


def _check_version(version: int, path: str | Path) -> None:
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path} was made by a newer qatlan (state schema version {version}; "
            f"qatlan {__version__} knows versions up to {SCHEMA_VERSION}); upgrade qatlan",
            hint="pip install --upgrade qatlan",
        )


def migrate(db: Database, migrations: Migrations = MIGRATIONS) -> None:
    """Apply pending migrations, all under one write lock (a second process waits, then
    finds nothing pending). Each step and its record commit together or not at all."""
    if not migrations.pending(db):
        return
    with write_transaction(db):
        migrations.apply(db)
