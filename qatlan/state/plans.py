"""Every plan qatlan made, stored whole: zlib-compressed canonical JSON, keyed by checksum.

Stored for audit and for `apply`, which finds an interrupted run's plan here. The JSON is
hashed and compressed piece by piece: only the compressed body (about a tenth of the JSON)
is held whole. Each change and conflict is also a row (`plan_changes`, `plan_conflicts`) that
any SQLite tool can query; a plan reused unchanged (same inputs) points at its twin's rows
(`plans.changes_from`) instead of repeating them.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any, Callable

from sqlite_utils import Database

from qatlan import addresses
from qatlan.normalize import iso_utc
from qatlan.plan import Plan, canonical_pieces
from qatlan.state.base import write_transaction

__all__ = ["backfill_rows", "load_plan", "plan_by_inputs", "plan_id", "save_plan"]

#: zlib level of plan bodies (1: fast; plans compress ~10x anyway)
_ZLIB_LEVEL = 1


def save_plan(db: Database, p: Plan, run_id: int | None = None,
              tee: Callable[[bytes], None] | None = None, inputs: str | None = None,
              changes_from: int | None = None) -> str:
    """Insert `p` and return its checksum (`qatlan.plan.plan_checksum`). The plan is encoded
    once: each canonical piece is hashed, compressed and, with `tee`, handed on (to a plan
    file being written, `qatlan.plan.PlanFileWriter`). `inputs`: the digest of what the plan
    was computed from (`plan_by_inputs` finds it again). `changes_from`: the stored plan whose
    changes and conflicts `p` repeats (their rows are shared, not written again)."""
    digest, packer, packed = hashlib.sha256(), zlib.compressobj(_ZLIB_LEVEL), []
    for piece in canonical_pieces(p):
        digest.update(piece)
        packed.append(packer.compress(piece))
        if tee is not None:
            tee(piece)
    packed.append(packer.flush())
    checksum = digest.hexdigest()
    row = {
        "created_at": p.created_at or iso_utc(),
        "run_id": run_id,
        "snapshot_id": p.base.get("snapshot_id"),
        "lineage": p.base.get("lineage", ""),
        "serial": p.base.get("serial", 0),
        "checksum": checksum,
        "summary": json.dumps(p.summary()),
        "body": b"".join(packed),
        "inputs": inputs,
        "changes_from": changes_from,
    }
    del packed
    with write_transaction(db):
        plan_id = db["plans"].insert(row).last_pk
        if changes_from is None:
            _insert_rows(db, plan_id, p)
    return checksum


def _asset(address: str) -> str:
    return addresses.parse(address)[0]


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _insert_rows(db: Database, plan_id: int, p: Plan) -> None:
    """`p`'s changes and conflicts as rows of plan `plan_id`."""
    db.conn.executemany(
        "INSERT INTO plan_changes (plan_id, address, asset, part, action, before, after, reason, "
        "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((plan_id, c.address, *addresses.parse(c.address), c.action.value, _text(c.before),
          _text(c.after), c.reason, c.target.get("source")) for c in p.changes))
    db.conn.executemany(
        "INSERT INTO plan_conflicts (plan_id, address, asset, rule, message) VALUES (?, ?, ?, ?, ?)",
        ((plan_id, c.address, _asset(c.address), c.rule, c.message) for c in p.conflicts))


def backfill_rows(db: Database) -> None:
    """For a state made before plans were stored as rows: write every stored plan's changes
    and conflicts, and link each journal row to its plan and its change's before/after."""
    for plan_id, body in db.execute("SELECT id, body FROM plans ORDER BY id").fetchall():
        _insert_rows(db, plan_id, _decode(body))
    db.execute("UPDATE journal SET plan_id = (SELECT max(p.id) FROM plans p "
               "WHERE p.checksum = journal.plan_checksum) WHERE plan_id IS NULL")
    db.execute(
        "UPDATE journal SET before = c.before, after = c.after FROM plan_changes c "
        "WHERE c.plan_id = journal.plan_id AND c.address = journal.address")


def _latest(db: Database, column: str, checksum: str) -> Any:
    row = db.execute(f"SELECT {column} FROM plans WHERE checksum = ? ORDER BY id DESC LIMIT 1",
                     [checksum]).fetchone()
    return row[0] if row else None


def plan_id(db: Database, checksum: str) -> int | None:
    """The id of the newest stored plan with this checksum."""
    return _latest(db, "id", checksum)


def plan_by_inputs(db: Database, inputs: str) -> tuple[int, Plan] | None:
    """(id of the plan whose change rows it has, plan): the newest stored plan computed
    from `inputs` (see `save_plan`), or None."""
    row = db.execute("SELECT coalesce(changes_from, id), body FROM plans WHERE inputs = ? "
                     "ORDER BY id DESC LIMIT 1", [inputs]).fetchone()
    return None if row is None else (row[0], _decode(row[1]))


def _decode(body: bytes) -> Plan:
    return Plan.from_dict(json.loads(zlib.decompress(body)))


def load_plan(db: Database, checksum: str) -> Plan | None:
    """The stored plan with this checksum, or None."""
    body = _latest(db, "body", checksum)
    return None if body is None else _decode(body)
