"""Indices over the Atlan side of a snapshot for matching: names under a parent, hints."""

from __future__ import annotations

import bisect
import difflib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from qatlan.model import AAsset, AConnection, Snapshot
from qatlan.normalize import connector_key, fold

__all__ = ["TABLE_TYPES", "AtlanIndex", "Names", "Pool", "nearest"]

TABLE_TYPES = frozenset({"Table", "View", "MaterialisedView"})


class Names:
    """Children of one parent by exact and by folded name (a list only where names repeat)."""

    __slots__ = ("exact", "folded", "_pool")

    def __init__(self, assets: Iterable[AAsset]):
        self.exact: dict[str, Any] = {}
        self.folded: dict[str, Any] = {}
        self._pool: Pool | None = None
        for a in assets:
            _put(self.exact, a.name, a)
            _put(self.folded, fold(a.name), a)

    def lookup(self, name: str) -> tuple[list[AAsset], bool]:
        """(candidates, exact?): exact name first, else every case-insensitive match."""
        found = self.exact.get(name)
        if found is not None:
            return _many(found), True
        return _many(self.folded.get(fold(name))), False

    def pool(self) -> "Pool":
        """The names hints are drawn from (built once per parent)."""
        if self._pool is None:
            self._pool = Pool(self.exact)  # the keys: every distinct name
        return self._pool


def _put(index: dict[str, Any], key: str, asset: AAsset) -> None:
    have = index.get(key)
    if have is None:
        index[key] = asset
    elif isinstance(have, list):
        have.append(asset)
    else:
        index[key] = [have, asset]


def _many(found: Any) -> list[AAsset]:
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


class AtlanIndex:
    """Connections and schemas; with `children`, the tables of each schema and the columns
    of each table too (datastore matching alone does not need them)."""

    def __init__(self, snapshot: Snapshot, children: bool = True):
        self.conns_by_qn: dict[str, AConnection] = {}
        self.conns_by_name: dict[str, list[AConnection]] = defaultdict(list)
        self.conns_by_type: dict[str, list[AConnection]] = defaultdict(list)
        for c in snapshot.connections.values():
            self.conns_by_qn[c.qualified_name] = c
            self.conns_by_name[c.name].append(c)
            self.conns_by_type[connector_key(c.connector or _qn_connector(c))].append(c)
        self.schemas: dict[str, AAsset] = {}
        self.schemas_folded: dict[str, list[str]] = defaultdict(list)
        self._children: dict[tuple[str, str], list[AAsset]] = defaultdict(list)
        self._names: dict[tuple[str, str], Names] = {}
        for a in snapshot.assets.values():
            if a.status != "ACTIVE":
                continue
            if a.type_name == "Schema":
                self.schemas[a.qualified_name] = a
                self.schemas_folded[fold(a.qualified_name)].append(a.qualified_name)
            elif not children:
                continue
            elif a.type_name in TABLE_TYPES and a.parent_qn:
                self._children[("container", a.parent_qn)].append(a)
            elif a.type_name == "Column" and a.parent_qn:
                self._children[("field", a.parent_qn)].append(a)

    def names(self, level: str, parent_qn: str) -> Names:
        """Tables/views under a schema (level "container") or columns under a table ("field")."""
        key = (level, parent_qn)
        names = self._names.get(key)
        if names is None:
            names = self._names[key] = Names(self._children.get(key, ()))
        return names

    def connections(self, ref: str) -> list[AConnection]:
        if ref in self.conns_by_qn:
            return [self.conns_by_qn[ref]]
        return list(self.conns_by_name.get(ref, ()))

    def resolve_schema(self, conn_qn: str, database: str, schema: str) -> tuple[str | None, list[str]]:
        qn = f"{conn_qn}/{database}/{schema}"
        if qn in self.schemas:
            return qn, [qn]
        candidates = sorted(self.schemas_folded.get(fold(qn), ()))
        return (candidates[0] if len(candidates) == 1 else None), candidates

    def schemas_of(self, conn_qn: str) -> list[str]:
        prefix = conn_qn + "/"
        return sorted(q[len(prefix):] for q in self.schemas if q.startswith(prefix))


def _qn_connector(conn: AConnection) -> str:
    parts = conn.qualified_name.split("/")
    return parts[1] if len(parts) > 2 else ""


def nearest(name: str, pool: Iterable[str]) -> str | None:
    """The closest name in `pool` (difflib), best-effort and cheap for huge pools."""
    return Pool(pool).nearest(name)


class Pool:
    """Names to find a hint in. Big pools are narrowed to the names that sort next to the
    wanted one (case-insensitively), so a hint costs O(log n), not a scan."""

    WINDOW = 12

    def __init__(self, names: Iterable[str]):
        self.names = sorted(set(names))
        self.folded = sorted((fold(n), n) for n in self.names)

    def nearest(self, name: str) -> str | None:
        names = self.names
        if len(names) > 4 * self.WINDOW:
            at = bisect.bisect_left(self.folded, (fold(name), ""))
            window = self.folded[max(0, at - self.WINDOW): at + self.WINDOW]
            names = sorted(n for _, n in window)
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if not close:
            by_fold = {fold(n): n for n in names}
            close = [by_fold[c] for c in difflib.get_close_matches(fold(name), list(by_fold), n=1, cutoff=0.6)]
        return close[0] if close else None
