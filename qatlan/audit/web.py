"""`qatlan audit`: the state in a browser, read-only, through Datasette (the `audit` extra).

Datasette serves the state file as a database named after the file (`qatlan` for
`qatlan.db`; opened `mode=ro`, or `immutable=1` for
a copy nobody writes), with its tables linked by their foreign keys, the documented views,
and canned queries for the usual questions (`CANNED_QUERIES`). Loopback only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qatlan.errors import ConfigError

__all__ = ["CANNED_QUERIES", "LOOPBACK", "audit_app"]

#: the hosts `qatlan audit` may listen on
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

CANNED_QUERIES: dict[str, dict[str, str]] = {
    "asset_timeline": {
        "title": "Asset timeline: what qatlan wrote on one asset",
        "description": "Every change apply settled on the asset (an address such as "
                       "atlan:default/snowflake/1/DB/SCHEMA/TABLE), newest first.",
        "sql": "SELECT at, outcome, part, action, before, after, source, user, host, "
               "plan_checksum, run_id FROM asset_changes WHERE asset = :asset ORDER BY at DESC",
    },
    "asset_versions": {
        "title": "Asset versions: every value a refresh saw",
        "description": "Every stored version of the records named :name (a qualifiedName or "
                       "a name), with when it was first and last seen.",
        "sql": "SELECT kind, key, observed_from, observed_until, data FROM record_versions "
               "WHERE name = :name ORDER BY kind, key, valid_from",
    },
    "last_apply": {
        "title": "Last apply: every change of the most recent apply run",
        "sql": "SELECT at, outcome, asset, part, action, before, after, error FROM asset_changes "
               "WHERE run_id = (SELECT max(id) FROM runs WHERE command = 'apply') ORDER BY asset, part",
    },
    "failed_changes": {
        "title": "Failed changes: what did not land (failed, drifted, unsettled intents)",
        "sql": "SELECT at, outcome, asset, part, action, error, plan_checksum, run_id, user, host "
               "FROM failed_changes ORDER BY at DESC",
    },
    "conflicts_by_reason": {
        "title": "Conflicts by reason, in the latest plan",
        "sql": "SELECT rule, count(*) AS conflicts, min(address) AS example FROM plan_conflicts "
               "WHERE plan_id = (SELECT coalesce(changes_from, id) FROM plans ORDER BY id DESC LIMIT 1) "
               "GROUP BY rule ORDER BY conflicts DESC",
    },
}


def audit_app(path: str | Path, host: str) -> Any:
    """The Datasette ASGI app serving the state at `path` read-only. ConfigError when the
    host is not loopback or Datasette is not installed."""
    if host not in LOOPBACK:
        raise ConfigError(f"qatlan audit listens on loopback only, not {host!r}",
                          hint="use --host 127.0.0.1 (the default) and reach it through an SSH tunnel")
    try:
        from datasette.app import Datasette
    except ImportError:
        raise ConfigError("qatlan audit needs Datasette, which is not installed",
                          hint="pip install 'qatlan[audit]' (or pip install datasette)") from None
    path = Path(path)
    name = path.stem  # Datasette names a database after its file
    metadata = {
        "title": f"qatlan state {path}",
        "description": "Read-only. Tables and views are documented in docs/state.md.",
        "databases": {name: {"queries": CANNED_QUERIES}},
    }
    datasette = Datasette(files=[str(path)], metadata=metadata,
                          settings={"default_page_size": 100, "sql_time_limit_ms": 5000})
    return datasette.app()
