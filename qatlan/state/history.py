"""Reading the past: record versions at a snapshot or between two, the records behind an
asset address, and the planned and applied changes of assets. Read-only SQL for the audit
commands (`qatlan log`, `state show --at`, `state diff`; see `qatlan.audit`)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlite_utils import Database

from qatlan import addresses
from qatlan.errors import StateError
from qatlan.normalize import iso_stamp

__all__ = ["History", "stamp"]

_QN = "json_extract(data, '$.qualified_name')"
_NAME = "json_extract(data, '$.name')"
_WILD = frozenset("*?[")


def stamp(text: str) -> str:
    """A time a person typed, as the state writes times (`2024-05-01T12:00:00.000Z`);
    StateError when it is not one."""
    try:
        return iso_stamp(text)
    except ValueError:
        raise StateError(f"{text!r} is neither a snapshot id nor a time",
                         hint="give a snapshot id (`qatlan state list`) or a time like "
                              "2026-05-01T12:00:00Z or 2026-05-01") from None


def _decoded(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for *head, data in rows:
        yield (*head, json.loads(data))


# --------------------------------------------------------------------------- assets


def _matching(db: Database, pattern: str) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for kind, key, qn in db.execute(f"SELECT DISTINCT kind, key, {_QN} FROM records WHERE kind = 'a.asset'"):
        address = addresses.atlan_asset(qn)
        if fnmatch.fnmatchcase(address, pattern) or fnmatch.fnmatchcase(qn, pattern):
            found[(kind, key)] = address
    for (kind, key), address in _q_names(db).items():
        if fnmatch.fnmatchcase(address, pattern) or fnmatch.fnmatchcase(address.split(":", 1)[1], pattern):
            found[(kind, key)] = address
    return found


def _q_lookup(db: Database, path: str) -> dict[tuple[str, str], str]:
    """The Qualytics datastore, container or field at `<datastore>[/<container>[/<field>]]`
    (names may hold `/`: the longest names that fit win)."""
    found: dict[tuple[str, str], str] = {}
    datastores = {key: name for key, name in db.execute(
        f"SELECT key, {_NAME} FROM records WHERE kind = 'q.datastore' ORDER BY id")}
    for ds_key, ds in sorted(datastores.items(), key=lambda kv: -len(kv[1])):
        if path == ds:
            found[("q.datastore", ds_key)] = addresses.qualytics_asset(ds)
            continue
        if not path.startswith(ds + "/"):
            continue
        rest = path[len(ds) + 1:]
        containers = {key: name for key, name in db.execute(
            f"SELECT key, {_NAME} FROM records WHERE kind = 'q.container' "
            "AND json_extract(data, '$.datastore_id') = ? ORDER BY id", [int(ds_key)])}
        for c_key, c in sorted(containers.items(), key=lambda kv: -len(kv[1])):
            if rest == c:
                found[("q.container", c_key)] = addresses.qualytics_asset(ds, c)
            elif rest.startswith(c + "/"):
                field = rest[len(c) + 1:]
                rows = db.execute(f"SELECT key FROM records WHERE kind = 'q.field' "
                                  f"AND json_extract(data, '$.container_id') = ? AND {_NAME} = ?",
                                  [int(c_key), field])
                for (f_key,) in rows:
                    found[("q.field", f_key)] = addresses.qualytics_asset(ds, c, field)
    return found


def _latest_data(db: Database, kind: str, key: Any) -> dict[str, Any] | None:
    row = db.execute("SELECT data FROM records WHERE kind = ? AND key = ? ORDER BY id DESC LIMIT 1",
                     [kind, str(key)]).fetchone()
    return None if row is None else json.loads(row[0])


def _address_of(db: Database, kind: str, key: str) -> str | None:
    """The address of one record (by its newest version), through the (kind, key) index:
    an Atlan asset's or Link's asset's, a Qualytics datastore's, container's or field's."""
    data = _latest_data(db, kind, key)
    if data is None:
        return None
    if kind == "a.link":
        data = _latest_data(db, "a.asset", data.get("asset_guid")) or {}
        kind = "a.asset"
    if kind == "a.asset":
        qn = data.get("qualified_name")
        return addresses.atlan_asset(qn) if qn else None
    if kind == "q.field":
        parent = _address_of(db, "q.container", data.get("container_id"))
        return None if parent is None else f"{parent}/{data['name']}"
    if kind == "q.container":
        ds = _latest_data(db, "q.datastore", data.get("datastore_id")) or {}
        return addresses.qualytics_asset(ds.get("name") or str(data.get("datastore_id")), data["name"])
    if kind == "q.datastore":
        return addresses.qualytics_asset(data["name"])
    return None


def _q_names(db: Database) -> dict[tuple[str, str], str]:
    """(kind, key) → address of every Qualytics datastore, container and field the state
    ever held (by their newest names)."""
    names: dict[str, dict[str, tuple[Any, ...]]] = {"q.datastore": {}, "q.container": {}, "q.field": {}}
    rows = db.execute(
        "SELECT kind, key, json_extract(data, '$.name'), json_extract(data, '$.datastore_id'), "
        "json_extract(data, '$.container_id') FROM records "
        "WHERE kind IN ('q.datastore', 'q.container', 'q.field') ORDER BY id")
    for kind, key, name, ds, container in rows:
        names[kind][key] = (name, ds, container)
    out: dict[tuple[str, str], str] = {}
    datastores = {k: v[0] for k, v in names["q.datastore"].items()}
    containers: dict[str, str] = {}
    for key, (name, ds, _) in names["q.container"].items():
        containers[key] = addresses.qualytics_asset(datastores.get(str(ds), str(ds)), name)
        out[("q.container", key)] = containers[key]
    for key, name in datastores.items():
        out[("q.datastore", key)] = addresses.qualytics_asset(name)
    for key, (name, _, container) in names["q.field"].items():
        parent = containers.get(str(container))
        if parent is not None:
            out[("q.field", key)] = f"{parent}/{name}"
    return out


_CHANGE_COLUMNS = """
SELECT p.id, p.checksum, p.created_at, p.run_id, c.asset, c.address, c.part, c.action,
       c.before, c.after, c.source, c.reason,
       j.outcome, j.at, j.run_id, j.error, r.user, r.host, pr.user, pr.host
"""
_RUNS = """
LEFT JOIN runs r ON r.id = j.run_id
LEFT JOIN runs pr ON pr.id = p.run_id
"""
#: from the changes (found through their asset or source index): CROSS JOIN keeps
#: plan_changes the outer loop (a plain JOIN lets SQLite read every plan's changes instead)
_BY_CHANGE = _CHANGE_COLUMNS + """
FROM plan_changes c
CROSS JOIN plans p ON coalesce(p.changes_from, p.id) = c.plan_id
LEFT JOIN journal j ON j.plan_checksum = p.checksum AND j.address = c.address
""" + _RUNS
#: from the journal: what apply settled, each with its planned change
_BY_JOURNAL = _CHANGE_COLUMNS + """
FROM journal j
JOIN plans p ON p.id = j.plan_id
JOIN plan_changes c ON c.plan_id = coalesce(p.changes_from, p.id) AND c.address = j.address
""" + _RUNS
_CHANGE_KEYS = ("plan_id", "plan_checksum", "planned_at", "plan_run_id", "asset", "address", "part",
                "action", "before", "after", "source", "reason", "outcome", "at", "run_id", "error",
                "user", "host", "plan_user", "plan_host")


def _change_rows(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = dict(zip(_CHANGE_KEYS, row))
        for k in ("before", "after"):
            item[k] = None if item[k] is None else json.loads(item[k])
        out.append(item)
    return out


class History:
    """The past of one open state (`State.history`): read-only questions for the audit
    commands."""

    def __init__(self, db: Database):
        self._db = db

    stamp = staticmethod(stamp)

    def snapshot_at(self, at: str) -> int:
        """The snapshot `at` names: a snapshot id, or a time (ISO 8601, UTC when no zone is
        given): the last snapshot taken at or before it. StateError when there is none."""
        db = self._db
        text = at.strip()
        if text.isdigit():
            row = db.execute("SELECT id FROM snapshots WHERE id = ?", [int(text)]).fetchone()
            if row is None:
                raise StateError(f"the state holds no snapshot {text}",
                                 hint="`qatlan state list` shows the snapshots it holds")
            return row[0]
        when = stamp(text)
        row = db.execute("SELECT max(id) FROM snapshots WHERE taken_at <= ?", [when]).fetchone()
        if row is None or row[0] is None:
            first = db.execute("SELECT min(taken_at) FROM snapshots").fetchone()[0]
            raise StateError(f"no snapshot was taken at or before {text}",
                             hint=f"the first snapshot was taken at {first}" if first
                             else "run `qatlan refresh` to take one")
        return row[0]

    def snapshot_times(self) -> dict[int, tuple[str, int | None]]:
        """snapshot id → (taken_at, run id)."""
        db = self._db
        return {sid: (at, run) for sid, at, run in db.execute("SELECT id, taken_at, run_id FROM snapshots")}

    def records_at(self, snapshot_id: int, keys: Iterable[tuple[str, str]] | None = None
                   ) -> list[tuple[str, str, dict[str, Any]]]:
        """`[(kind, key, data)]` of the versions in snapshot `snapshot_id` (of `keys` only, when
        given), in kind and key order."""
        db = self._db
        sql = ("SELECT kind, key, data FROM records WHERE valid_from <= ? "
               "AND (valid_to IS NULL OR valid_to > ?)")
        args: list[Any] = [snapshot_id, snapshot_id]
        if keys is not None:
            sql += " AND (kind, key) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"
            args.append(json.dumps([list(k) for k in keys]))
        return list(_decoded(db.execute(sql + " ORDER BY kind, key", args)))

    def versions_between(self, a: int, b: int) -> list[tuple[str, str]]:
        """(kind, key) of every record whose version differs between snapshots a < b."""
        db = self._db
        rows = db.execute(
            "SELECT DISTINCT kind, key FROM records WHERE (valid_from > ? AND valid_from <= ?) "
            "OR (valid_to > ? AND valid_to <= ?) ORDER BY kind, key", [a, b, a, b])
        return [(kind, key) for kind, key in rows]

    def versions_of(self, keys: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], list[tuple[int, int | None, dict[str, Any]]]]:
        """(kind, key) → `[(valid_from, valid_to, data)]` of every stored version, oldest first."""
        db = self._db
        out: dict[tuple[str, str], list[tuple[int, int | None, dict[str, Any]]]] = {}
        for kind, key in keys:
            rows = db.execute("SELECT valid_from, valid_to, data FROM records WHERE kind = ? AND key = ? "
                              "ORDER BY valid_from", [kind, key])
            out[(kind, key)] = [(vf, vt, json.loads(data)) for vf, vt, data in rows]
        return out

    def definitions(self) -> list[tuple[str, dict[str, Any]]]:
        """`[(kind, data)]` of every stored version of the Atlan tag and custom metadata
        definitions, oldest first (newer names win when read in order)."""
        db = self._db
        rows = db.execute("SELECT kind, data FROM records WHERE kind IN ('a.tagdef', 'a.cmdef') ORDER BY id")
        return [(kind, json.loads(data)) for kind, data in rows]

    def asset_records(self, asset: str) -> dict[tuple[str, str], str]:
        """(kind, key) → address of the records an asset names: an address (`atlan:<qualifiedName>`,
        `qualytics:<datastore>[/<container>[/<field>]]`), a qualifiedName, a name, a GUID or a
        Qualytics container id; shell wildcards (`*ORDERS*`) match addresses and qualifiedNames.
        Exact lookups use indexes; a pattern reads every asset's name."""
        db = self._db
        text = asset.strip()
        if not text:
            raise StateError("the asset to look up is empty", hint="give a qualifiedName, an address or a pattern")
        if any(c in _WILD for c in text):
            return _matching(db, text)
        if text.startswith("qualytics:"):
            return _q_lookup(db, text[len("qualytics:"):])
        found: dict[tuple[str, str], str] = {}
        bare = text[len("atlan:"):] if text.startswith("atlan:") else text
        # two queries, each on its index (no DISTINCT, no json_extract in the select list: with
        # either, SQLite prefers the (kind, key) index and reads every asset)
        for kind, key in db.execute(f"SELECT kind, key FROM records WHERE kind = 'a.asset' AND {_QN} = ?",
                                    [bare]):
            found[(kind, key)] = addresses.atlan_asset(bare)
        for kind, key, data in db.execute("SELECT kind, key, data FROM records WHERE kind = 'a.asset' "
                                          "AND key = ?", [bare]):
            found[(kind, key)] = addresses.atlan_asset(json.loads(data)["qualified_name"])
        if text.startswith("atlan:") or found:
            return found
        # a plain name or id: Atlan assets and Qualytics containers by name, a container by id
        rows = [row for kind in ("a.asset", "q.container") for row in db.execute(
            f"SELECT kind, key FROM records WHERE kind = ? AND {_NAME} = ?", [kind, text])]
        rows += db.execute("SELECT kind, key FROM records WHERE kind = 'q.container' AND key = ?",
                           [text]).fetchall()
        for kind, key in rows:
            address = _address_of(db, kind, key)
            if address is not None:
                found[(kind, key)] = address
        return found

    def changes_of(self, assets: Iterable[str]) -> list[dict[str, Any]]:
        """Every planned change on `assets` (or whose value came from one of them), each with
        its plan and, when apply settled it, the journal's outcome, run and who ran it; oldest
        plan first."""
        db = self._db
        wanted = json.dumps(sorted(set(assets)))
        # a UNION of two lookups, each on its index (an OR would read every change row)
        return _change_rows(db.execute(
            "SELECT * FROM (" + _BY_CHANGE + "WHERE c.asset IN (SELECT value FROM json_each(?1)) "
            "UNION " + _BY_CHANGE + "WHERE c.source IN (SELECT value FROM json_each(?1))) "
            "ORDER BY 1, 6", [wanted]))

    def applied_between(self, after: str, until: str) -> list[dict[str, Any]]:
        """The changes apply wrote (outcome applied or already) at a time in (after, until]."""
        db = self._db
        return _change_rows(db.execute(
            _BY_JOURNAL + "WHERE j.outcome IN ('applied', 'already') AND j.at > ? AND j.at <= ?",
            [after, until]))

    def asset_addresses(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(kind, key) → the asset address of each record that has one (by its newest version)."""
        db = self._db
        out: dict[tuple[str, str], str] = {}
        for kind, key in keys:
            address = _address_of(db, kind, key)
            if address is not None:
                out[(kind, key)] = address
        return out

    def runs_by_id(self) -> dict[int, tuple[str | None, str | None]]:
        """run id → (user, host)."""
        return {rid: (user, host) for rid, user, host in self._db.execute("SELECT id, user, host FROM runs")}
