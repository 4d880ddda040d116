"""Records as people read them, and what changed between two versions. Pure functions.

A stored record names Atlan tags and custom metadata attributes by their hashed names; the
audit commands never show those. `readable` turns a record's data into display names (from
the tag and custom metadata definitions the state holds) and leaves out what changes on
every write without meaning anything (`IGNORED`). `changed_attributes` compares two readable
versions leaf by leaf and reports each changed *attribute*: a path of dict keys down to a
value, where a list (tags) is one value, so before and after are always whole values.

(DeepDiff was tried here: records are JSON objects of fixed shape whose lists are already
sorted, so comparing their flattened leaves gives the same answer, while importing DeepDiff
alone took a quarter of a second of every audit command and its paths had to be mapped back
to attributes.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IGNORED", "Names", "attribute_value", "changed_attributes", "flatten", "readable"]

#: attributes left out of timelines and diffs: Atlan stamps them on every write
IGNORED = frozenset({"update_time", "updated_by"})


@dataclass
class Names:
    """Hashed name → display name of Atlan tags and custom metadata attributes and sets."""

    tags: dict[str, str] = field(default_factory=dict)
    cm_attributes: dict[str, str] = field(default_factory=dict)

    def learn(self, kind: str, data: Mapping[str, Any]) -> None:
        """Take the names a definition record (`a.tagdef`, `a.cmdef`) gives."""
        if kind == "a.tagdef":
            self.tags[data["hashed_name"]] = data["display_name"]
        elif kind == "a.cmdef":
            for a in data.get("attributes") or ():
                self.cm_attributes[a["hashed_name"]] = a["display_name"]

    def tag(self, hashed: str) -> str:
        return self.tags.get(hashed, hashed)

    def cm_attribute(self, hashed: str) -> str:
        return self.cm_attributes.get(hashed, hashed)


def readable(kind: str, data: Mapping[str, Any], names: Names) -> dict[str, Any]:
    """`data` with display names: Atlan tags as a sorted list of names, the custom metadata
    as `{attribute: value}`, Qualytics tags as sorted `name` or `name (external)`."""
    out = {k: v for k, v in data.items() if k not in IGNORED}
    if kind == "a.asset":
        out["tags"] = sorted(names.tag(h) for h in data.get("tags") or ())
        out["cm"] = {names.cm_attribute(h): v for h, v in data.get("cm") or ()}
    elif kind in ("q.datastore", "q.container", "q.field") and "tags" in data:
        out["tags"] = sorted(_q_tag(t) for t in data.get("tags") or ())
    return out


def _q_tag(tag: Any) -> str:
    if not isinstance(tag, Mapping):
        return str(tag)
    return f"{tag.get('name')} (external)" if tag.get("type") == "external" else str(tag.get("name"))


def attribute_value(data: Mapping[str, Any] | None, attribute: tuple[str, ...]) -> Any:
    """The value at `attribute` in `data`; None when any key on the way is missing."""
    value: Any = data
    for key in attribute:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def changed_attributes(old: Mapping[str, Any] | None,
                       new: Mapping[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """`[(attribute, before, after)]` between two readable versions (None: absent), sorted.
    Attributes are dotted paths to leaves (`score.total`, `cm.Quality Score`, `tags`); a list
    is one leaf; an int that became the same float is not a change (Python's `==`)."""
    before, after = flatten(old or {}), flatten(new or {})
    return [(".".join(key), before.get(key), after.get(key))
            for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]


def flatten(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """`{attribute path: value}` of every leaf (lists are leaves); None values left out."""
    out: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        elif value is not None and value != {}:
            out[path] = value
    return out
