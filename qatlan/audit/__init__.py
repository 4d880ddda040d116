"""Audit of past sync states, as a library: `qatlan log`, `qatlan state diff`, `state show --at`.

    from qatlan.audit import asset_log, state_at, state_diff
    from qatlan.state import State

    with State.open_readonly("state/qatlan.db") as state:
        for event in asset_log(state, "default/snowflake/1/SALES/PUBLIC/ORDERS"):
            print(event.at, event.event, event.attribute, event.before, "->", event.after)

Everything here only reads the state. `audit_app` serves it in a browser (Datasette). Values use display names (`qatlan.audit.values`).
An asset's timeline holds:

- `observed`: a value a refresh saw on either side, from the snapshots' record versions (the
  asset's own records and those of the assets its values came from: the Qualytics container
  behind an Atlan table's custom metadata, the Atlan asset behind a pulled tag);
- `planned`: a change a plan proposed and no apply settled (listed once, by the first plan
  that proposed it);
- `applied`, `already`, `drifted`, `failed`, `skipped`, `intent`: what apply did with a
  change (the journal), with its run, plan checksum, user@host and source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qatlan.audit.values import Names, attribute_value, changed_attributes, flatten, readable
from qatlan.audit.web import CANNED_QUERIES, audit_app
from qatlan.errors import StateError
from qatlan.state import State

__all__ = ["CANNED_QUERIES", "DiffEntry", "Event", "asset_log", "audit_app", "flatten", "names_of",
           "readable_history", "state_at", "state_diff"]

#: the journal's outcomes, and `planned` for a change no apply settled
OBSERVED, PLANNED = "observed", "planned"


@dataclass(frozen=True)
class Event:
    """One line of an asset's timeline."""

    at: str
    event: str  # observed | planned | applied | already | drifted | failed | skipped | intent
    asset: str  # the asset's address
    attribute: str  # `score.total`, `cm.Quality Score`, `tags`, `cm:Qualytics.Quality Score`, `link`, ...
    before: Any
    after: Any
    snapshot_id: int | None = None  # observed: the first snapshot with the new value
    run_id: int | None = None  # the refresh that saw it, the apply that wrote it, or the plan run
    plan_id: int | None = None
    plan_checksum: str | None = None
    who: str | None = None  # user@host of that run
    source: str | None = None  # where a planned value came from (the other side's asset)
    reason: str | None = None  # why, when the plan says; the error of a failed change
    #: observed: the plan whose apply wrote this value (qatlan reading its own write back);
    #: None when the value changed outside qatlan
    written_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def names_of(state: State) -> Names:
    """Display names of every Atlan tag and custom metadata attribute the state knows."""
    names = Names()
    for kind, data in state.history.definitions():
        names.learn(kind, data)
    return names


def _who(user: str | None, host: str | None) -> str | None:
    return f"{user}@{host}" if user or host else None


def asset_log(state: State, asset: str, *, since: str | None = None,
              until: str | None = None) -> list[Event]:
    """The timeline of `asset` (an address, qualifiedName, name, GUID or shell pattern),
    oldest first; `since`/`until` (ISO times or dates) bound it. StateError when nothing in
    the state matches."""
    h = state.history
    records = h.asset_records(asset)
    changes = h.changes_of(set(records.values()) or {asset})
    if not records and not changes:
        raise StateError(f"nothing in the state matches {asset!r}",
                         hint="give an Atlan qualifiedName, an address (atlan:..., qualytics:"
                              "datastore/container), a name, a GUID, or a pattern like '*ORDERS*'")
    own = set(records.values())
    for source in sorted({c["source"] for c in changes if c["asset"] in own and c["source"]}):
        for key, address in h.asset_records(source).items():
            records.setdefault(key, address)
    names = names_of(state)
    times = h.snapshot_times()
    runs = h.runs_by_id()
    changed = _changed(changes)
    observed = _observed(h.versions_of(records), records, names, times, runs)
    events = _attributed(observed, changed, times) + changed
    lo = h.stamp(since) if since else None
    hi = h.stamp(until) if until else None
    events = [e for e in events if (lo is None or e.at >= lo) and (hi is None or e.at <= hi)]
    order = {OBSERVED: 0, PLANNED: 1}
    return sorted(events, key=lambda e: (e.at, order.get(e.event, 2), e.asset, e.attribute))


def _observed(versions: Mapping[tuple[str, str], list[tuple[int, int | None, dict[str, Any]]]],
              records: Mapping[tuple[str, str], str], names: Names,
              times: Mapping[int, tuple[str, int | None]],
              runs: Mapping[int, tuple[str | None, str | None]]) -> list[Event]:
    out: list[Event] = []

    def emit(sid: int, address: str, old: Any, new: Any) -> None:
        at, run = times.get(sid, ("", None))
        who = _who(*runs.get(run, (None, None))) if run is not None else None
        for attribute, before, after in changed_attributes(old, new):
            out.append(Event(at, OBSERVED, address, attribute, before, after, snapshot_id=sid,
                             run_id=run, who=who))

    for (kind, key), rows in versions.items():
        address = records[(kind, key)]
        prev, prev_to = None, None
        for valid_from, valid_to, data in rows:
            if prev is not None and prev_to is not None and prev_to != valid_from:
                emit(prev_to, address, prev, None)  # it was gone in between
                prev = None
            current = readable(kind, data, names)
            emit(valid_from, address, prev, current)
            prev, prev_to = current, valid_to
        if prev is not None and prev_to is not None:
            emit(prev_to, address, prev, None)  # gone since
    return out


def _changed(changes: list[dict[str, Any]]) -> list[Event]:
    out: list[Event] = []
    proposed: set[tuple[Any, ...]] = set()
    for c in changes:
        if c["outcome"] is None:
            key = (c["address"], c["action"], repr(c["before"]), repr(c["after"]))
            if key in proposed:
                continue  # the same change planned again: listed once
            proposed.add(key)
            at, event, run, who = c["planned_at"], PLANNED, c["plan_run_id"], _who(c["plan_user"], c["plan_host"])
        else:
            at, event, run, who = c["at"], c["outcome"], c["run_id"], _who(c["user"], c["host"])
        common = dict(run_id=run, plan_id=c["plan_id"], plan_checksum=c["plan_checksum"], who=who,
                      source=c["source"], reason=c["error"] or c["reason"])
        for attribute, before, after in _parts(c):
            out.append(Event(at, event, c["asset"], attribute, before, after, **common))
    return out


def _attributed(observed: list[Event], changed: list[Event],
                times: Mapping[int, tuple[str, int | None]]) -> list[Event]:
    """`observed` with `written_by` set on each value qatlan's own apply wrote: an applied
    change on that asset that explains it, made between the snapshot before and the
    refresh that saw it."""
    applied: dict[str, list[Event]] = {}
    for w in sorted((e for e in changed if e.event in WROTE), key=lambda e: e.at):
        applied.setdefault(w.asset, []).append(w)
    ids = sorted(times)
    previous = {sid: times[ids[i - 1]][0] if i else "" for i, sid in enumerate(ids)}
    out = []
    for e in observed:
        since = previous.get(e.snapshot_id or 0, "")
        writer = next((w for w in reversed(applied.get(e.asset, ()))
                       if since <= w.at <= e.at and explains(w, e)), None)
        out.append(e if writer is None else dataclasses.replace(e, written_by=writer.plan_checksum))
    return out


#: journal outcomes after which the target holds the change's value
WROTE = frozenset({"applied", "already"})


def _bare_tag(name: Any) -> str:
    text = str(name)
    return text[: -len(" (external)")] if text.endswith(" (external)") else text


def explains(wrote: Event, seen: Event) -> bool:
    """Whether the change `wrote` (an attribute row of an applied change) accounts for the
    value `seen` (an observed attribute change on the same asset)."""
    a, w = seen.attribute, wrote.attribute
    if a.startswith("cm.") and w.startswith("cm:"):
        return w.endswith("." + a[3:]) and seen.after == wrote.after
    if a == "tags" and w.startswith("tag:"):
        moved = {_bare_tag(n) for n in set(seen.after or ()) ^ set(seen.before or ())}
        return w[4:] in moved
    if a.startswith("announcement") and w == "announcement":
        path = tuple(a.split(".")[1:])
        value = wrote.after if not path else attribute_value(wrote.after, path)
        return value == seen.after
    return False


def _parts(c: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """A change as attribute rows: a custom metadata change one row per attribute."""
    before, after = c["before"], c["after"]
    if c["part"].startswith("cm:") and isinstance(before or after, Mapping):
        keys = sorted(set(before or {}) | set(after or {}))
        return [(f"{c['part']}.{k}", (before or {}).get(k), (after or {}).get(k)) for k in keys]
    return [(c["part"], before, after)]


# --------------------------------------------------------------------------- state at / diff


def readable_history(state: State, key: str) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[Any]]]:
    """`state.find_records(key)` and each match's versions (`RecordVersion`s), with display
    names in their data (`qatlan state show KEY`)."""
    names = names_of(state)
    matches = state.find_records(key)
    histories = {}
    for m in matches:
        m["data"] = readable(m["kind"], m["data"], names)
        histories[(m["kind"], m["key"])] = [
            v._replace(data=readable(m["kind"], v.data, names))
            for v in state.record_history(m["kind"], m["key"])]
    return matches, histories


def state_at(state: State, at: str, key: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(snapshot id, records) as qatlan saw them at `at` (a snapshot id or a time): every
    record of that snapshot, or those `key` names (as `qatlan log` reads an asset), each as
    `{"kind", "key", "address", "data"}` with display names."""
    h = state.history
    sid = h.snapshot_at(at)
    names = names_of(state)
    if key is None:
        rows = h.records_at(sid)
        labels: dict[tuple[str, str], str] = {}
    else:
        labels = h.asset_records(key)
        rows = h.records_at(sid, labels) if labels else []
    return sid, [{"kind": kind, "key": k, "address": labels.get((kind, k)) or _label(data, k),
                  "data": readable(kind, data, names)} for kind, k, data in rows]


def _label(data: Mapping[str, Any], key: str) -> str:
    return str(data.get("qualified_name") or data.get("name") or data.get("display_name") or key)


@dataclass(frozen=True)
class DiffEntry:
    """One record that differs between two snapshots."""

    kind: str
    key: str
    name: str
    change: str  # added | removed | changed
    #: (attribute, before, after, written_by): written_by is the checksum of the plan whose
    #: apply wrote the new value, or None for a change made outside qatlan (drift)
    attributes: tuple[tuple[str, Any, Any, str | None], ...]
    address: str | None = None

    @property
    def drift(self) -> tuple[tuple[str, Any, Any, str | None], ...]:
        """The attributes changed outside qatlan."""
        return tuple(a for a in self.attributes if a[3] is None)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "name": self.name, "address": self.address,
                "change": self.change,
                "attributes": [{"attribute": a, "before": b, "after": c, "written_by": w}
                               for a, b, c, w in self.attributes]}


def state_diff(state: State, a: str | None = None, b: str | None = None
               ) -> tuple[int, int, list[DiffEntry]]:
    """(snapshot a, snapshot b, what differs): every record added, removed or changed from
    snapshot `a` to `b` (ids or times; default the last two), per attribute, display names,
    each attribute marked with the plan whose apply wrote it (qatlan reading its own write
    back) or None (changed outside qatlan: drift)."""
    h = state.history
    times = h.snapshot_times()
    ids = sorted(times)
    if a is None and b is None:
        if len(ids) < 2:
            raise StateError("state diff needs two snapshots; the state holds "
                             f"{len(ids)}", hint="run `qatlan refresh` to take another")
        first, second = ids[-2], ids[-1]
    else:
        first = h.snapshot_at(a) if a is not None else ids[-2] if len(ids) > 1 else ids[0]
        second = h.snapshot_at(b) if b is not None else ids[-1]
    lo, hi = sorted((first, second))
    keys = h.versions_between(lo, hi)
    names = names_of(state)
    old = {(kind, k): data for kind, k, data in h.records_at(first, keys)}
    new = {(kind, k): data for kind, k, data in h.records_at(second, keys)}
    where = h.asset_addresses(keys)
    applied: dict[str, list[Event]] = {}
    if first < second:
        for w in _changed(h.applied_between(times[lo][0], times[hi][0])):
            applied.setdefault(w.asset, []).append(w)
    out = []
    for kind, k in keys:
        before, after = old.get((kind, k)), new.get((kind, k))
        if before is None and after is None:  # came and went in between
            continue
        rb = None if before is None else readable(kind, before, names)
        ra = None if after is None else readable(kind, after, names)
        address = where.get((kind, k))
        definition = _definition_writer(kind, ra or rb or {}, applied)
        attributes = tuple((attr, x, y, definition or _writer(kind, address, attr, x, y, applied))
                           for attr, x, y in changed_attributes(rb, ra))
        if not attributes:  # only ignored attributes (update_time) moved
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        out.append(DiffEntry(kind, k, _label(after or before, k), change, attributes, address))
    return first, second, out


def _definition_writer(kind: str, data: Mapping[str, Any], applied: Mapping[str, list[Event]]) -> str | None:
    """For a tag or custom metadata definition: the plan whose apply created it. Atlan
    definitions are changes on `atlan:typedef`; a Qualytics external tag definition comes
    with the first external tag qatlan writes under that name."""
    if kind in ("a.tagdef", "a.cmdef"):
        part = ("tag:" if kind == "a.tagdef" else "cm:") + str(data.get("display_name"))
        for w in reversed(applied.get("atlan:typedef", ())):
            if w.attribute == part or w.attribute.startswith(part + "."):
                return w.plan_checksum
    elif kind == "q.tagdef" and data.get("type") == "external":
        part = f"tag:{data.get('name')}"
        for asset, writes in applied.items():
            for w in writes:
                if asset.startswith("qualytics:") and w.attribute == part:
                    return w.plan_checksum
    return None


def _writer(kind: str, address: str | None, attribute: str, before: Any, after: Any,
            applied: Mapping[str, list[Event]]) -> str | None:
    """The checksum of the plan whose applied change explains this attribute change."""
    if address is None:
        return None
    for w in reversed(applied.get(address, ())):
        if kind == "a.link":
            if w.attribute == "link":
                return w.plan_checksum
        elif explains(w, Event("", OBSERVED, address, attribute, before, after)):
            return w.plan_checksum
    return None
