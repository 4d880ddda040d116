"""Text rendering for commands other than the plan (which has qatlan.render).

Functions here take plain data and return strings; only the CLI writes them to a stream.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from tabulate import tabulate


class Progress:
    """Progress for long reads: one rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.2):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._open = False

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        now = time.monotonic()
        if not finished and now - self._last.get(stage, 0.0) < (self.interval if self.tty else 5.0):
            return
        self._last[stage] = now
        text = f"{stage}: {done:,}" + (f"/{total:,}" if total is not None else "")
        if self.tty:
            bar = _bar(done, total) if total else ""
            self.stream.write(f"\r\033[K{text} {bar}")
            self._open = True
            if finished:
                self.stream.write("\n")
                self._open = False
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * min(done, total) / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


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
