"""The one-writer lock: a single row in the `lock` table, taken under BEGIN IMMEDIATE."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from sqlite_utils import Database

from qatlan.normalize import iso_utc
from qatlan.state.base import whoami, write_transaction
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

    @property
    def holder(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"

    def describe(self) -> str:
        return f"{self.holder}, running `{self.command}` since {self.since} (lock id {self.id})"


def read_lock(db: Database) -> LockInfo | None:
    row = db.execute("SELECT id, user, host, pid, command, since FROM lock").fetchone()
    return LockInfo(*row) if row else None


def try_acquire(db: Database, command: str) -> tuple[bool, LockInfo]:
    """Take the lock if it is free: (True, our lock) or (False, the holder's)."""
    with write_transaction(db):
        holder = read_lock(db)
        if holder is not None:
            return False, holder
        user, host, pid = whoami()
        mine = LockInfo(str(uuid.uuid4()), user, host, pid, command, iso_utc())
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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> LockInfo:
    """Take the lock, polling for up to `timeout` seconds; else LockError naming the holder."""
    deadline = clock() + max(timeout, 0.0)
    while True:
        ok, info = try_acquire(db, command)
        if ok:
            return info
        remaining = deadline - clock()
        if remaining <= 0:
            raise lock_error(info, waited=timeout)
        sleep(min(POLL_INTERVAL, remaining))


def lock_error(holder: LockInfo, *, waited: float = 0.0) -> LockError:
    gone = ""
    if _is_dead_here(holder):
        gone = f" That process is no longer running on {holder.host}."
    waited_text = f" (waited {waited:g} s)" if waited > 0 else ""
    return LockError(
        f"the state is locked by {holder.describe()}{waited_text}.{gone} "
        f"If that run is gone, release the lock with `qatlan force-unlock {holder.id}`."
    )


def _is_dead_here(holder: LockInfo) -> bool:
    _, host, _ = whoami()
    if holder.host != host or holder.pid <= 0:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but not ours (EPERM)
        return False
    return False


def release(db: Database, lock_id: str) -> bool:
    """Drop the lock if `lock_id` still holds it; False when it did not (force-unlocked)."""
    with write_transaction(db):
        return db.execute("DELETE FROM lock WHERE id = ?", [lock_id]).rowcount > 0


def force_unlock(db: Database, lock_id: str) -> LockInfo:
    """Remove the lock `lock_id` whoever holds it; StateError when that is not the lock."""
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
        db.execute("DELETE FROM lock WHERE id = ?", [lock_id])
        return holder
