"""Texts of the commands other than `plan`: refresh and apply summaries, history, state.

Functions here take plain data and return strings; only the CLI writes them to a stream.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

if TYPE_CHECKING:  # not imported at run time: the read commands start without the HTTP stack
    from qatlan.apply import ApplyResult

__all__ = ["apply_summary", "missing_lines", "record_history", "refresh_summary", "runs_table",
           "snapshots_table"]

#: changes not applied listed one by one up to this many
LIST_LIMIT = 20


def refresh_summary(result: Any) -> str:
    counts = result.counts
    lines = [
        f"Snapshot {result.snapshot_id} saved (serial {result.serial})"
        f" — {'complete' if result.complete else 'INCOMPLETE'}.",
        f"  Qualytics: {counts['datastores']:,} datastores, {counts['containers']:,} containers,"
        f" {counts['fields']:,} fields ({result.mode['qualytics']}).",
        f"  Atlan: {counts['connections']:,} connections, {counts['assets']:,} assets,"
        f" {counts['links']:,} links, {counts['domains']:,} domains ({result.mode['atlan']}).",
        f"  Requests: {result.requests.get('atlan', 0):,} to Atlan, {result.requests.get('qualytics', 0):,} to Qualytics.",
    ]
    return "\n".join(lines)


def missing_lines(missing: list[str]) -> str:
    head = "The snapshot is incomplete; a plan built on it will remove nothing. Not read:"
    return "\n".join([head, *(f"  - {m}" for m in missing)])


def snapshots_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No snapshots yet: run `qatlan refresh`."
    table = []
    for r in rows:
        counts = r.get("counts") or {}
        table.append([
            r["id"],
            r.get("taken_at", ""),
            "yes" if r.get("complete") else "NO",
            r.get("serial", ""),
            sum(v for k, v in counts.items() if k.startswith("q.")),
            sum(v for k, v in counts.items() if k.startswith("a.")),
        ])
    return tabulate(table, headers=["snapshot", "taken at", "complete", "serial", "qualytics records", "atlan records"])


def record_history(matches: list[dict[str, Any]], histories: dict[tuple[str, str], list[Any]]) -> str:
    if not matches:
        return "No record matches that key (try a GUID, a Qualytics id, a qualifiedName or a name)."
    out = []
    for m in matches:
        kind, key = m["kind"], m["key"]
        out.append(f"{kind} {key}")
        for v in histories.get((kind, key), []):
            start, end = v.span
            until = f"–{end - 1}" if end is not None else "–now"
            out.append(f"  snapshots {start}{until}: {json.dumps(v.data, sort_keys=True)}")
    return "\n".join(out)


def runs_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No runs yet."
    table = [
        [r["id"], r["command"], r.get("started_at", ""), r.get("ended_at") or "", r.get("outcome", ""),
         _short_counts(r.get("counts")), (r.get("message") or "")[:60]]
        for r in rows
    ]
    return tabulate(table, headers=["run", "command", "started", "ended", "outcome", "counts", "message"])


def _short_counts(counts: Any) -> str:
    if not counts:
        return ""
    if isinstance(counts, str):
        try:
            counts = json.loads(counts)
        except ValueError:
            return counts[:40]
    return ", ".join(f"{k}={v}" for k, v in list(counts.items())[:5])


# --------------------------------------------------------------------------- apply


def apply_summary(result: ApplyResult) -> str:
    """Terraform-style closing lines: resources, the other outcomes, requests, what was left."""
    n = result.counts()
    head = "Apply complete!" if result.ok else "Apply finished with errors!"
    adopted = f"{n['adopted']} adopted, " if n["adopted"] else ""
    lines = [f"{head} Resources: {adopted}{n['added']} added, {n['changed']} changed, "
             f"{n['destroyed']} destroyed."]
    others = [f"{n[o]} {o}" for o in ("already", "drifted", "failed", "skipped")]  # Outcome values
    lines.append("  Also: " + ", ".join(others) + (f"; {n['earlier']} settled by an earlier run of this plan"
                                                  if n["earlier"] else "") + ".")
    lines.append(_requests(result))
    lines += [f"  {note}" for note in result.notes]
    lines += _not_applied(result)
    if n["drifted"]:
        lines.append("Drifted changes were not written: their targets changed since the plan. "
                     "Run `qatlan plan` to see what to do now.")
    return "\n".join(lines)


def _requests(result: ApplyResult) -> str:
    parts = []
    for service, label in (("atlan", "Atlan"), ("qualytics", "Qualytics")):
        total = result.requests.get(service, 0)
        writes = sum(v for k, v in result.writes.items() if k.startswith(service + " "))
        parts.append(f"{total} to {label} ({writes} writes)")
    return "  Requests: " + ", ".join(parts) + "."


def _not_applied(result: ApplyResult) -> list[str]:
    shown = [r for r in result.results
             if not r.earlier and r.outcome in ("drifted", "skipped")]  # Outcome is a str enum
    if not shown:
        return []
    lines = ["Not applied:"]
    lines += [f"  {r.address} ({r.outcome.value}): {r.error}" for r in shown[:LIST_LIMIT]]
    if len(shown) > LIST_LIMIT:
        lines.append(f"  ... and {len(shown) - LIST_LIMIT} more")
    return lines
