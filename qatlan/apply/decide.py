"""Pure decisions: what a re-read target says about a change (no I/O here).

The clients return the re-read targets as records (`AAsset`, `ALink`, Qualytics tags); the
readers here turn a record into a change's *current* value, in the same shape as the
change's `before` and `after`; `decide` compares them:

    current == after   → ALREADY  (nothing to write: done before, or by someone else)
    current == before  → WRITE
    anything else      → DRIFTED  (someone changed the target since the plan; not written)

Custom metadata is compared attribute by attribute: every attribute must be at its before or
its after value, and the change is ALREADY when all are at their after value.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from qatlan.clients import Names
from qatlan.model import CM_KIND, AAsset, ALink, QTag
from qatlan.normalize import fold, normalize, normalize_cm
from qatlan.plan import Action, Change

__all__ = [
    "MISSING",
    "Decision",
    "atlan_current",
    "cm_kind",
    "decide",
    "drift_message",
    "link_current",
    "qualytics_current",
]


class _Missing:
    """The target object itself is gone (deleted, archived, or not visible)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Decision(str, Enum):
    WRITE = "write"
    ALREADY = "already"
    DRIFTED = "drifted"


def cm_kind(attr: str) -> str:
    return CM_KIND.get(attr, "string")


def _cm_attrs(change: Change) -> list[str]:
    return sorted(set(change.before or {}) | set(change.after or {}))


# --------------------------------------------------------------------------- current values


def atlan_current(change: Change, asset: AAsset | None, names: Names) -> Any:
    """The current value of a cm, tag or announcement change on `asset` (MISSING: gone)."""
    if asset is None:
        return MISSING
    part = change.target["part"]
    if part == "cm":
        values = dict(asset.cm)
        return {a: values.get(names.attr_hash(change, a) or "") for a in _cm_attrs(change)}
    if part == "tag":
        present = names.tag_hash(change) in asset.tags
        return (change.after or change.before) if present else None
    if part == "announcement":
        a = asset.announcement
        return None if a is None else {"type": a.type, "title": a.title, "message": a.message}
    raise ValueError(f"{change.address}: unknown Atlan part {part!r}")


def link_current(link: ALink | None) -> dict[str, Any] | None:
    """A Link as `{"name", "url"}`; None when absent (or archived)."""
    return None if link is None else {"name": link.name, "url": link.url}


def qualytics_current(change: Change, tags: tuple[QTag, ...] | None) -> Any:
    """`{"name", "type"}` of the tag the change is about among an object's `tags`, None when
    the object does not have it, MISSING when the object itself is gone (`tags` None)."""
    if tags is None:
        return MISSING
    name = fold(change.target["tag"])
    for tag in tags:
        if fold(tag.name) == name:
            return {"name": (change.after or change.before)["name"], "type": tag.type or "global"}
    return None


# --------------------------------------------------------------------------- deciding


def decide(change: Change, current: Any) -> Decision:
    """WRITE, ALREADY or DRIFTED for `change` given the target's current value."""
    if current is MISSING:
        return Decision.DRIFTED
    if change.target.get("part") == "cm":
        return _decide_cm(change, current)
    if normalize(current) == normalize(change.after):
        return Decision.ALREADY
    if normalize(current) == normalize(change.before):
        return Decision.WRITE
    return Decision.DRIFTED


def _decide_cm(change: Change, current: Mapping[str, Any]) -> Decision:
    pending = False
    for attr in _cm_attrs(change):
        kind = cm_kind(attr)
        have = normalize_cm(kind, current.get(attr))
        want = None if change.action is Action.DELETE else normalize_cm(kind, (change.after or {}).get(attr))
        had = normalize_cm(kind, (change.before or {}).get(attr))
        if have == want:
            continue
        if have != had:
            return Decision.DRIFTED
        pending = True
    return Decision.WRITE if pending else Decision.ALREADY


def drift_message(change: Change, current: Any) -> str:
    """Why a change was not written (for the journal and the output)."""
    if current is MISSING:
        return "the target no longer exists (or is no longer visible); run `qatlan plan` again"
    return (f"the target changed since the plan was made (now {normalize(current)!r}, "
            f"planned from {normalize(change.before)!r}); run `qatlan plan` again")
