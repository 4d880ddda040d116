"""Qualytics tag definitions before tag writes: external tags exist, overwrite conversions done.

Qualytics applies tags to assets by name, so a pulled Atlan tag needs an external tag of that
name first. For each name the plan pulls:

    no such tag                 → create it (type external, the Atlan integration)
    an external tag             → nothing to do
    a Qualytics tag (global...) → the pull is skipped: Qualytics' own sync leaves the Qualytics
                                  tag alone unless overwrite_tags converts it (reference §8.3)

For each name the plan converts (`overwrite_tags = true`, an `update` change), the global tag
becomes the integration's external tag and keeps its asset links (one PUT for every asset).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from qatlan.errors import ApiError, NotFound
from qatlan.normalize import fold
from qatlan.plan import Action

from qatlan._apply.batching import error_text
from qatlan._apply.definitions import create_until_present
from qatlan._apply.result import Outcome, Work

__all__ = ["prepare_tags"]


class _NoIntegration(Exception):
    pass


class _Integration:
    """The integration id external tags belong to: from the plan, else the only Atlan one."""

    def __init__(self, q: Any, settings: Mapping[str, Any], works: list[Work]):
        self.q = q
        known = settings.get("integration_id") or next(
            (w.change.target.get("integration_id") for w in works if w.change.target.get("integration_id")), None)
        self._id: int | None = known
        self._lock = asyncio.Lock()

    async def get(self) -> int:
        async with self._lock:
            if self._id is None:
                found = [i async for i in self.q.list_integrations() if i.get("type") == "atlan"]
                if len(found) != 1:
                    raise _NoIntegration(
                        f"Qualytics has {len(found)} Atlan integrations; external tags need one: "
                        "set [qualytics] integration_id in qatlan.toml")
                self._id = int(found[0]["id"])
            return self._id


def _by_name(works: list[Work], action: Action) -> dict[str, list[Work]]:
    out: dict[str, list[Work]] = defaultdict(list)
    for w in works:
        t = w.change.target
        if w.open and t.get("side") == "qualytics" and w.change.action is action:
            out[t["tag"]].append(w)
    return out


async def prepare_tags(q: Any, works: list[Work], settings: Mapping[str, Any]) -> set[str]:
    """Make the tag definitions the plan's Qualytics changes need; returns the folded names
    of the tags converted to external in this run (their changes count as applied)."""
    creates, converts = _by_name(works, Action.CREATE), _by_name(works, Action.UPDATE)
    if not creates and not converts:
        return set()
    integration = _Integration(q, settings, works)
    converted: set[str] = set()
    jobs = [_ensure_external(q, name, ws, integration) for name, ws in sorted(creates.items())]
    jobs += [_convert(q, name, ws, integration, converted) for name, ws in sorted(converts.items())]
    await asyncio.gather(*jobs)
    return converted


async def _get(q: Any, name: str) -> dict[str, Any] | None:
    try:
        return await q.get_global_tag(name)
    except NotFound:
        return None


def _fail(works: list[Work], outcome: Outcome, why: str) -> None:
    for w in works:
        w.settle(outcome, why)


async def _ensure_external(q: Any, name: str, works: list[Work], integration: _Integration) -> None:
    try:
        tag = await _get(q, name)
        if tag is None:
            tag = await _create(q, name, await integration.get())
        if tag.get("type") != "external" and any(w.change.target.get("convert") for w in works):
            # overwrite_tags: the Qualytics tag of the same name becomes the external one
            await q.update_global_tag(name, {"type": "external", "integration_id": await integration.get()})
            tag = {**tag, "type": "external"}
        if tag.get("type") != "external":
            _fail(works, Outcome.SKIPPED,
                  f"Qualytics already has a {tag.get('type')} tag named {name!r}; it is not replaced "
                  "by the Atlan tag (set overwrite_tags = true to convert it, as Qualytics' own sync does)")
    except _NoIntegration as exc:
        _fail(works, Outcome.FAILED, str(exc))
    except ApiError as exc:
        _fail(works, Outcome.FAILED, f"creating the external tag {name!r}: {error_text(exc)}")


async def _create(q: Any, name: str, integration_id: int) -> dict[str, Any]:
    """Create an external tag; after a 409, a 5xx or a lost answer, read what is there now."""
    found: list[dict[str, Any] | None] = [None]

    async def create() -> None:
        found[0] = await q.create_global_tag(name, "external", integration_id,
                                             description="From Atlan (qatlan)")

    async def present() -> bool:
        found[0] = await _get(q, name)
        return found[0] is not None

    await create_until_present(create, present)
    return found[0]


async def _convert(q: Any, name: str, works: list[Work], integration: _Integration,
                   converted: set[str]) -> None:
    try:
        tag = await _get(q, name)
        if tag is None:
            _fail(works, Outcome.DRIFTED, f"Qualytics has no tag named {name!r} any more; "
                                          "run `qatlan plan` again")
        elif tag.get("type") != "external":
            await q.update_global_tag(name, {"type": "external", "integration_id": await integration.get()})
            converted.add(fold(name))
    except _NoIntegration as exc:
        _fail(works, Outcome.FAILED, str(exc))
    except ApiError as exc:
        _fail(works, Outcome.FAILED, f"converting the tag {name!r} to external: {error_text(exc)}")
