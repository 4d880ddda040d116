"""Every plan qatlan made, stored whole: zlib-compressed canonical JSON, keyed by checksum.

Stored for audit and for `apply`, which finds an interrupted run's plan here. The JSON is
hashed and compressed piece by piece: only the compressed body (about a tenth of the JSON)
is held whole.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any, Callable

from sqlite_utils import Database

from qatlan.normalize import iso_utc
from qatlan.plan import Plan, canonical_pieces
from qatlan.state.base import write_transaction

__all__ = ["load_plan", "plan_by_inputs", "plan_id", "save_plan"]

#: zlib level of plan bodies (1: fast; plans compress ~10x anyway)
_ZLIB_LEVEL = 1


def save_plan(db: Database, p: Plan, run_id: int | None = None,
              tee: Callable[[bytes], None] | None = None, inputs: str | None = None) -> str:
    """Insert `p` and return its checksum (`qatlan.plan.plan_checksum`). The plan is encoded
    once: each canonical piece is hashed, compressed and, with `tee`, handed on (to a plan
    file being written, `qatlan.plan.PlanFileWriter`). `inputs`: the digest of what the plan
    was computed from (`plan_by_inputs` finds it again)."""
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
    }
    del packed
    with write_transaction(db):
        db["plans"].insert(row)
    return checksum


def _latest(db: Database, column: str, checksum: str) -> Any:
    row = db.execute(f"SELECT {column} FROM plans WHERE checksum = ? ORDER BY id DESC LIMIT 1",
                     [checksum]).fetchone()
    return row[0] if row else None


def plan_id(db: Database, checksum: str) -> int | None:
    """The id of the newest stored plan with this checksum."""
    return _latest(db, "id", checksum)


def plan_by_inputs(db: Database, inputs: str) -> Plan | None:
    """The newest stored plan computed from `inputs` (see `save_plan`), or None."""
    row = db.execute("SELECT body FROM plans WHERE inputs = ? ORDER BY id DESC LIMIT 1",
                     [inputs]).fetchone()
    return None if row is None else _decode(row[0])


def _decode(body: bytes) -> Plan:
    return Plan.from_dict(json.loads(zlib.decompress(body)))


def load_plan(db: Database, checksum: str) -> Plan | None:
    """The stored plan with this checksum, or None."""
    body = _latest(db, "body", checksum)
    return None if body is None else _decode(body)
