"""Paging through Atlan's index search (pure: decides the next request, does no I/O).

Offset paging (`from`/`size`) works while `from + size` stays within the index's result window.
Past it, pyatlan's timestamp paging takes over (atlan-api reference §2.5): sort by
`[__timestamp asc, __guid asc]`; after each page, if its first and last `createTime` differ,
ask again from 0 with `range __timestamp gte <last createTime>` and drop GUIDs already seen;
if they are equal, fall back to `from = <number of GUIDs seen>` without the range.

Without a caller sort, offset pages are already sorted by `[__timestamp, __guid]`, so switching
to timestamp paging continues where offset paging stopped. With a caller sort the order differs,
so timestamp paging starts over and the GUIDs already returned are dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["GUID_SORT", "TIMESTAMP_SORT", "SearchPager", "with_filter", "with_guid_tiebreak"]

GUID_SORT: dict[str, Any] = {"__guid": {"order": "asc"}}
TIMESTAMP_SORT: list[dict[str, Any]] = [{"__timestamp": {"order": "asc"}}, GUID_SORT]


def with_guid_tiebreak(sort: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`sort` plus `__guid asc` at the end unless it already sorts on `__guid` (as pyatlan does)."""
    out = [dict(s) for s in sort]
    if not any("__guid" in s for s in out):
        out.append(dict(GUID_SORT))
    return out


def with_filter(query: Mapping[str, Any], clause: Mapping[str, Any]) -> dict[str, Any]:
    """`query` with `clause` added to its bool filter (or both wrapped in a new bool)."""
    if set(query) == {"bool"} and isinstance(query["bool"], Mapping):
        bool_ = dict(query["bool"])
        existing = bool_.get("filter")
        filters = list(existing) if isinstance(existing, list) else ([existing] if existing else [])
        bool_["filter"] = [*filters, dict(clause)]
        return {"bool": bool_}
    return {"bool": {"filter": [dict(query), dict(clause)]}}


class SearchPager:
    """The state of one paged search: `dsl()` gives the next request, `take()` reads its answer."""

    def __init__(
        self,
        query: Mapping[str, Any],
        *,
        sort: Sequence[Mapping[str, Any]] | None = None,
        page_size: int = 300,
        window: int = 10_000,
    ):
        if page_size < 1 or page_size > window:
            raise ValueError(f"page_size must be 1..{window}, got {page_size}")
        self._query = copy.deepcopy(dict(query))
        self._user_sort = bool(sort)
        self._sort = with_guid_tiebreak(sort) if sort else copy.deepcopy(TIMESTAMP_SORT)
        self._size = page_size
        self._window = window
        self._from = 0
        self._range_ts: int | None = None
        self._first_page = True
        self.mode = "offset"
        #: GUIDs returned so far
        self.seen: set[str] = set()
        #: GUIDs seen in timestamp order (the same set unless a caller sort forced a restart)
        self._prefix: set[str] = self.seen
        self.done = False

    def dsl(self) -> dict[str, Any] | None:
        """The `dsl` of the next request, or None when the search is complete."""
        if self.done:
            return None
        query = self._query
        if self._range_ts is not None:
            query = with_filter(query, {"range": {"__timestamp": {"gte": self._range_ts}}})
        dsl = {
            "from": self._from,
            "size": self._size,
            "track_total_hits": True,
            "query": query,
            "sort": copy.deepcopy(self._sort),
        }
        return dsl

    def take(self, response: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Read the answer to the last `dsl()`; returns the hits not returned before."""
        entities = [e for e in (response.get("entities") or ()) if isinstance(e, Mapping)]
        if not entities:
            self.done = True
            return []
        new = [dict(e) for e in entities if e.get("guid") is None or e.get("guid") not in self.seen]
        self.seen.update(e["guid"] for e in new if e.get("guid") is not None)
        count = response.get("approximateCount")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        if count is not None and self._from + len(entities) >= count:
            self.done = True
            return new
        before = (self._from, self._range_ts)
        if self.mode == "offset":
            self._next_offset(entities, count)
        else:
            self._next_timestamp(entities)
        if not new and (self._from, self._range_ts) == before:
            self.done = True  # no progress possible: the same request would come back again
        self._first_page = False
        return new

    def _next_offset(self, entities: list[Mapping[str, Any]], count: int | None) -> None:
        self._from += len(entities)
        # a count equal to the window may be a capped count, so it counts as larger
        larger_than_window = self._first_page and count is not None and count >= self._window
        if larger_than_window or self._from + self._size > self._window:
            self.mode = "timestamp"
            if self._user_sort:
                self._sort = copy.deepcopy(TIMESTAMP_SORT)
                self._prefix, self._from, self._range_ts = set(), 0, None
            else:
                self._next_timestamp(entities)

    def _next_timestamp(self, entities: list[Mapping[str, Any]]) -> None:
        self._prefix.update(e["guid"] for e in entities if e.get("guid") is not None)
        first, last = entities[0].get("createTime"), entities[-1].get("createTime")
        if isinstance(first, int) and isinstance(last, int) and first != last:
            self._range_ts, self._from = last, 0
        else:
            self._range_ts, self._from = None, len(self._prefix)
