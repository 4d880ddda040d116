"""The one-writer lock: a single row in the `lock` table, taken under BEGIN IMMEDIATE.

A lock whose holder is provably gone (same host, pid no longer running) is taken over by the
next run, which marks the dead holder's unfinished runs `killed`. A holder on another host, or
one whose pid is alive, is never second-guessed: `force_unlock` refuses a live same-host holder
unless forced.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from sqlite_utils import Database

from qatlan.normalize import iso_utc
from qatlan.state.base import whoami, write_transaction
from qatlan.state.runs import start_run
from qatlan.errors import LockError, StateError

#: seconds between attempts while waiting for a lock
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class LockInfo:
    """Who holds the state lock."""

    id: str
    user: str
    host: str
    pid: int
    command: str
    since: str
    #: the dead run's lock this one took over, if any (say so to the user)
    replaced: LockInfo | None = field(default=None, compare=False)
    #: the run recorded together with the lock (`acquire(..., plan_checksum=...)`), if any
    run_id: int | None = field(default=None, compare=False)

    @property
    def holder(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"

    @property
    def alive(self) -> bool:
        """True when the holder is a live process on this host (False: gone, or elsewhere)."""
        return is_alive_here(self)

    def describe(self) -> str:
        return f"{self.holder}, running `{self.command}` since {self.since} (lock id {self.id})"

    def takeover_note(self) -> str | None:
        """One line for the user when this lock replaced a dead run's; None otherwise."""
        if self.replaced is None:
            return None
        dead = self.replaced
        return (f"Note: took over the state lock of {dead.holder} (`{dead.command}` since "
                f"{dead.since}); that process is no longer running on {dead.host}. "
                f"Its unfinished run is recorded as killed.")


def read_lock(db: Database) -> LockInfo | None:
    row = db.execute("SELECT id, user, host, pid, command, since FROM lock").fetchone()
    return LockInfo(*row) if row else None


def try_acquire(db: Database, command: str, plan_checksum: str | None = None) -> tuple[bool, LockInfo]:
    """Take the lock if it is free or its holder is dead on this host: (True, our lock, with
    `replaced` set after a takeover) or (False, the live holder's). With `plan_checksum`, the
    run (`command`, working on that plan) is recorded in the same transaction: a process
    killed at any moment leaves both or neither."""
    with write_transaction(db):
        holder = read_lock(db)
        replaced = None
        if holder is not None:
            if not is_dead_here(holder):
                return False, holder
            db.execute("DELETE FROM lock WHERE id = ?", [holder.id])
            mark_killed(db, holder)
            replaced = holder
        user, host, pid = whoami()
        run_id = None if plan_checksum is None else start_run(db, command, plan_checksum)
        mine = LockInfo(str(uuid.uuid4()), user, host, pid, command, iso_utc(), replaced, run_id)
        db.execute(
            "INSERT INTO lock (id, user, host, pid, command, since) VALUES (?, ?, ?, ?, ?, ?)",
            [mine.id, mine.user, mine.host, mine.pid, mine.command, mine.since],
        )
        return True, mine


def acquire(
    db: Database,
    command: str,
    timeout: float = 0.0,
    *,
    plan_checksum: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> LockInfo:
    """Take the lock, polling for up to `timeout` seconds; else LockError naming the holder.
    `plan_checksum`: record the run with the lock (its id is `LockInfo.run_id`)."""
    deadline = clock() + max(timeout, 0.0)
    while True:
        ok, info = try_acquire(db, command, plan_checksum)
        if ok:
            return info
        remaining = deadline - clock()
        if remaining <= 0:
            raise lock_error(info, waited=timeout)
        sleep(min(POLL_INTERVAL, remaining))


def lock_error(holder: LockInfo, *, waited: float = 0.0) -> LockError:
    waited_text = f" (waited {waited:g} s)" if waited > 0 else ""
    if is_alive_here(holder):
        advice = (f"That process is still running on {holder.host}: wait for it "
                  f"(--lock-timeout SECONDS) or stop it first.")
    else:
        advice = (f"If that run is gone (it runs on another host, so qatlan cannot tell), "
                  f"release the lock with `qatlan force-unlock {holder.id}`.")
    return LockError(f"the state is locked by {holder.describe()}{waited_text}. {advice}")


def mark_killed(db: Database, holder: LockInfo) -> int:
    """Record the dead holder's unfinished runs as `killed` (inside the caller's transaction)."""
    return db.execute(
        "UPDATE runs SET outcome = 'killed', ended_at = ?, message = ? "
        "WHERE outcome = 'running' AND host = ? AND pid = ?",
        [iso_utc(), f"process {holder.pid} on {holder.host} ended without finishing "
                    f"(found by the next run; lock {holder.id})", holder.host, holder.pid],
    ).rowcount


def _here(holder: LockInfo) -> bool | None:
    """On this host: whether the holder's pid is a live process; None on another host."""
    _, host, _ = whoami()
    if holder.host != host or holder.pid <= 0:
        return None
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM)
        return True
    return True


def is_alive_here(holder: LockInfo) -> bool:
    """True when the holder runs on this host and its pid is a live process."""
    return _here(holder) is True


def is_dead_here(holder: LockInfo) -> bool:
    """True when the holder ran on this host and its process is gone (a lock to take over)."""
    return _here(holder) is False


def release(db: Database, lock_id: str) -> bool:
    """Drop the lock if `lock_id` still holds it; False when it did not (force-unlocked)."""
    with write_transaction(db):
        return db.execute("DELETE FROM lock WHERE id = ?", [lock_id]).rowcount > 0


def force_unlock(db: Database, lock_id: str, *, force: bool = False) -> LockInfo:
    """Remove the lock `lock_id`; StateError when that is not the lock, or when its holder is
    alive on this host and `force` is not set. The holder's unfinished runs become `killed`
    when it is provably gone."""
    with write_transaction(db):
        holder = read_lock(db)
        if holder is None:
            raise StateError(f"the state is not locked; there is no lock {lock_id} to release")
        if holder.id != lock_id:
            raise StateError(
                f"lock {lock_id} is not the state's lock; the lock is held by "
                f"{holder.describe()}",
                hint="pass the lock id exactly as the error that reported the lock shows it",
            )
        if is_alive_here(holder) and not force:
            raise StateError(
                f"lock {lock_id} is held by a live process: {holder.describe()}",
                hint="wait for it to finish or stop it; --force releases the lock anyway, and "
                     "then two runs write at the same time (sharing the API rate budget)",
            )
        db.execute("DELETE FROM lock WHERE id = ?", [lock_id])
        if is_dead_here(holder):
            mark_killed(db, holder)
        return holder
