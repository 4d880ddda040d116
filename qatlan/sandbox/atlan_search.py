"""The index-search DSL of the sandbox Atlan (reference §2): compile, filter, sort, page.

A query is compiled once into a predicate over stored entities (`atlan_query`: field names
of §2.2 and the supported clauses). The clauses every hit must match are first looked up in
the store's index (`atlan_index`: `term`/`terms` on `__guid`, `__typeName`, `qualifiedName`,
`connectionQualifiedName`; numeric timestamp ranges), and the predicate and the persona's read
filter run only on the smallest candidate set, taken in store order; the hits are then sorted.
The index narrows, it never decides: answers are those of a scan of every entity.

The filtered and sorted guid list is cached per (query, sort, persona scope, store version), so
paging through a large world only slices it. Range filters on `__timestamp` /
`__modificationTimestamp` at the top of a `bool` are applied after the cache (pyatlan's
timestamp paging changes only them), by bisection when the list is sorted on that field. When
such a range selects far fewer entities than the rest of the query (changes since a recent
time), its candidates come from the timestamp index and the result is cached with the range.
"""

from __future__ import annotations

import bisect
import json
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qatlan.sandbox._util import gc_paused
from qatlan.sandbox.atlan_index import plan
from qatlan.sandbox.atlan_query import (
    SUPERTYPES,
    always,
    check_keys,
    clauses,
    compile_query,
    field_getter,
    in_range,
    number,
    query_error,
    range_bounds,
    raw_getter,
)
from qatlan.sandbox.atlan_store import AtlanStore, AtlasApiError, bad_request

__all__ = [
    "SUPERTYPES",
    "SearchRequest",
    "SortKey",
    "compile_query",
    "field_getter",
    "parse_request",
    "parse_sort",
    "query_error",
    "raw_getter",
    "search",
    "sort_guids",
]

Entity = dict[str, Any]

TOTAL_HITS_CAP = 10_000
_TIMESTAMPS = {"__timestamp": "createTime", "__modificationTimestamp": "updateTime"}
_DSL_KEYS = {"from", "size", "query", "sort", "track_total_hits", "aggregations", "aggs", "post_filter", "_source", "timeout"}


def window_error(requested: int, window: int) -> AtlasApiError:
    # UNCONFIRMED: the metastore wraps Elasticsearch's result-window error this way
    return query_error(
        f"Result window is too large, from + size must be less than or equal to: [{window}] but was "
        f"[{requested}]. See the scroll api for a more efficient way to request large data sets. This "
        "limit can be set by changing the [index.max_result_window] index level setting."
    )


# ---- sorting -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SortKey:
    field: str
    desc: bool = False
    missing_first: bool = False


def parse_sort(sort: Any) -> list[SortKey]:
    """`sort` as Elasticsearch takes it: a field, {field: order} or {field: {"order": ...}}, or a list."""
    items = sort if isinstance(sort, list) else [sort] if sort else []
    keys = []
    for item in items:
        if isinstance(item, str):
            field, spec = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            field, spec = next(iter(item.items()))
            spec = {"order": spec} if isinstance(spec, str) else spec
        else:
            raise query_error(f"[parsing_exception] malformed sort item {item!r}")
        if not isinstance(spec, dict):
            raise query_error(f"[parsing_exception] malformed sort for [{field}]")
        check_keys(spec, {"order", "missing", "unmapped_type", "mode"}, f"sort.{field}")
        order = str(spec.get("order", "desc" if field == "_score" else "asc")).lower()
        if order not in ("asc", "desc"):
            raise query_error(f"[parsing_exception] sort order of [{field}] must be asc or desc")
        if field not in ("_score", "_doc"):  # every hit scores the same; _doc is index order
            raw_getter(field)
            keys.append(SortKey(field, order == "desc", spec.get("missing") == "_first"))
    return keys


def _sortable(value: Any) -> tuple[int, Any]:
    kind = value.__class__
    if kind is str:
        return (1, value)
    if kind is int or kind is float:
        return (0, value)
    if kind is bool:
        return (0, int(value))
    return (2, json.dumps(value, sort_keys=True))


def _component(key: SortKey, entities: dict[str, Entity]) -> Callable[[str], tuple]:
    """One sort key; missing values sort last unless `missing: _first` (also when descending)."""
    raw = raw_getter(key.field)
    missing = (1,) if key.missing_first == key.desc else (-1,)
    pick = max if key.desc else min

    def component(g: str) -> tuple:
        value = raw(entities[g])
        if value is None:
            return missing
        if value.__class__ is list or value.__class__ is tuple:
            values = [_sortable(x) for x in value if x is not None]
            return (0, pick(values)) if values else missing
        return (0, _sortable(value))

    return component


def sort_guids(guids: list[str], entities: dict[str, Entity], keys: list[SortKey]) -> None:
    """Sort in place; consecutive keys with one direction sort in one stable pass, last group first."""
    groups: list[list[SortKey]] = []
    for key in keys:
        if groups and groups[-1][0].desc == key.desc:
            groups[-1].append(key)
        else:
            groups.append([key])
    for group in reversed(groups):
        parts = [_component(k, entities) for k in group]
        if len(parts) == 1:
            guids.sort(key=parts[0], reverse=group[0].desc)
        elif len(parts) == 2:
            first, second = parts
            guids.sort(key=lambda g: (first(g), second(g)), reverse=group[0].desc)
        else:
            guids.sort(key=lambda g: tuple(p(g) for p in parts), reverse=group[0].desc)


# ---- requests ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchRequest:
    start: int
    size: int
    query: dict[str, Any]
    sort: list[SortKey]
    sort_raw: Any
    track_total_hits: Any


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise query_error(f"[parsing_exception] [{name}] must be a number")
    try:
        n = int(value)
    except ValueError:
        raise query_error(f"[parsing_exception] [{name}] must be a number") from None
    if n < 0:
        raise query_error(f"[illegal_argument_exception] [{name}] parameter cannot be negative, found [{n}]")
    return n


def parse_request(body: Any, max_result_window: int) -> SearchRequest:
    """Validate an indexsearch body (raises AtlasApiError 400)."""
    dsl = body.get("dsl") if isinstance(body, dict) else None
    if not isinstance(dsl, dict) or not dsl:
        raise bad_request("Invalid search query")
    check_keys(dsl, _DSL_KEYS, "dsl")
    if dsl.get("aggregations") or dsl.get("aggs"):
        raise query_error("[parsing_exception] aggregations are not supported by the sandbox")
    start, size = _int(dsl.get("from", 0), "from"), _int(dsl.get("size", 10), "size")
    if start + size > max_result_window:
        raise window_error(start + size, max_result_window)
    query = dsl.get("query", {"match_all": {}})
    if query == {}:
        raise query_error("[parsing_exception] query malformed, empty clause found")
    if dsl.get("post_filter"):
        query = {"bool": {"filter": [query, dsl["post_filter"]]}}
    compile_query(query)  # validate every clause, also when the result comes from the cache
    return SearchRequest(start, size, query, parse_sort(dsl.get("sort")), dsl.get("sort"), dsl.get("track_total_hits", False))


def total_hits(count: int, track: Any) -> int:
    if track is True:
        return count
    if isinstance(track, int) and not isinstance(track, bool) and track >= 0:
        return min(count, track)
    return min(count, TOTAL_HITS_CAP)


# ---- execution with a cache --------------------------------------------------------------

class _Lru:
    def __init__(self, size: int = 8):
        self.size = size
        self.items: OrderedDict[tuple, list[str]] = OrderedDict()

    def get(self, key: tuple) -> list[str] | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple, value: list[str]) -> None:
        version = key[-1]
        for old in [k for k in self.items if k[-1] != version]:  # stale after a write
            del self.items[old]
        self.items[key] = value
        while len(self.items) > self.size:
            self.items.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[AtlanStore, _Lru] = weakref.WeakKeyDictionary()


def _cache_for(store: AtlanStore) -> _Lru:
    cache = _CACHES.get(store)
    if cache is None:
        cache = _CACHES[store] = _Lru()
    return cache


def _split_timestamp_ranges(query: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, list]]]:
    """Take numeric `range` clauses on the timestamps out of a top-level bool's filter/must."""
    body = query.get("bool")
    if not isinstance(body, dict):
        return query, []
    rest, residual = dict(body), []
    for key in ("filter", "must"):
        kept = []
        for clause in clauses(body.get(key), key):
            found = _timestamp_range(clause)
            (residual.append(found) if found else kept.append(clause))
        if key in body:
            rest[key] = kept
    if not residual:
        return query, []
    if rest.get("should") and "minimum_should_match" not in rest:
        rest["minimum_should_match"] = 0 if (body.get("filter") or body.get("must")) else 1
    hasclauses = any(rest.get(k) for k in ("filter", "must", "should", "must_not"))
    return ({"bool": rest} if hasclauses else {"match_all": {}}), residual


def _timestamp_range(clause: Any) -> tuple[str, str, list] | None:
    spec = clause.get("range") if isinstance(clause, dict) and len(clause) == 1 else None
    if not isinstance(spec, dict) or len(spec) != 1:
        return None
    field, bounds_spec = next(iter(spec.items()))
    if field not in _TIMESTAMPS:
        return None
    bounds = range_bounds(bounds_spec, "range")
    if not all(number(b) is not None and not isinstance(b, str) for _, b in bounds):
        return None
    return field, _TIMESTAMPS[field], bounds


def _apply_ranges(store: AtlanStore, guids: list[str], residual: list, sort: list[SortKey]) -> list[str]:
    ents = store.entities
    fields = {r[0] for r in residual}
    if sort and not sort[0].desc and fields == {sort[0].field}:
        attr = residual[0][1]
        lo, hi = 0, len(guids)
        for _, _, bounds in residual:
            for op, bound in bounds:
                cut = (bisect.bisect_left if op in ("gte", "lt") else bisect.bisect_right)(
                    guids, bound, key=lambda g: ents[g][attr])
                lo, hi = (max(lo, cut), hi) if op in ("gt", "gte") else (lo, min(hi, cut))
        return guids[lo:hi] if lo < hi else []
    return [g for g in guids if all(in_range(ents[g][attr], bounds) for _, attr, bounds in residual)]


def _filter_sorted(
    store: AtlanStore, persona: dict[str, Any], query: dict[str, Any], sort: list[SortKey],
    candidates: list[str] | None = None, ranges: list | tuple = (),
) -> list[str]:
    """Guids matching `query` (and `ranges`) that the persona reads, sorted; only `candidates`
    (in store order) are tested when given."""
    pred, readable = compile_query(query), store.read_filter(persona)
    ents = store.entities
    with gc_paused():
        if candidates is not None:
            guids = [g for g in candidates if _passes(ents[g], pred, readable, ranges)]
        elif pred is always and readable is None:
            guids = list(ents)
        elif readable is None:
            guids = [g for g, e in ents.items() if pred(e)]
        else:
            guids = [g for g, e in ents.items() if readable(e) and pred(e)]
        if sort:
            sort_guids(guids, ents, sort)
    return guids


def _passes(e: Entity, pred: Callable[[Entity], bool], readable: Callable[[Entity], bool] | None, ranges: Any) -> bool:
    if readable is not None and not readable(e):
        return False
    return pred(e) and all(in_range(e[attr], bounds) for _, attr, bounds in ranges)


def _matching(store: AtlanStore, persona: dict[str, Any], req: SearchRequest) -> list[str]:
    """The sorted guids of every hit, from the cache when the store has not changed.

    Timestamp ranges on the first (ascending) sort field are cut by bisection from a cached
    list; the other ranges are part of that list's cache key. So paging by a moving range on
    the sort field (pyatlan's timestamp paging) under a fixed `__modificationTimestamp` range
    (changes since the last refresh) filters the world once, not once per page.
    """
    base, residual = _split_timestamp_ranges(req.query)
    head = (_canon(base), _canon(req.sort_raw), tuple(sorted(persona.get("read") or [])))
    cache = _cache_for(store)
    first = req.sort[0] if req.sort and not req.sort[0].desc else None
    cut = [r for r in residual if first is not None and r[0] == first.field]
    fixed = [r for r in residual if not (first is not None and r[0] == first.field)]
    key = (*head, _canon(fixed), store.version)
    guids = cache.get(key)
    if guids is None:
        guids = _filtered(store, persona, req, base, fixed, (*head, store.version))
        cache.put(key, guids)
    return _apply_ranges(store, guids, cut, req.sort) if cut else guids


def _filtered(store: AtlanStore, persona: dict[str, Any], req: SearchRequest, base: dict[str, Any],
              ranges: list, whole_key: tuple) -> list[str]:
    """Hits of `base` and `ranges`, sorted; the list without the ranges is cached as well."""
    cache = _cache_for(store)
    guids = cache.get(whole_key)
    if guids is None:
        found = plan(store.index, store.entities, base, ranges)
        if found.ranged:
            return _filter_sorted(store, persona, base, req.sort, found.guids, ranges)
        guids = _filter_sorted(store, persona, base, req.sort, found.guids)
        cache.put(whole_key, guids)
    return _apply_ranges(store, guids, ranges, req.sort) if ranges else guids


def search(store: AtlanStore, persona: dict[str, Any], body: Any) -> tuple[SearchRequest, list[Entity], int]:
    """Run an indexsearch body for a persona: (parsed request, the page's entities, approximateCount)."""
    req = parse_request(body, store.max_result_window)
    guids = _matching(store, persona, req)
    page = guids[req.start: req.start + req.size]
    return req, [store.entities[g] for g in page], total_hits(len(guids), req.track_total_hits)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
