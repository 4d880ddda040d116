"""Indexes of the sandbox Atlan entities, used to narrow an index search before it runs.

`EntityIndex` is kept by `AtlanStore.put` / `remove` and holds, for the stored entities:

- the rank of each guid in `AtlanStore.entities` (its insertion order, which is the order of
  hits before sorting), so that candidates can be put back in that order;
- guids by `typeName` (`__typeName`);
- guids by the keyword form of the `qualifiedName` and `connectionQualifiedName` attributes;
- `createTime` (`__timestamp`) and `updateTime` (`__modificationTimestamp`) in ascending order
  (`TimeIndex`: writes append, the list is merged and verified lazily when a range asks).

`plan()` reads the clauses every hit must match (a query that is not a bool, and the `filter` /
`must` clauses of bools, recursively): `term` / `terms` on `__guid`, `__typeName`,
`qualifiedName` and `connectionQualifiedName` (`.keyword` or not; not case-insensitive ones),
`match_none`, and the numeric timestamp ranges that `atlan_search` takes out of the query. It
picks the smallest candidate set. The search then runs the whole compiled query on the
candidates only, so the index narrows but never decides.
"""

from __future__ import annotations

import json
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

__all__ = ["KEYED_ATTRIBUTES", "EntityIndex", "Plan", "TimeIndex", "keyword", "plan"]

Entity = dict[str, Any]
Entities = dict[str, Entity]
#: attributes whose keyword values are indexed
KEYED_ATTRIBUTES = ("qualifiedName", "connectionQualifiedName")
#: index field (without `.keyword`) -> entity key of the TimeIndex
_TIME_FIELDS = {"__timestamp": "createTime", "__modificationTimestamp": "updateTime"}
#: candidates are used only below this share of the store (a full scan is as quick above it)
_USE_BELOW = 0.9
#: the timestamp candidates replace the query's own only when this many times fewer
_RANGE_ADVANTAGE = 8
_first = operator.itemgetter(0)


def keyword(value: Any) -> str:
    """Keyword form of a value, so that 5, 5.0 and "5" match as Elasticsearch matches them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return json.dumps(value, sort_keys=True)


def keyword_keys(value: Any) -> tuple[str, ...]:
    """The keyword forms a stored value matches a `term` with (as `atlan_query` tests them)."""
    if value is None:
        return ()
    if value.__class__ is str:
        return (value,)
    if value.__class__ is list or value.__class__ is tuple:
        return tuple({(x if x.__class__ is str else keyword(x)) for x in value if x is not None})
    return (keyword(value),)


def _plain_number(value: Any) -> bool:
    kind = value.__class__
    return kind is int or (kind is float and value == value)


# ---- timestamps --------------------------------------------------------------------------

class TimeIndex:
    """(time, guid) pairs of one entity key in ascending time, built on first use.

    Writes append pairs (they mostly carry the latest time, so the list stays in order) and
    count the pairs they make stale; a read merges the appended pairs, skips stale ones, and
    rebuilds the list once half of it is stale.
    """

    def __init__(self, attr: str):
        self.attr = attr
        self.built = False
        self._sorted: list[tuple[float, str]] = []
        self._tail: list[tuple[float, str]] = []
        self._stale = 0
        self._odd: set[str] = set()  # guids whose value is not a plain number: always candidates

    def add(self, guid: str, value: Any) -> None:
        if not self.built:  # the build reads every entity
            return
        if _plain_number(value):
            self._tail.append((value, guid))
        else:
            self._odd.add(guid)

    def drop(self, guid: str, value: Any) -> None:
        if not self.built:
            return
        if _plain_number(value):
            self._stale += 1
        else:
            self._odd.discard(guid)

    def count(self, bounds: list[tuple[str, Any]], entities: Entities) -> int:
        """At least the number of entities in the range (stale pairs included)."""
        self._settle(entities)
        lo, hi = self._span(bounds)
        return max(0, hi - lo) + len(self._odd)

    def guids(self, bounds: list[tuple[str, Any]], entities: Entities) -> set[str]:
        """Every stored entity whose value is in the numeric range (and the odd ones)."""
        self._settle(entities)
        lo, hi = self._span(bounds)
        attr = self.attr
        found = {g for t, g in self._sorted[lo:hi] if (e := entities.get(g)) is not None and e[attr] == t}
        return found | self._odd

    def _span(self, bounds: list[tuple[str, Any]]) -> tuple[int, int]:
        pairs, lo, hi = self._sorted, 0, len(self._sorted)
        for op, bound in bounds:
            if op in ("gt", "gte"):
                find = bisect_left if op == "gte" else bisect_right
                lo = max(lo, find(pairs, bound, key=_first))
            else:
                find = bisect_left if op == "lt" else bisect_right
                hi = min(hi, find(pairs, bound, key=_first))
        return lo, hi

    def _settle(self, entities: Entities) -> None:
        if not self.built or self._stale > max(1024, len(self._sorted) // 2):
            self._build(entities)
            return
        tail, pairs = self._tail, self._sorted
        if tail:
            self._tail = []
            in_order = all(tail[i][0] <= tail[i + 1][0] for i in range(len(tail) - 1))
            pairs.extend(tail)
            if not (in_order and (len(pairs) == len(tail) or tail[0][0] >= pairs[-len(tail) - 1][0])):
                pairs.sort(key=_first)  # a stable merge of sorted runs

    def _build(self, entities: Entities) -> None:
        attr = self.attr
        self._sorted = sorted(((e[attr], g) for g, e in entities.items() if _plain_number(e[attr])), key=_first)
        self._odd = {g for g, e in entities.items() if not _plain_number(e[attr])}
        self._tail, self._stale, self.built = [], 0, True


# ---- the entity index --------------------------------------------------------------------

#: guids by key: one guid as a str (most qualifiedNames), several as a set
Table = dict[str, str | set[str]]


def _add(table: Table, key: str, guid: str) -> None:
    found = table.get(key)
    if found is None:
        table[key] = guid
    elif found.__class__ is str:
        if found != guid:
            table[key] = {found, guid}
    else:
        found.add(guid)


def _discard(table: Table, key: str, guid: str) -> None:
    found = table.get(key)
    if found is None:
        return
    if found.__class__ is str:
        if found == guid:
            del table[key]
        return
    found.discard(guid)
    if len(found) == 1:
        table[key] = next(iter(found))


def members(found: str | set[str]) -> Iterable[str]:
    return (found,) if found.__class__ is str else found


class EntityIndex:
    """What `plan()` needs of the stored entities; `replace` / `remove` keep it current."""

    def __init__(self) -> None:
        self.rank: dict[str, int] = {}
        self._next = 0
        self.by_type: Table = {}
        self.by_attr: dict[str, Table] = {a: {} for a in KEYED_ATTRIBUTES}
        self.times: dict[str, TimeIndex] = {a: TimeIndex(a) for a in _TIME_FIELDS.values()}

    def replace(self, old: Entity | None, new: Entity) -> None:
        """`new` is stored in place of `old` (None when the guid is new)."""
        if old is None:
            self._insert(new)
            return
        guid = new["guid"]
        if old["typeName"] != new["typeName"]:
            _discard(self.by_type, old["typeName"], guid)
            _add(self.by_type, new["typeName"], guid)
        before_attrs, after_attrs = old["attributes"], new["attributes"]
        for attr, table in self.by_attr.items():
            before, after = before_attrs.get(attr), after_attrs.get(attr)
            if before.__class__ is str and after.__class__ is str and before == after:
                continue
            gone, came = set(keyword_keys(before)), set(keyword_keys(after))
            for key in gone - came:
                _discard(table, key, guid)
            for key in came - gone:
                _add(table, key, guid)
        for attr, times in self.times.items():
            before, after = old.get(attr), new.get(attr)
            if before.__class__ is not after.__class__ or before != after:
                times.drop(guid, before)
                times.add(guid, after)

    def _insert(self, ent: Entity) -> None:
        guid, attrs = ent["guid"], ent["attributes"]
        self.rank[guid] = self._next
        self._next += 1
        _add(self.by_type, ent["typeName"], guid)
        for attr, table in self.by_attr.items():
            value = attrs.get(attr)
            if value.__class__ is str and value not in table:  # the common case, made quick
                table[value] = guid
            else:
                for key in keyword_keys(value):
                    _add(table, key, guid)
        for attr, times in self.times.items():
            if times.built:
                times.add(guid, ent.get(attr))

    def remove(self, ent: Entity) -> None:
        guid = ent["guid"]
        del self.rank[guid]
        _discard(self.by_type, ent["typeName"], guid)
        for attr, table in self.by_attr.items():
            for key in keyword_keys(ent["attributes"].get(attr)):
                _discard(table, key, guid)
        for attr, times in self.times.items():
            times.drop(guid, ent.get(attr))

    def in_store_order(self, guids: Iterable[str], entities: Entities) -> list[str]:
        found = guids if isinstance(guids, (set, frozenset)) else set(guids)
        if len(found) * 8 > len(entities):
            return [g for g in entities if g in found]
        return sorted(found, key=self.rank.__getitem__)


# ---- planning a search -------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """Candidate guids in store order (None: every entity); `ranged` when the timestamp ranges gave them."""

    guids: list[str] | None
    ranged: bool = False


Option = tuple[int, Callable[[], set[str]]]


def plan(index: EntityIndex, entities: Entities, query: Any, ranges: list[tuple[str, str, list]]) -> Plan:
    """Candidates for `query` AND the numeric `ranges` ((field, entity key, bounds) triples)."""
    options = [o for o in (_option(index, entities, c) for c in _necessary(query)) if o is not None]
    best = min(options, key=_first) if options else None
    limit = min(best[0], len(entities)) if best else len(entities)
    ranged: Option | None = None
    for _field, attr, bounds in ranges:
        times = index.times.get(attr)
        if times is None:
            continue
        n = times.count(bounds, entities)
        if n * _RANGE_ADVANTAGE <= limit and (ranged is None or n < ranged[0]):
            ranged = (n, partial(times.guids, bounds, entities))
    if ranged is not None:
        return Plan(index.in_store_order(ranged[1](), entities), True)
    if best is None or best[0] >= len(entities) * _USE_BELOW:
        return Plan(None)
    return Plan(index.in_store_order(best[1](), entities))


def _necessary(query: Any) -> list[Any]:
    """Clauses every hit must match: the query itself, or the filter/must clauses of a bool."""
    if not isinstance(query, dict) or len(query) != 1:
        return []
    kind, body = next(iter(query.items()))
    if kind != "bool":
        return [query]
    if not isinstance(body, dict):
        return []
    out = []
    for key in ("filter", "must"):
        items = body.get(key)
        for clause in [items] if isinstance(items, dict) else items if isinstance(items, list) else []:
            out.extend(_necessary(clause))
    return out


def _option(index: EntityIndex, entities: Entities, clause: dict[str, Any]) -> Option | None:
    """(size, candidates) for one indexed clause, or None."""
    kind, body = next(iter(clause.items()))
    if kind == "match_none":
        return 0, set
    if kind not in ("term", "terms") or not isinstance(body, dict):
        return None
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        return None
    keys = (_term_keys if kind == "term" else _terms_keys)(body[fields[0]])
    name = fields[0].removesuffix(".keyword")
    if keys is None:
        return None
    if name == "__guid":
        found = {k for k in keys if k in entities}
        return len(found), found.copy
    table = index.by_type if name == "__typeName" else index.by_attr.get(name)
    if table is None:
        return None
    sets = [members(table[k]) for k in keys if k in table]
    return sum(map(len, sets)), partial(set().union, *sets)


def _term_keys(spec: Any) -> set[str] | None:
    if isinstance(spec, dict):
        if spec.get("case_insensitive"):
            return None
        spec = spec.get("value")
    return None if spec is None or isinstance(spec, (dict, list)) else {keyword(spec)}


def _terms_keys(values: Any) -> set[str] | None:
    if not isinstance(values, list) or any(v is None or isinstance(v, (dict, list)) for v in values):
        return None
    return {keyword(v) for v in values}
