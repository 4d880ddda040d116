"""The plan model: what qatlan would change, as data. No I/O here.

A `Plan` is a sorted tuple of `Change`s (or any sequence of them: the state hands out plans
whose changes stay stored until walked, answering `tally()` and `len()` unread). Each change
has an address, an action and a before and after whose meaning is fixed by the action
(Terraform's table):

    action   before     after
    create   None       the value to write
    update   the value  the new value (different)
    delete   the value  None
    adopt    the value  the same value   (nothing is written: apply checks the value is still
                                          there and records it as qatlan's, like Terraform's
                                          import; see docs/conflict-rules.md)
    no-op    the value  the same value   (never listed in a plan: counted in `unchanged`)

Addresses are built and parsed by `qatlan.addresses`. One `cm:<Set>` change per asset and
set holds only the attributes that change, as `{attribute display name: value}` (renderers
show each as `cm:<Set>.<attribute>`).

`reason` is for display only and must not drive apply. `target` is what apply needs to find
the object (guid, type, ids, hashed names); it is excluded from equality but round-trips.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from qatlan import addresses
from qatlan.errors import PlanFileError
from qatlan.model import Skip
from qatlan.plan.encode import LazyList, RawList, change_json

__all__ = ["FORMAT_VERSION", "Action", "Change", "Conflict", "Plan", "StreamedChanges", "Tally",
           "definitions_of", "each_change", "own", "tally"]

FORMAT_VERSION = 1


class Action(str, Enum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ADOPT = "adopt"


_ACTIONS = {a.value: a for a in Action}


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    action: Action
    before: Any
    after: Any
    #: display only: why this change is planned (never used by apply)
    reason: str | None = None
    #: what apply needs to reach the object; see docs/conflict-rules.md
    target: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        action = self.action
        if type(action) is not Action:  # Enum's own call costs ~15 µs; a decoded plan has many
            action = _ACTIONS.get(action) or Action(action)
            object.__setattr__(self, "action", action)
        if action is Action.CREATE and (self.before is not None or self.after is None):
            raise ValueError(f"{self.address}: a create has no before and has an after")
        if action is Action.DELETE and (self.after is not None or self.before is None):
            raise ValueError(f"{self.address}: a delete has a before and no after")
        if action is Action.UPDATE and (
            self.before is None or self.after is None or self.before == self.after
        ):
            raise ValueError(f"{self.address}: an update has a before and a different after")
        if action is Action.NOOP and self.before != self.after:
            raise ValueError(f"{self.address}: a no-op has equal before and after")
        if action is Action.ADOPT and (self.before is None or self.before != self.after):
            raise ValueError(f"{self.address}: an adoption has a before and an equal after")

    @property
    def part(self) -> str:
        return addresses.parse(self.address)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action.value,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "target": dict(self.target),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Change":
        return cls(
            data["address"], data["action"], data.get("before"), data.get("after"),
            data.get("reason"), dict(data.get("target") or {}),
        )


@dataclass(frozen=True, slots=True)
class Conflict:
    """Something qatlan would write but does not, because someone else owns it."""

    address: str
    rule: str  # tag_conflict | cm_not_owned | announcement_not_owned | link_not_owned
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "rule": self.rule, "message": self.message}


#: the four columns of a tally's kinds and of `Plan.counts`, in order
_COLUMN = {a: i for i, a in enumerate((Action.CREATE, Action.UPDATE, Action.DELETE, Action.ADOPT))}


def _kind(address: str, part: str) -> str:
    """What a change is about, for counting: "<side>:<part kind>" such as "atlan:cm",
    "atlan:tag", "qualytics:tag" (definitions are "definition")."""
    return f"{addresses.side(address)}:{part.partition(':')[0] if ':' in part else part}"


class Tally:
    """Counts changes as they are added: what `tally` returns."""

    __slots__ = ("adopted", "assets", "changes", "kinds", "removals")

    def __init__(self) -> None:
        self.kinds: dict[str, list[int]] = {}
        self.assets: set[str] = set()
        self.changes = self.removals = self.adopted = 0

    def add(self, c: Change, asset: str | None = None, part: str | None = None) -> None:
        """Count `c` (`asset` and `part`: its parsed address, when the caller has it)."""
        self.changes += 1
        if c.target:
            self.adopted += int(c.target.get("adopt", 0))
        action = c.action
        col = _COLUMN.get(action)
        if col is None:
            return
        address = c.address
        if addresses.is_typedef(address):
            kind = "definition"
        else:
            if asset is None or part is None:
                asset, part = addresses.parse(address)
            self.assets.add(asset)
            kind = _kind(address, part)
            # what the mass-removal rule counts (qatlan.planner.safety)
            is_cm = part.startswith("cm:")
            if action is Action.DELETE:
                self.removals += len(c.before) if is_cm else 1
            elif action is Action.UPDATE and is_cm:
                self.removals += sum(1 for v in c.after.values() if v is None)
        row = self.kinds.get(kind)
        if row is None:
            row = self.kinds[kind] = [0, 0, 0, 0]
        row[col] += 1

    def result(self) -> dict[str, Any]:
        return {"changes": self.changes, "assets": len(self.assets), "kinds": self.kinds,
                "removals": self.removals, "adopted": self.adopted}


def tally(changes: Iterable[Change]) -> dict[str, Any]:
    """What a plan's summaries need from its changes, without the changes:
    {"changes": n, "assets": distinct assets changed (definitions aside),
     "kinds": {kind: [create, update, delete, adopt]}, "removals": owned items removed,
     "adopted": items taken over} (no-ops are counted in "changes" only).
    A stored plan keeps this beside its changes, so it can be summarised unread."""
    t = Tally()
    for c in changes:
        t.add(c)
    return t.result()


def each_change(changes: Iterable[Change]) -> Iterator[Change]:
    """Every change, in order, without holding them: a stored plan's changes
    (`qatlan.state.plans.StoredChanges`) are decoded one at a time and let go."""
    stream = getattr(changes, "stream", None)
    return stream() if stream is not None else iter(changes)


class StreamedChanges(Sequence[Change]):
    """A plan's changes kept where they are stored (the state, a plan file), read when asked.

    A subclass gives `_scan()`: (decoded, canonical text) of each change, in plan order, read
    once per call. `len` and `tally()` answer from the counts given; `stream()` and
    `json_pieces()` read the changes once each, a change at a time; indexing or iterating
    decodes them all, once, and keeps them."""

    def __init__(self, counts: Mapping[str, Any]):
        self._tally = dict(counts)
        self._all: tuple[Change, ...] | None = None

    def _scan(self) -> Iterator[tuple[Any, str]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self._tally["changes"])

    def tally(self) -> dict[str, Any]:
        return self._tally

    def json_pieces(self) -> Iterator[str]:
        """Each change's canonical JSON, in plan order (`qatlan plan --json`, `show --json`
        re-encode them one at a time instead of decoding the whole plan)."""
        for _, text in self._scan():
            yield text

    def stream(self) -> Iterator[Change]:
        """Each change, whole (with its target), in plan order, decoded one at a time and
        not kept: how apply walks a stored plan in bounded memory."""
        for data, _ in self._scan():
            yield Change.from_dict(data)

    def _changes(self) -> tuple[Change, ...]:
        if self._all is None:
            self._all = tuple(self.stream())
        return self._all

    def __getitem__(self, index: Any) -> Any:
        return self._changes()[index]

    def __iter__(self) -> Iterator[Change]:
        return iter(self._changes())


def definitions_of(plan: "Plan") -> list[Change]:
    """The plan's definition changes (`atlan:typedef#...`), which apply makes before any
    value: a stored plan's are found without walking its changes."""
    find = getattr(plan.changes, "definitions", None)
    if find is not None:
        return find(plan.definitions_needed)
    return [c for c in plan.changes if addresses.is_typedef(c.address)]


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    unchanged: int = 0
    conflicts: tuple[Conflict, ...] = ()
    skipped: tuple[Skip, ...] = ()
    #: definitions the plan depends on (also in `changes` when settings allow creating them)
    definitions_needed: tuple[Change, ...] = ()
    complete: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: what the plan was built from: state lineage, serial, snapshot id
    base: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    #: value changes held back because an Atlan definition they need is missing (and the
    #: settings do not create definitions); they are drift all the same
    waiting: int = 0

    def is_empty(self) -> bool:
        """No change to make (there may still be `waiting` ones: see `in_sync`)."""
        if hasattr(self.changes, "tally"):
            return not any(self.counts().values())
        return all(c.action is Action.NOOP for c in self.changes)

    def tally(self) -> dict[str, Any]:
        """`tally(self.changes)`; a stored plan's changes answer it without being read."""
        stored = getattr(self.changes, "tally", None)
        return stored() if stored is not None else tally(self.changes)

    def in_sync(self) -> bool:
        """Both sides agree: nothing to change and nothing waiting for a definition."""
        return self.is_empty() and not self.waiting

    def counts(self) -> dict[str, int]:
        """{"add", "change", "destroy", "adopt"} as in
        `Plan: N to adopt, A to add, C to change, D to destroy.`"""
        names = ("add", "change", "destroy", "adopt")  # the _COLUMN actions
        if hasattr(self.changes, "tally"):
            totals = [0, 0, 0, 0]
            for row in self.tally()["kinds"].values():
                totals = [t + n for t, n in zip(totals, row)]
            return dict(zip(names, totals))
        out = dict.fromkeys(names, 0)
        for c in self.changes:
            col = _COLUMN.get(c.action)
            if col is not None:
                out[names[col]] += 1
        return out

    def summary(self) -> dict[str, int]:
        """`counts()` with the other totals: unchanged, waiting, conflicts, skipped."""
        return {**self.counts(), "unchanged": self.unchanged, "waiting": self.waiting,
                "conflicts": len(self.conflicts), "skipped": len(self.skipped)}

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (deterministic key order; `summary` is derived)."""
        return self._dict(lambda items, convert: [convert(x) for x in items], Change.to_dict)

    def json_parts(self) -> dict[str, Any]:
        """`to_dict()` with its lists as `LazyList`s, for `iter_json`: the same JSON text,
        without a dict copy of every change held at once. Changes that come encoded
        already (a spilled plan's: `json_pieces`) are a `RawList`, written as they are."""
        parts = self._dict(LazyList, change_json)
        pieces = getattr(self.changes, "json_pieces", None)
        if pieces is not None:
            parts["changes"] = RawList(pieces, len(self.changes), _identity)
        return parts

    def _dict(self, listed: Callable[[Sequence[Any], Callable[[Any], Any]], Any],
              change: Callable[[Change], Any]) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "complete": self.complete,
            "base": dict(self.base),
            "settings": dict(self.settings),
            "summary": self.summary(),
            "changes": listed(self.changes, change),
            "unchanged": self.unchanged,
            "waiting": self.waiting,
            "conflicts": listed(self.conflicts, Conflict.to_dict),
            "skipped": listed(self.skipped, Skip.to_dict),
            "definitions_needed": listed(self.definitions_needed, change),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        version = data.get("format_version") if isinstance(data, Mapping) else None
        if version != FORMAT_VERSION:
            raise PlanFileError(
                f"plan format_version {version!r} is not supported (this qatlan reads {FORMAT_VERSION})",
                hint="make the plan again with this version of qatlan",
            )
        try:
            return cls(
                changes=tuple(Change.from_dict(c) for c in data["changes"]),
                unchanged=int(data["unchanged"]),
                conflicts=tuple(Conflict(**c) for c in data["conflicts"]),
                skipped=tuple(Skip.from_dict(s) for s in data["skipped"]),
                definitions_needed=tuple(Change.from_dict(c) for c in data["definitions_needed"]),
                complete=bool(data["complete"]),
                settings=dict(data["settings"]),
                base=dict(data["base"]),
                created_at=str(data["created_at"]),
                format_version=version,
                waiting=int(data.get("waiting", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanFileError(f"the plan is malformed: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def _identity(value: Any) -> Any:
    return value


def own(owned: Mapping[str, Any], change: Change) -> tuple[str, Any]:
    """(key, value) to record in ownership once `change` is applied; value None = forget.

    The key is the change's address. A `cm:` entry holds the attributes qatlan wrote (merged
    with what it owned before; attributes set to None are dropped). Definitions are not owned.
    """
    if addresses.is_typedef(change.address):
        return change.address, owned.get(change.address)
    if change.part.startswith("cm:"):
        merged = dict(owned.get(change.address) or {})
        if change.action is Action.DELETE:
            for attr in change.before:
                merged.pop(attr, None)
        else:
            for attr, value in change.after.items():
                if value is None:
                    merged.pop(attr, None)
                else:
                    merged[attr] = value
        return change.address, dict(sorted(merged.items())) or None
    return change.address, change.after
