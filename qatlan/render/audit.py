"""Texts of the audit commands: `qatlan log`, `qatlan state diff`, `qatlan state show --at`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tabulate import tabulate

from qatlan.audit import DiffEntry, Event, flatten

__all__ = ["diff_text", "log_table", "state_at_text"]

#: characters of a value shown in a table cell (`--json` has every value whole)
_CELL = 48
#: attributes that name a record rather than describe it: not listed when it is first seen
IDENTITY = frozenset({"guid", "id", "key", "qualified_name", "name", "type_name", "connection_qn",
                      "parent_qn", "datastore_id", "container_id", "hashed_name", "display_name"})


def value_text(value: Any, width: int = _CELL) -> str:
    """A value for a table cell: `–` for none, strings bare, the rest compact JSON."""
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def log_table(events: Sequence[Event], asked: str) -> str:
    """`qatlan log`: one row per event, oldest first; the asset column only when the
    timeline spans several assets."""
    if not events:
        return f"No event for {asked} in that time range."
    several = len({e.asset for e in events}) > 1
    rows = []
    for e in events:
        if e.event == "observed" and e.before is None and e.attribute in IDENTITY:
            continue  # first seen: its identity is the asset column's business
        where = e.plan_checksum[:12] if e.plan_checksum else (f"snapshot {e.snapshot_id}" if e.snapshot_id else "")
        row = [e.at, e.event]
        if several:
            row.append(e.asset)
        by = e.who or ""
        if e.written_by:
            by = f"qatlan (plan {e.written_by[:12]})"
        row += [e.attribute, f"{value_text(e.before)} → {value_text(e.after)}",
                f"run {e.run_id}" if e.run_id is not None else "", where, by,
                e.source or e.reason or ""]
        rows.append(row)
    headers = ["time", "event", *(["asset"] if several else []), "attribute", "before → after",
               "run", "plan / snapshot", "by", "source / reason"]
    return tabulate(rows, headers=headers, disable_numparse=True)


def diff_text(a: int, b: int, entries: Iterable[DiffEntry]) -> str:
    """`qatlan state diff`: the records changed outside qatlan (drift) with their attributes,
    then those that only show qatlan's own writes read back."""
    entries = list(entries)
    if not entries:
        return f"No differences between snapshots {a} and {b}."
    sign = {"added": "+", "removed": "-", "changed": "~"}
    drifted = [e for e in entries if e.drift]
    ours = [e for e in entries if not e.drift]
    out = [f"Snapshot {a} → snapshot {b}: {len(entries)} record(s) differ; {len(drifted)} changed "
           f"outside qatlan, {len(ours)} only by qatlan's own applies."]
    if drifted:
        out.append("\nChanged outside qatlan (drift):")
    for e in drifted:
        out.append(f"\n{sign[e.change]} {e.kind} {e.name} ({e.key}) {e.change}")
        for attribute, before, after, _ in e.drift:
            out.append(f"    {attribute}: {value_text(before, 80)} → {value_text(after, 80)}")
        ours_here = len(e.attributes) - len(e.drift)
        if ours_here:
            out.append(f"    (and {ours_here} attribute(s) written by qatlan; --json lists them)")
    if ours:
        out.append("\nWritten by qatlan (its applies, read back):")
        for e in ours:
            plans = sorted({w[:12] for *_, w in e.attributes if w})
            out.append(f"  {sign[e.change]} {e.kind} {e.name}: {len(e.attributes)} attribute(s), "
                       f"plan {', '.join(plans)}")
    return "\n".join(out)


def state_at_text(snapshot_id: int, taken_at: str, records: Sequence[Mapping[str, Any]]) -> str:
    """`qatlan state show --at`: the records as that snapshot held them."""
    if not records:
        return f"Snapshot {snapshot_id} ({taken_at}) holds no such record."
    out = [f"As of snapshot {snapshot_id} ({taken_at}):"]
    for r in records:
        out.append(f"\n{r['kind']} {r['address']} ({r['key']})")
        for path, value in sorted(flatten(r["data"]).items()):
            out.append(f"    {'.'.join(path)}: {value_text(value, 100)}")
    return "\n".join(out)
