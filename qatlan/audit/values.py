"""Records as people read them, and what changed between two versions. Pure functions.

A stored record names Atlan tags and custom metadata attributes by their hashed names; the
audit commands never show those. `readable` turns a record's data into display names (from
the tag and custom metadata definitions the state holds) and leaves out what changes on
every write without meaning anything (`IGNORED`). `changed_attributes` compares two readable
versions with DeepDiff and reports each changed *attribute*: a path of dict keys down to a
value, where a list (tags) is one value, so before and after are always whole values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff

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


def _attribute(path: list[Any]) -> tuple[str, ...]:
    """The attribute a DeepDiff path falls in: its dict keys up to the first list index."""
    out = []
    for step in path:
        if not isinstance(step, str):
            break
        out.append(step)
    return tuple(out)


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
    Attributes are dotted paths (`score.total`, `cm.Quality Score`, `tags`); tag order and
    an int that became the same float are not changes."""
    if old is None or new is None:
        present = new if old is None else old
        return [(".".join(a), None if old is None else v, v if old is None else None)
                for a, v in sorted(flatten(present or {}).items())]
    diff = DeepDiff(dict(old), dict(new), ignore_order=True, ignore_numeric_type_changes=True,
                    view="tree")
    found: set[tuple[str, ...]] = set()
    for items in diff.values():
        for item in items:
            found.add(_attribute(item.path(output_format="list")))
    out = []
    for attribute in sorted(found):
        before, after = attribute_value(old, attribute), attribute_value(new, attribute)
        if isinstance(before, Mapping) or isinstance(after, Mapping):
            # a whole object appeared, went or changed type: one row per leaf
            out.extend(_leaf_changes(attribute, before, after))
        else:
            out.append((".".join(attribute), before, after))
    return out


def _leaf_changes(prefix: tuple[str, ...], before: Any, after: Any) -> Iterator[tuple[str, Any, Any]]:
    b = flatten(before, prefix) if isinstance(before, Mapping) else {prefix: before}
    a = flatten(after, prefix) if isinstance(after, Mapping) else {prefix: after}
    for key in sorted(set(b) | set(a)):
        if b.get(key) != a.get(key):
            yield ".".join(key), b.get(key), a.get(key)


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
