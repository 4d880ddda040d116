"""Pure decisions: what a re-read target says about a change (no I/O here).

Readers turn what the APIs return into a change's *current* value, in the same shape as the
change's `before` and `after`; `decide` compares them:

    current == after   → ALREADY  (nothing to write: done before, or by someone else)
    current == before  → WRITE
    anything else      → DRIFTED  (someone changed the target since the plan; not written)

Custom metadata is compared attribute by attribute: every attribute must be at its before or
its after value, and the change is ALREADY when all are at their after value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from qatlan.clients.atlan import direct_tags
from qatlan.normalize import fold, normalize, normalize_cm
from qatlan.plan import Action, Change
from qatlan.planner import CM_ATTRIBUTES

__all__ = [
    "MISSING",
    "Decision",
    "Names",
    "atlan_current",
    "cm_kind",
    "decide",
    "drift_message",
    "link_current",
    "qualytics_current",
]

_CM_KIND = dict(CM_ATTRIBUTES)


class _Missing:
    """The target object itself is gone (deleted, archived, or not visible)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Decision(str, Enum):
    WRITE = "write"
    ALREADY = "already"
    DRIFTED = "drifted"


@dataclass
class Names:
    """Hashed names of Atlan tags and of the custom metadata set, after definitions ran."""

    tags: dict[str, str] = field(default_factory=dict)  # folded display name → hashed name
    cm_set: str | None = None
    cm_attributes: dict[str, str] = field(default_factory=dict)  # display → hashed name

    def tag_hash(self, change: Change) -> str | None:
        return change.target.get("tag_hash") or self.tags.get(fold(change.target.get("tag") or ""))

    def set_hash(self, change: Change) -> str | None:
        return change.target.get("set_hash") or self.cm_set

    def attr_hash(self, change: Change, attr: str) -> str | None:
        return (change.target.get("attributes") or {}).get(attr) or self.cm_attributes.get(attr)


def cm_kind(attr: str) -> str:
    return _CM_KIND.get(attr, "string")


def _cm_attrs(change: Change) -> list[str]:
    return sorted(set(change.before or {}) | set(change.after or {}))


# --------------------------------------------------------------------------- current values


def atlan_current(change: Change, entity: Mapping[str, Any] | None, names: Names) -> Any:
    """The current value of a cm, tag or announcement change on `entity` (MISSING: gone)."""
    if entity is None or entity.get("status", "ACTIVE") != "ACTIVE":
        return MISSING
    part = change.target["part"]
    if part == "cm":
        set_hash = names.set_hash(change)
        values = ((entity.get("businessAttributes") or {}).get(set_hash) or {}) if set_hash else {}
        return {a: values.get(names.attr_hash(change, a) or "") for a in _cm_attrs(change)}
    if part == "tag":
        present = names.tag_hash(change) in direct_tags(entity)
        return (change.after or change.before) if present else None
    if part == "announcement":
        attrs = entity.get("attributes") or {}
        if not attrs.get("announcementType"):
            return None
        return {"type": attrs.get("announcementType"), "title": attrs.get("announcementTitle"),
                "message": attrs.get("announcementMessage")}
    raise ValueError(f"{change.address}: unknown Atlan part {part!r}")


def link_current(link: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Link entity or search hit as `{"name", "url"}`; None when absent or archived."""
    if link is None or link.get("status", "ACTIVE") != "ACTIVE":
        return None
    attrs = link.get("attributes") or {}
    return {"name": attrs.get("name"), "url": attrs.get("link")}


def qualytics_current(change: Change, obj: Mapping[str, Any] | None) -> Any:
    """`{"name", "type"}` of the tag the change is about on a Qualytics object, or None."""
    if obj is None:
        return MISSING
    name = change.target["tag"]
    for tag in obj.get("global_tags") or ():
        if isinstance(tag, Mapping) and fold(str(tag.get("name") or "")) == fold(name):
            return {"name": (change.after or change.before)["name"], "type": tag.get("type") or "global"}
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
