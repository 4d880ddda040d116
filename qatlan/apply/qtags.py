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
import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from qatlan.apply.batching import error_text
from qatlan.apply.definitions import create_until_present
from qatlan.apply.result import Outcome, Work
from qatlan.clients import QualyticsClient
from qatlan.errors import ApiError
from qatlan.model import QTagDef
from qatlan.normalize import fold
from qatlan.plan import Action

__all__ = ["TagPreparer", "prepare_tags"]


class _NoIntegration(Exception):
    pass


class _Integration:
    """The integration id external tags belong to: from the plan, else the only Atlan one."""

    def __init__(self, q: QualyticsClient, settings: Mapping[str, Any], works: list[Work]):
        self.q = q
        known = settings.get("integration_id") or next(
            (w.change.target.get("integration_id") for w in works if w.change.target.get("integration_id")), None)
        self._id: int | None = known
        self._lock = asyncio.Lock()

    async def get(self) -> int:
        async with self._lock:
            if self._id is None:
                found = await self.q.atlan_integrations()
                if len(found) != 1:
                    raise _NoIntegration(
                        f"Qualytics has {len(found)} Atlan integrations; external tags need one: "
                        "set [qualytics] integration_id in qatlan.toml")
                self._id = found[0]
            return self._id


def _by_name(works: list[Work], action: Action) -> dict[str, list[Work]]:
    out: dict[str, list[Work]] = defaultdict(list)
    for w in works:
        t = w.change.target
        if w.open and t.get("side") == "qualytics" and w.change.action is action:
            out[t["tag"]].append(w)
    return out


async def prepare_tags(q: QualyticsClient, works: list[Work], settings: Mapping[str, Any]) -> set[str]:
    """Make the tag definitions the plan's Qualytics changes need; returns the folded names
    of the tags converted to external in this run (their changes count as applied)."""
    return await TagPreparer(q, settings).prepare(works)


class TagPreparer:
    """`prepare_tags` for an apply that takes its changes a window at a time: each tag name
    is prepared once, and the changes of a later window that pull (or convert) a name
    prepared before settle as that name's first changes did, without another request."""

    def __init__(self, q: QualyticsClient, settings: Mapping[str, Any]):
        self.q, self.settings = q, settings
        #: folded names of the tags converted to external in this run
        self.converted: set[str] = set()
        #: (action, name, converting) -> how its changes settled (None: left open, to write)
        self._done: dict[tuple[Action, str, bool], tuple[Outcome, str | None] | None] = {}
        self._integration: _Integration | None = None

    async def prepare(self, works: list[Work]) -> set[str]:
        """Prepare what `works` need that no earlier call prepared; returns `converted`."""
        jobs = []
        for action in (Action.CREATE, Action.UPDATE):
            for name, ws in sorted(_by_name(works, action).items()):
                key = (action, name, any(w.change.target.get("convert") for w in ws))
                if key in self._done:
                    settled = self._done[key]
                    if settled is not None:
                        _fail(ws, *settled)
                    continue
                if self._integration is None:
                    self._integration = _Integration(self.q, self.settings, works)
                jobs.append(self._once(key, ws, self._integration))
        await asyncio.gather(*jobs)
        return self.converted

    async def _once(self, key: tuple[Action, str, bool], works: list[Work],
                    integration: _Integration) -> None:
        action, name, _ = key
        if action is Action.CREATE:
            await _ensure_external(self.q, name, works, integration)
        else:
            await _convert(self.q, name, works, integration, self.converted)
        first = works[0]
        self._done[key] = None if first.outcome is None else (first.outcome, first.error)


def _fail(works: list[Work], outcome: Outcome, why: str) -> None:
    for w in works:
        w.settle(outcome, why)


async def _ensure_external(q: QualyticsClient, name: str, works: list[Work], integration: _Integration) -> None:
    try:
        tag = await q.tag(name)
        if tag is None:
            tag = await _create(q, name, await integration.get())
        if tag.type != "external" and any(w.change.target.get("convert") for w in works):
            # overwrite_tags: the Qualytics tag of the same name becomes the external one
            await q.make_external(name, await integration.get())
            tag = dataclasses.replace(tag, type="external")
        if tag.type != "external":
            _fail(works, Outcome.SKIPPED,
                  f"Qualytics already has a {tag.type} tag named {name!r}; it is not replaced "
                  "by the Atlan tag (set overwrite_tags = true to convert it, as Qualytics' own sync does)")
    except _NoIntegration as exc:
        _fail(works, Outcome.FAILED, str(exc))
    except ApiError as exc:
        _fail(works, Outcome.FAILED, f"creating the external tag {name!r}: {error_text(exc)}")


async def _create(q: QualyticsClient, name: str, integration_id: int) -> QTagDef:
    """Create an external tag; after a 409, a 5xx or a lost answer, read what is there now."""
    found: list[QTagDef | None] = [None]

    async def create() -> None:
        found[0] = await q.create_external_tag(name, integration_id, description="From Atlan (qatlan)")

    async def present() -> bool:
        found[0] = await q.tag(name)
        return found[0] is not None

    await create_until_present(create, present)
    return found[0]


async def _convert(q: QualyticsClient, name: str, works: list[Work], integration: _Integration,
                   converted: set[str]) -> None:
    try:
        tag = await q.tag(name)
        if tag is None:
            _fail(works, Outcome.DRIFTED, f"Qualytics has no tag named {name!r} any more; "
                                          "run `qatlan plan` again")
        elif tag.type != "external":
            await q.make_external(name, await integration.get())
            converted.add(fold(name))
    except _NoIntegration as exc:
        _fail(works, Outcome.FAILED, str(exc))
    except ApiError as exc:
        _fail(works, Outcome.FAILED, f"converting the tag {name!r} to external: {error_text(exc)}")
