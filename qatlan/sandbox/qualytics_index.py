"""Indexes of the Qualytics store: a table of records by id and by parent, and record copies."""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

__all__ = ["Table", "copy_record"]


def copy_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough that no list or object inside is shared with the caller."""
    out = rec.copy()
    for key, value in out.items():
        if type(value) is list or type(value) is dict:
            out[key] = value.copy()
    return out


def _discard_sorted(ids: list[int], value: int) -> None:
    i = bisect_left(ids, value)
    if i < len(ids) and ids[i] == value:
        del ids[i]


class Table:
    """Records of one kind by id, ids kept sorted and, for child kinds, ids by parent id."""

    def __init__(self, parent_key: str | None):
        self.parent_key = parent_key
        self.rows: dict[int, dict[str, Any]] = {}
        self.ids: list[int] = []
        self.children: dict[int, list[int]] = {}

    def rebuild(self) -> None:
        self.ids = sorted(self.rows)
        self.children = {}
        if self.parent_key:
            for rec_id in self.ids:
                self.children.setdefault(self.rows[rec_id][self.parent_key], []).append(rec_id)

    def insert(self, rec: dict[str, Any]) -> None:
        self.rows[rec["id"]] = rec
        insort(self.ids, rec["id"])
        if self.parent_key:
            insort(self.children.setdefault(rec[self.parent_key], []), rec["id"])

    def remove(self, rec_id: int) -> dict[str, Any]:
        rec = self.rows.pop(rec_id)
        _discard_sorted(self.ids, rec_id)
        if self.parent_key:
            _discard_sorted(self.children.get(rec[self.parent_key], []), rec_id)
        return rec

    def replace(self, rec: dict[str, Any]) -> None:
        rec_id, key = rec["id"], self.parent_key
        old = self.rows[rec_id]
        if key and old[key] != rec[key]:
            _discard_sorted(self.children.get(old[key], []), rec_id)
            insort(self.children.setdefault(rec[key], []), rec_id)
        self.rows[rec_id] = rec

    def under(self, parent_id: int) -> list[int]:
        return self.children.get(parent_id, [])

    def next_id(self) -> int:
        return self.ids[-1] + 1 if self.ids else 1
