"""qatlan's SQLite state: snapshots, runs, plans, the apply journal, ownership and the lock.

`State` (store.py) is the public face and the only code in qatlan that runs SQL; the
modules beside it hold its parts: schema and migrations, snapshots (record versions),
runs, plans, journal, locks. docs/state.md documents every table.
"""

from qatlan.state.journal import INTENT
from qatlan.state.locks import LockInfo
from qatlan.state.runs import RUN_OUTCOMES, RunRecord
from qatlan.state.schema import SCHEMA_VERSION
from qatlan.state.snapshots import RecordVersion
from qatlan.state.store import State

__all__ = ["INTENT", "RUN_OUTCOMES", "SCHEMA_VERSION", "LockInfo", "RecordVersion", "RunRecord", "State"]
