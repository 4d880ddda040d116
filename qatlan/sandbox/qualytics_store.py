"""The Qualytics side of a sandbox world: records indexed for the API, computed metrics.

`QualyticsStore` keeps what a real deployment stores (docs/world-format.md, `qualytics`):
records by id, ids kept sorted, and child ids by parent (containers by datastore; fields,
checks and anomalies by container), so a page of containers or the fields of one container
never costs a pass over the whole world. What the real server computes (container and
datastore `metrics` counts, per-field and per-check counts) is computed here on demand and
cached per container; a cache entry is dropped when a record under that container changes
in a way that can move a count (tag edits never do).

Every change goes through `add` / `update` / `delete` (the API app and admin changes alike),
which validate the resulting record, keep the indexes right and bump `version`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.qualytics_index import Table, copy_record
from qatlan.sandbox.qualytics_validate import PARENTS, check_record

__all__ = [
    "ARCHIVED_ANOMALY_STATUSES",
    "ARCHIVED_CHECK_STATUSES",
    "CHANGE_KINDS",
    "QualyticsStore",
    "is_active_check",
    "is_active_field",
    "is_archived_anomaly",
    "is_archived_check",
]

ARCHIVED_ANOMALY_STATUSES = frozenset({"Resolved", "Invalid", "Duplicate", "Discarded"})
ARCHIVED_CHECK_STATUSES = frozenset({"Invalid", "Discarded"})
TABLE_KINDS = ("integrations", "datastores", "containers", "fields", "checks", "anomalies")
LOAD_ORDER = ("integrations", "global_tags", "datastores", "containers", "fields", "checks", "anomalies")
CHANGE_KINDS = ("datastores", "containers", "fields", "checks", "anomalies", "global_tags", "integrations")
TAGGED_KINDS = ("datastores", "containers", "fields", "checks", "anomalies")
#: changing only these keys never moves a computed count
_COUNT_NEUTRAL_KEYS = frozenset({"tags", "description", "display_name", "color", "category", "weight_modifier"})


def is_active_field(f: dict[str, Any]) -> bool:
    return f.get("status", "active") == "active" and not f.get("deleted_at")


def is_active_check(c: dict[str, Any]) -> bool:
    return c.get("status", "Active") == "Active" and not c.get("deleted_at")


def is_archived_check(c: dict[str, Any]) -> bool:
    return bool(c.get("deleted_at")) or c.get("status", "Active") in ARCHIVED_CHECK_STATUSES


def is_archived_anomaly(a: dict[str, Any]) -> bool:
    return a.get("status", "Active") in ARCHIVED_ANOMALY_STATUSES


class QualyticsStore:
    """The `qualytics` part of a world, indexed; see the module docstring."""

    def __init__(self, doc_qualytics: dict[str, Any], *, clock: Callable[[], float] = time.time):
        self._clock = clock
        self.version = 0
        self._tokens: list[dict[str, Any]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._tags: dict[str, dict[str, Any]] = {}
        self._tables = {kind: Table(PARENTS[kind][0] if kind in PARENTS else None) for kind in TABLE_KINDS}
        self._by_check: dict[int, set[int]] = {}
        self._by_uuid: dict[str, int] = {}
        self._container_cache: dict[int, dict[str, int]] = {}
        self._field_cache: dict[int, dict[str, tuple[int, int]]] = {}
        self._datastore_cache: dict[int, dict[str, int]] = {}
        self._extra: dict[str, Any] = {}
        #: called as on_change(store, kind, old, new) after every add / update / delete (None:
        #: did not exist / deleted); set by `World.set_listener` for Flow actions, None otherwise
        self.on_change: Callable[[QualyticsStore, str, dict[str, Any] | None, dict[str, Any] | None], None] | None = None
        self._load(doc_qualytics)

    # ----- loading and export -------------------------------------------------------------

    def _load(self, doc: dict[str, Any]) -> None:
        if not isinstance(doc, dict):
            raise WorldError("qualytics: must be an object")
        self._extra = {k: v for k, v in doc.items() if k not in LOAD_ORDER and k != "tokens"}
        self._load_tokens(doc.get("tokens") or [])
        for kind in LOAD_ORDER:
            records = doc.get(kind) or []
            if not isinstance(records, list):
                raise WorldError(f"qualytics.{kind}: must be a list")
            for i, rec in enumerate(records):
                where = f"qualytics.{kind}[{i}]"
                check_record(kind, rec, where, self._exists)
                self._check_unique(kind, rec, where)
                self._put(kind, copy_record(rec), sorted_insert=False)
            if kind in self._tables:
                self._tables[kind].rebuild()

    def _load_tokens(self, tokens: Any) -> None:
        if not isinstance(tokens, list):
            raise WorldError("qualytics.tokens: must be a list")
        for i, item in enumerate(tokens):
            if not isinstance(item, dict) or not isinstance(item.get("token"), str) or not item["token"]:
                raise WorldError(f"qualytics.tokens[{i}].token: required, must be a non-empty string")
            if not isinstance(item.get("user"), dict):
                raise WorldError(f"qualytics.tokens[{i}].user: required, must be an object")
            self._tokens.append(copy_record(item))
            self._users[item["token"]] = dict(item["user"])

    def export(self) -> dict[str, Any]:
        """The current contents in world format (ids ascending, tags by id)."""
        out: dict[str, Any] = {"tokens": [copy_record(t) for t in self._tokens]}
        for kind in LOAD_ORDER:
            out[kind] = [copy_record(rec) for rec in self.all(kind)]
        out.update(self._extra)
        return out

    def now(self) -> str:
        return datetime.fromtimestamp(self._clock(), tz=timezone.utc).isoformat()

    # ----- reads -------------------------------------------------------------------------

    def user_for_token(self, token: str) -> dict[str, Any] | None:
        return self._users.get(token)

    def get(self, kind: str, key: Any) -> dict[str, Any] | None:
        if kind == "global_tags":
            return self._tags.get(key) if isinstance(key, str) else None
        return self._tables[kind].rows.get(key)

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every record of `kind`, ids ascending."""
        if kind == "global_tags":
            return sorted(self._tags.values(), key=lambda t: t["id"])
        table = self._tables[kind]
        return [table.rows[i] for i in table.ids]

    def ids(self, kind: str) -> list[int]:
        """All ids of a table kind, ascending (do not modify the list)."""
        return self._tables[kind].ids

    def under(self, kind: str, parent_id: int) -> list[dict[str, Any]]:
        """Children of one parent, ids ascending: containers of a datastore, fields/checks/anomalies of a container."""
        table = self._tables[kind]
        return [table.rows[i] for i in table.under(parent_id)]

    def anomaly_id_for_uuid(self, uuid: str) -> int | None:
        return self._by_uuid.get(uuid)

    def anomalies_of_check(self, check_id: int) -> list[dict[str, Any]]:
        rows = self._tables["anomalies"].rows
        return [rows[i] for i in sorted(self._by_check.get(check_id, ()))]

    def fields_named(self, container_id: int, names: Iterable[str]) -> list[dict[str, Any]]:
        """The fields of a container with these names, in the order of `names` (live fields first)."""
        by_name: dict[str, dict[str, Any]] = {}
        for f in self.under("fields", container_id):
            if f["name"] not in by_name or (by_name[f["name"]].get("deleted_at") and not f.get("deleted_at")):
                by_name[f["name"]] = f
        return [by_name[n] for n in names if n in by_name]

    # ----- computed counts ---------------------------------------------------------------

    def container_counts(self, container_id: int) -> dict[str, int]:
        """Computed `metrics` counts of a container (see docs/world-format.md)."""
        counts = self._container_cache.get(container_id)
        if counts is None:
            counts = self._container_cache[container_id] = self._count_container(container_id)
        return counts

    def _count_container(self, container_id: int) -> dict[str, int]:
        fields = sum(1 for f in self.under("fields", container_id) if is_active_field(f))
        active = [c for c in self.under("checks", container_id) if is_active_check(c)]
        open_ = [a for a in self.under("anomalies", container_id) if not is_archived_anomaly(a)]
        return {
            "fields": fields,
            "active_checks": len(active),
            "important_checks": sum(1 for c in active if c.get("important")),
            "passing_checks": sum(1 for c in active if c.get("is_passing") is True),
            "failing_checks": sum(1 for c in active if c.get("is_passing") is False),
            "anomalies": len(open_),
            # UNCONFIRMED: whether Acknowledged counts as active; the sandbox counts Active only
            "active_anomalies": sum(1 for a in open_ if a.get("status", "Active") == "Active"),
            "new_anomalies": sum(1 for a in open_ if a.get("is_new")),
        }

    def datastore_counts(self, datastore_id: int) -> dict[str, int]:
        """Computed datastore `metrics` counts, summed over its containers.

        `containers`, `fields` and `records` cover live (not archived) containers; check and
        anomaly counts cover every container, so they agree with the list endpoints'
        `datastore=` totals.
        """
        counts = self._datastore_cache.get(datastore_id)
        if counts is not None:
            return counts
        counts = dict.fromkeys(
            ("containers", "fields", "records", "active_checks", "important_checks", "passing_checks",
             "failing_checks", "anomalies", "active_anomalies", "new_anomalies"), 0)
        for c in self.under("containers", datastore_id):
            sub = self.container_counts(c["id"])
            for key in ("active_checks", "important_checks", "passing_checks", "failing_checks",
                        "anomalies", "active_anomalies", "new_anomalies"):
                counts[key] += sub[key]
            if not c.get("deleted_at"):
                counts["containers"] += 1
                counts["fields"] += sub["fields"]
                counts["records"] += c.get("records") or 0
        self._datastore_cache[datastore_id] = counts
        return counts

    def field_counts(self, container_id: int) -> dict[str, tuple[int, int]]:
        """Field name -> (active checks, Active anomalies) concerning it, for one container.

        A check concerns its `field_names`; an anomaly concerns the fields of its `check_ids`.
        """
        cached = self._field_cache.get(container_id)
        if cached is not None:
            return cached
        checks: dict[str, int] = {}
        anomalies: dict[str, int] = {}
        for c in self.under("checks", container_id):
            if is_active_check(c):
                for name in set(c.get("field_names") or ()):
                    checks[name] = checks.get(name, 0) + 1
        check_rows = self._tables["checks"].rows
        for a in self.under("anomalies", container_id):
            if a.get("status", "Active") != "Active":
                continue
            names = {n for cid in a.get("check_ids") or () for n in check_rows[cid].get("field_names") or ()}
            for name in names:
                anomalies[name] = anomalies.get(name, 0) + 1
        result = {n: (checks.get(n, 0), anomalies.get(n, 0)) for n in checks.keys() | anomalies.keys()}
        self._field_cache[container_id] = result
        return result

    def check_anomaly_counts(self, check_id: int) -> tuple[int, int]:
        """(open anomalies, Active anomalies) that name this check."""
        found = self.anomalies_of_check(check_id)
        open_ = [a for a in found if not is_archived_anomaly(a)]
        return len(open_), sum(1 for a in open_ if a.get("status", "Active") == "Active")

    # ----- changes -----------------------------------------------------------------------

    def add(self, kind: str, record: Any) -> dict[str, Any]:
        """Add a record (id assigned when absent, `created` defaulted to now); returns a copy."""
        self._require_kind(kind)
        if not isinstance(record, dict):
            raise WorldError(f"{kind}: record must be an object")
        rec = copy_record(record)
        if "id" not in rec:
            rec["id"] = self._next_id(kind)
        rec.setdefault("created", self.now())
        where = f"{kind} record"
        check_record(kind, rec, where, self._exists)
        self._check_unique(kind, rec, where)
        self._put(kind, rec, sorted_insert=True)
        self._invalidate(kind, rec)
        self.version += 1
        self._changed(kind, None, rec)
        return copy_record(rec)

    def update(self, kind: str, key: Any, values: Any) -> dict[str, Any]:
        """Set keys on one record (a key set to null is stored as null); returns a copy."""
        old = self._existing(kind, key)
        if not isinstance(values, dict):
            raise WorldError(f"{kind} {key!r}: 'set' must be an object")
        if "id" in values and values["id"] != old["id"]:
            raise WorldError(f"{kind} {key!r}.id: cannot change")
        new = {**old, **copy_record(values)}
        check_record(kind, new, f"{kind} {key!r}", self._exists)
        if kind == "global_tags":
            self._replace_tag(old, new)
        else:
            self._unindex_extra(kind, old)
            self._tables[kind].replace(new)
            self._index_extra(kind, new)
        if not values.keys() <= _COUNT_NEUTRAL_KEYS:
            self._invalidate(kind, old)
            self._invalidate(kind, new)
        self.version += 1
        self._changed(kind, old, new)
        return copy_record(new)

    def delete(self, kind: str, key: Any) -> dict[str, Any]:
        """Remove a record and what hangs off it (see `_remove`); returns the removed record."""
        rec = self._existing(kind, key)
        self._remove(kind, rec)
        self.version += 1
        self._changed(kind, rec, None)
        return copy_record(rec)

    # ----- internals ---------------------------------------------------------------------

    def _changed(self, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if self.on_change is not None:
            self.on_change(self, kind, old, new)

    def _require_kind(self, kind: str) -> None:
        if kind not in CHANGE_KINDS:
            raise WorldError(f"kind: {kind!r} is not one of {', '.join(CHANGE_KINDS)}")

    def _existing(self, kind: str, key: Any) -> dict[str, Any]:
        self._require_kind(kind)
        rec = self.get(kind, key)
        if rec is None:
            raise WorldError(f"{kind} {key!r} does not exist")
        return rec

    def _exists(self, kind: str, key: Any) -> bool:
        return self.get(kind, key) is not None

    def _next_id(self, kind: str) -> int:
        if kind == "global_tags":
            return max((t["id"] for t in self._tags.values()), default=0) + 1
        return self._tables[kind].next_id()

    def _check_unique(self, kind: str, rec: dict[str, Any], where: str) -> None:
        if kind == "global_tags":
            if rec["name"] in self._tags:
                raise WorldError(f"{where}.name: global tag {rec['name']!r} already exists")
            if any(t["id"] == rec["id"] for t in self._tags.values()):
                raise WorldError(f"{where}.id: duplicate id {rec['id']}")
            return
        if rec["id"] in self._tables[kind].rows:
            raise WorldError(f"{where}.id: duplicate id {rec['id']}")
        if kind == "anomalies" and rec.get("uuid") is not None and rec["uuid"] in self._by_uuid:
            raise WorldError(f"{where}.uuid: duplicate uuid {rec['uuid']!r}")

    def _put(self, kind: str, rec: dict[str, Any], *, sorted_insert: bool) -> None:
        if kind == "global_tags":
            self._tags[rec["name"]] = rec
            return
        if sorted_insert:
            self._tables[kind].insert(rec)
        else:
            self._tables[kind].rows[rec["id"]] = rec
        self._index_extra(kind, rec)

    def _index_extra(self, kind: str, rec: dict[str, Any]) -> None:
        if kind != "anomalies":
            return
        for check_id in rec.get("check_ids") or ():
            self._by_check.setdefault(check_id, set()).add(rec["id"])
        if rec.get("uuid") is not None:
            self._by_uuid[rec["uuid"]] = rec["id"]

    def _unindex_extra(self, kind: str, rec: dict[str, Any]) -> None:
        if kind != "anomalies":
            return
        for check_id in rec.get("check_ids") or ():
            self._by_check.get(check_id, set()).discard(rec["id"])
        self._by_uuid.pop(rec.get("uuid"), None)

    def _invalidate(self, kind: str, rec: dict[str, Any]) -> None:
        if kind == "datastores":
            self._datastore_cache.pop(rec["id"], None)
            return
        if kind == "containers":
            container_id, datastore_id = rec["id"], rec["datastore_id"]
        elif kind in ("fields", "checks", "anomalies"):
            container_id = rec["container_id"]
            datastore_id = (self._tables["containers"].rows.get(container_id) or {}).get("datastore_id")
        else:
            return
        self._container_cache.pop(container_id, None)
        self._field_cache.pop(container_id, None)
        self._datastore_cache.pop(datastore_id, None)
        if kind == "checks":  # anomalies elsewhere may name this check: their per-field counts
            for anomaly in self.anomalies_of_check(rec["id"]):
                self._field_cache.pop(anomaly["container_id"], None)

    def _remove(self, kind: str, rec: dict[str, Any]) -> None:
        """Remove without bumping the version, cascading as a real delete does."""
        if kind == "global_tags":
            self._rename_tag_everywhere(rec["name"], None)
            del self._tags[rec["name"]]
            return
        if kind == "integrations":
            for tag in [t for t in self._tags.values() if t.get("integration_id") == rec["id"]]:
                self._remove("global_tags", tag)
        elif kind == "datastores":
            for child in self.under("containers", rec["id"]):
                self._remove("containers", child)
        elif kind == "containers":
            for child_kind in ("anomalies", "checks", "fields"):
                for child in self.under(child_kind, rec["id"]):
                    self._remove(child_kind, child)
        elif kind == "checks":
            self._drop_check_from_anomalies(rec["id"])
        self._unindex_extra(kind, rec)
        self._invalidate(kind, rec)
        self._tables[kind].remove(rec["id"])

    def _drop_check_from_anomalies(self, check_id: int) -> None:
        for anomaly in self.anomalies_of_check(check_id):
            kept = [c for c in anomaly["check_ids"] if c != check_id]
            self._unindex_extra("anomalies", anomaly)
            anomaly["check_ids"] = kept
            self._index_extra("anomalies", anomaly)
            self._invalidate("anomalies", anomaly)
        self._by_check.pop(check_id, None)

    def _replace_tag(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if new["name"] != old["name"]:
            if new["name"] in self._tags:
                raise WorldError(f"global_tags {old['name']!r}.name: global tag {new['name']!r} already exists")
            del self._tags[old["name"]]
            self._rename_tag_everywhere(old["name"], new["name"])
        self._tags[new["name"]] = new

    def _rename_tag_everywhere(self, name: str, new_name: str | None) -> None:
        """Rename a tag on every asset that carries it, or detach it when `new_name` is None."""
        for kind in TAGGED_KINDS:
            for rec in self._tables[kind].rows.values():
                tags = rec.get("tags")
                if tags and name in tags:
                    rec["tags"] = [new_name if t == name else t for t in tags if new_name is not None or t != name]
