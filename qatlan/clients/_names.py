"""A display-name ↔ hashed-name cache for Atlan typedefs (tags, custom metadata sets).

Atlan addresses tags and custom metadata by server-generated hashed names; people use display
names. Like pyatlan's caches, this one loads lazily and reloads once when a name is missing.
A name still missing after that reload is remembered, so asking again costs no request until
something else triggers a reload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Protocol, TypeVar

__all__ = ["NameCache"]


class _Named(Protocol):
    @property
    def hashed_name(self) -> str: ...

    @property
    def display_name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class NameCache(Generic[T]):
    """Records by display name and by hashed name, reloaded through `load` on a miss."""

    def __init__(self, load: Callable[[], Awaitable[list[T]]]):
        self._load = load
        self._by_display: dict[str, T] = {}
        self._by_hash: dict[str, T] = {}
        self._missing: set[tuple[str, str]] = set()
        self.loaded = False

    def fill(self, records: Iterable[T]) -> None:
        """Replace the contents (after a full read of the definitions)."""
        self._by_display, self._by_hash = {}, {}
        self.add(records)
        self.loaded = True
        self._missing.clear()

    def add(self, records: Iterable[T]) -> None:
        """Add or replace records (after creating or changing definitions)."""
        for r in records:
            self._by_display[r.display_name] = r
            self._by_hash[r.hashed_name] = r
            self._missing.discard(("d", r.display_name))
            self._missing.discard(("h", r.hashed_name))

    async def by_display(self, display_name: str) -> T | None:
        return await self._get("d", display_name, self._by_display)

    async def by_hash(self, hashed_name: str) -> T | None:
        return await self._get("h", hashed_name, self._by_hash)

    async def _get(self, kind: str, key: str, index: dict[str, T]) -> T | None:
        if key in index:
            return index[key]
        if self.loaded and (kind, key) in self._missing:
            return None
        await self._load()  # the loader fills this cache
        found = (self._by_display if kind == "d" else self._by_hash).get(key)
        if found is None:
            self._missing.add((kind, key))
        return found
