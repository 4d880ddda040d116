"""Runs: one row per refresh, plan, apply (or other command), from start to outcome.

`State.run(command)` is the one way a command records itself:

    with state.run("apply", plan_checksum=checksum) as run:
        ...                          # the work
        run.finish("ok", counts={...})

An exception leaving the block records `interrupted` (Ctrl-C, cancellation) or `error` with
its message, and is re-raised. A run killed before the block ends stays `running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from qatlan.errors import StateError
from qatlan.normalize import iso_utc
from qatlan.state.base import whoami, write_transaction

__all__ = ["RUN_OUTCOMES", "RunRecord", "finish_run", "last_run", "list_runs", "recorded_run", "start_run"]

#: what a run ends with; a run is `running` until then (`killed` is not among them: the next
#: run that finds the process gone records it, see `qatlan.state.locks`)
RUN_OUTCOMES = ("ok", "error", "interrupted")
#: longest message stored with a run
_MESSAGE_LIMIT = 2000


@dataclass
class RunRecord:
    """A run being recorded: its id, and how it ends (`finish` sets it; default `ok`)."""

    id: int
    outcome: str = "ok"
    counts: Mapping[str, Any] | None = None
    message: str | None = None
    _ended: bool = field(default=False, repr=False)

    def finish(self, outcome: str, counts: Mapping[str, Any] | None = None,
               message: str | None = None) -> None:
        if outcome not in RUN_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(RUN_OUTCOMES)}, not {outcome!r}")
        self.outcome, self.counts, self.message = outcome, counts, message


def start_run(db: Database, command: str, plan_checksum: str | None = None) -> int:
    """Insert a `running` run; joins the caller's transaction if there is one."""
    user, host, pid = whoami()
    row = {"command": command, "started_at": iso_utc(), "outcome": "running",
           "user": user, "host": host, "pid": pid, "plan_checksum": plan_checksum}
    with write_transaction(db):
        return db["runs"].insert(row).last_pk


def finish_run(db: Database, run_id: int, outcome: str, counts: Mapping[str, Any] | None = None,
               message: str | None = None) -> None:
    if outcome not in RUN_OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(RUN_OUTCOMES)}, not {outcome!r}")
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE runs SET ended_at = ?, outcome = ?, counts = ?, message = ? WHERE id = ?",
            [iso_utc(), outcome, None if counts is None else json.dumps(dict(counts)),
             None if message is None else message[:_MESSAGE_LIMIT], run_id],
        )
    if cursor.rowcount == 0:
        raise StateError(f"the state has no run {run_id}")


@contextlib.contextmanager
def recorded_run(db: Database, command: str, plan_checksum: str | None = None,
                 run_id: int | None = None) -> Iterator[RunRecord]:
    """Record a run around a block; `run_id`: a run the caller started (`start_run`), which
    the block then finishes."""
    run = RunRecord(run_id if run_id is not None else start_run(db, command, plan_checksum))
    try:
        yield run
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
        finish_run(db, run.id, "interrupted" if interrupted else "error",
                   message=str(exc) or type(exc).__name__)
        raise
    finish_run(db, run.id, run.outcome, run.counts, run.message)


def _rows(db: Database, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, args)
    columns = [c[0] for c in cursor.description]
    out = [dict(zip(columns, row)) for row in cursor]
    for run in out:
        run["counts"] = None if run["counts"] is None else json.loads(run["counts"])
    return out


def list_runs(db: Database, limit: int | None = None) -> list[dict[str, Any]]:
    """Past runs, newest first (counts decoded)."""
    sql = "SELECT * FROM runs ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
    return _rows(db, sql, [limit] if limit is not None else [])


def last_run(db: Database, command: str) -> dict[str, Any] | None:
    """The newest run of `command`, or None."""
    found = _rows(db, "SELECT * FROM runs WHERE command = ? ORDER BY id DESC LIMIT 1", [command])
    return found[0] if found else None
