"""Small shared helpers: the write transaction and who runs this process."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import sqlite3
from typing import Iterator

from sqlite_utils import Database

from qatlan.errors import StateError


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """An atomic block that holds SQLite's write lock from its first statement.

    The outermost block runs `BEGIN IMMEDIATE`, so a read-then-write inside it (the lock row,
    the serial) cannot race another process; the busy timeout makes it wait for a writer.
    A nested block is a savepoint (sqlite-utils `atomic()`).
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StateError(
            f"the state database is busy ({exc}); another qatlan process is writing to it",
            hint="wait for it to finish and try again",
        ) from None
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def whoami() -> tuple[str, str, int]:
    """(user, host, pid) of this process, for runs and the lock."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry and no LOGNAME/USER (containers)
        user = "unknown"
    return user, socket.gethostname(), os.getpid()
