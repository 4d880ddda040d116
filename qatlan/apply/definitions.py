"""Definitions first: Atlan tag and custom metadata typedefs, then the names they resolve to.

Typedef writes are not idempotent on the wire (a repeated create is a 409, a repeated PUT
would add attributes twice), so every create is guarded: re-read the definitions, write only
what is missing, and after a 409, a 5xx or a lost answer read again to see whether it landed
(and try again if it did not: `create_until_present`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from qatlan.apply.batching import error_text
from qatlan.apply.result import Outcome, Work
from qatlan.clients import AtlanClient, Names
from qatlan.errors import ApiConnectionError, ApiError, Conflict, ServerError
from qatlan.model import ACMDef
from qatlan.normalize import fold
from qatlan.plan import Change

__all__ = ["UNSURE", "NameResolver", "apply_typedefs", "create_until_present", "resolve_names",
           "skip_dependents", "unresolved"]

#: failures after which a write may or may not have happened
UNSURE = (Conflict, ServerError, ApiConnectionError)


async def apply_typedefs(atlan: AtlanClient, works: list[Work]) -> None:
    """Create the tag definitions and the custom metadata set (or its missing attributes)."""
    tags = [w for w in works if w.open and w.change.target.get("category") == "tag"]
    sets = [w for w in works if w.open and w.change.target.get("category") == "cm"]
    if tags:
        await _tag_defs(atlan, tags)
    for w in sets:
        await _cm_def(atlan, w)


async def create_until_present(create: Callable[[], Awaitable[Any]],
                               present: Callable[[], Awaitable[bool]], attempts: int = 3) -> None:
    """Run a create that is not idempotent on the wire (the clients do not retry it after it
    may have reached the server). After an unsure failure (409, 5xx, a lost answer) look
    whether it landed; if not, try again, up to `attempts` times in all."""
    for attempt in range(attempts):
        try:
            await create()
            return
        except UNSURE:
            if await present():
                return
            if attempt == attempts - 1:
                raise


async def _tag_defs(atlan: AtlanClient, works: list[Work]) -> None:
    names = list(dict.fromkeys(w.change.target["display_name"] for w in works))
    missing: list[str] = []

    async def present() -> bool:
        existing = {fold(d.display_name) for d in await atlan.tag_defs()}
        missing[:] = [n for n in names if fold(n) not in existing]
        return not missing

    try:
        if await present():
            _settle_all(works, Outcome.ALREADY)
            return
        before = set(missing)
        for w in works:
            if w.change.target["display_name"] not in before:
                w.settle(Outcome.ALREADY)
        await create_until_present(lambda: atlan.create_tag_defs(list(missing)), present)
        _settle_all([w for w in works if w.open], Outcome.APPLIED)
    except ApiError as exc:
        _settle_all([w for w in works if w.open], Outcome.FAILED, error_text(exc))


def _settle_all(works: list[Work], outcome: Outcome, error: str | None = None) -> None:
    for w in works:
        w.settle(outcome, error)


def _wanted(change: Change) -> list[tuple[str, str]]:
    return [(a["name"], a["type"]) for a in change.after["attributes"]]


async def _cm_def(atlan: AtlanClient, w: Work) -> None:
    """The custom metadata set: create it, or add its missing attributes."""
    name = w.change.target["display_name"]
    found: list[ACMDef | None] = [None]

    async def present() -> bool:
        found[0] = next((d for d in await atlan.cm_defs() if d.display_name == name), None)
        return found[0] is not None and not _missing(found[0], w.change)

    async def create() -> None:
        missing = _missing(found[0], w.change)
        if found[0] is None:
            await atlan.create_cm_set(name, missing)
        else:
            await atlan.add_cm_attributes(found[0], missing)

    try:
        if await present():
            w.settle(Outcome.ALREADY)
            return
        await create_until_present(create, present)
        w.settle(Outcome.APPLIED)
    except ApiError as exc:
        w.settle(Outcome.FAILED, error_text(exc))


def _missing(found: ACMDef | None, change: Change) -> list[tuple[str, str]]:
    have = {a.display_name for a in found.attributes} if found else set()
    return [(n, k) for n, k in _wanted(change) if n not in have]


# --------------------------------------------------------------------------- names


def _needs_names(works: list[Work]) -> tuple[bool, bool]:
    tags = cm = False
    for w in works:
        t = w.change.target
        if t.get("side") != "atlan":
            continue
        if t.get("part") == "tag" and not t.get("tag_hash"):
            tags = True
        if t.get("part") == "cm" and (not t.get("set_hash") or None in (t.get("attributes") or {}).values()):
            cm = True
    return tags, cm


async def resolve_names(atlan: AtlanClient, works: list[Work], cm_set_name: str) -> Names:
    """Hashed names the plan did not know (definitions created since); reads only if needed."""
    return await NameResolver(atlan, cm_set_name).resolve(works)


class NameResolver:
    """`resolve_names` for an apply that takes its changes a window at a time: the
    definitions are created before the first window, so each read is made once, when a
    window first needs it, and its names serve the windows after."""

    def __init__(self, atlan: AtlanClient, cm_set_name: str):
        self.atlan, self.cm_set_name = atlan, cm_set_name
        self.names = Names()
        self._read: set[str] = set()

    async def resolve(self, works: list[Work]) -> Names:
        need_tags, need_cm = _needs_names([w for w in works if w.open])
        names = self.names
        if need_tags and "tags" not in self._read:
            for d in sorted(await self.atlan.tag_defs(), key=lambda d: (d.display_name, d.hashed_name)):
                names.tags.setdefault(fold(d.display_name), d.hashed_name)
            self._read.add("tags")
        if need_cm and "cm" not in self._read:
            found = next((d for d in await self.atlan.cm_defs() if d.display_name == self.cm_set_name), None)
            if found is not None:
                names.cm_set = found.hashed_name
                names.cm_attributes = {a.display_name: a.hashed_name for a in found.attributes}
            self._read.add("cm")
        return names


def unresolved(w: Work, names: Names) -> str | None:
    """Why an Atlan value change cannot be written (a name it needs is unknown), or None."""
    t, c = w.change.target, w.change
    if t.get("part") == "tag" and not names.tag_hash(c):
        return f"Atlan has no tag named {t.get('tag')!r}; its definition was not created"
    if t.get("part") == "cm":
        if not names.set_hash(c):
            return f"Atlan has no custom metadata set {t.get('set')!r}; its definition was not created"
        missing = [a for a in set(c.before or {}) | set(c.after or {}) if not names.attr_hash(c, a)]
        if missing:
            return f"the custom metadata set {t.get('set')!r} has no attribute(s) {', '.join(sorted(missing))}"
    return None


def skip_dependents(works: list[Work], typedefs: list[Work]) -> None:
    """Skip the value changes whose definition failed in this run."""
    failed = {w.change.address: w.error for w in typedefs
              if w.outcome in (Outcome.FAILED, Outcome.SKIPPED, Outcome.DRIFTED)}
    if not failed:
        return
    for w in works:
        bad = [a for a in w.change.target.get("needs", ()) if a in failed]
        if w.open and bad:
            w.settle(Outcome.SKIPPED, f"needs {bad[0]}, which failed: {failed[bad[0]]}")
