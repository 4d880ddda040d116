"""The matching report (`qatlan match`): counts per level and reason, then the skipped names."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

if TYPE_CHECKING:
    from qatlan.match import MatchResult
from qatlan.model import Skip, Snapshot

#: names listed per level and reason before "… N more"
LIST_LIMIT = 20
MATCH_FORMAT_VERSION = 1


def _reasons(result: MatchResult) -> list[str]:
    from qatlan.match import SKIP_REASONS  # here: qatlan.match pulls in the config layer
    present = {s.reason for s in result.skipped}
    return [r for r in SKIP_REASONS if r in present] + sorted(present - set(SKIP_REASONS))


def _table(result: MatchResult) -> str:
    from qatlan.match import LEVELS  # here: qatlan.match pulls in the config layer
    reasons = _reasons(result)
    rows = []
    for level in LEVELS:
        counts = result.counts(level)
        rows.append([f"{level}s", f"{counts['total']:,}", f"{counts['matched']:,}",
                     *(f"{counts.get(r, 0):,}" for r in reasons)])
    return tabulate(rows, headers=["", "total", "matched", *reasons], tablefmt="simple",
                    colalign=("left",) + ("right",) * (2 + len(reasons)))


class _Names:
    """Readable paths of Qualytics assets: datastore, datastore/container, …/field."""

    def __init__(self, snapshot: Snapshot):
        self.s = snapshot

    def datastore(self, ds_id: Any) -> str:
        ds = self.s.datastores.get(ds_id)
        return ds.name if ds else str(ds_id)

    def container(self, c_id: Any) -> str:
        c = self.s.containers.get(c_id)
        return f"{self.datastore(c.datastore_id)}/{c.name}" if c else str(c_id)

    def of(self, skip: Skip) -> str:
        if skip.level == "datastore":
            return self.datastore(skip.id)
        if skip.level == "container":
            return self.container(skip.id)
        f = self.s.fields.get(skip.id)
        return f"{self.container(f.container_id)}/{f.name}" if f else skip.name


def _level_lines(level: str, skips: list[Skip], names: _Names, limit: int) -> list[str]:
    from qatlan.match import SKIP_REASONS  # here: qatlan.match pulls in the config layer
    own = [s for s in skips if not s.inherited]
    inherited = [s for s in skips if s.inherited]
    out = [f"Skipped {level}s ({len(skips):,}):"]
    by_reason: dict[str, list[Skip]] = defaultdict(list)
    for s in own:
        by_reason[s.reason].append(s)
    for reason in sorted(by_reason, key=lambda r: SKIP_REASONS.index(r) if r in SKIP_REASONS else 99):
        items = by_reason[reason]
        out.append(f"  {reason} ({len(items):,}):")
        for s in sorted(items, key=names.of)[:limit]:
            out.append(f"    {names.of(s)}" + (f" — {s.hint}" if s.hint else ""))
        if len(items) > limit:
            out.append(f"    … {len(items) - limit:,} more (`qatlan match --json` lists all)")
    if inherited:
        counts: dict[str, int] = defaultdict(int)
        for s in inherited:
            counts[s.reason] += 1
        parts = ", ".join(f"{r} {n:,}" for r, n in sorted(counts.items()))
        parent = "datastores" if level == "container" else "containers"
        out.append(f"  + {len(inherited):,} {level}s of skipped {parent} ({parts})")
    return out


def render_match_report(result: MatchResult, snapshot: Snapshot, *, limit: int = LIST_LIMIT) -> str:
    from qatlan.match import LEVELS  # here: qatlan.match pulls in the config layer
    taken = f", taken {snapshot.taken_at}" if snapshot.taken_at else ""
    sid = f" {snapshot.id}" if snapshot.id is not None else ""
    out = [f"Matching from snapshot{sid}{taken}."]
    if result.domain_guids is not None:
        out.append(f"Limited to {len(result.domain_guids):,} Atlan domains (with subdomains).")
    if not snapshot.complete:
        out.append("Note: the snapshot did not read completely: " + "; ".join(snapshot.missing))
    out += ["", _table(result), ""]
    names = _Names(snapshot)
    by_level: dict[str, list[Skip]] = defaultdict(list)
    for s in result.skipped:
        by_level[s.level].append(s)
    for level in LEVELS:
        if by_level.get(level):
            out += _level_lines(level, by_level[level], names, limit) + [""]
    if not result.skipped:
        out.append("Every datastore, container and field matched.")
    return "\n".join(out).rstrip() + "\n"


def render_match_json(result: MatchResult) -> dict[str, Any]:
    from qatlan.match import LEVELS  # here: qatlan.match pulls in the config layer
    return {
        "format_version": MATCH_FORMAT_VERSION,
        "summary": {level: result.counts(level) for level in LEVELS},
        "domain_guids": None if result.domain_guids is None else sorted(result.domain_guids),
        "datastores": {
            str(ds_id): {"connection": m.connection_qn, "database": m.database,
                         "schema": m.schema, "schema_guid": m.schema_guid,
                         "schema_in_scope": m.schema_in_scope, "via": m.via}
            for ds_id, m in result.datastores.items()
        },
        "containers": {str(k): v for k, v in result.containers.items()},
        "fields": {str(k): v for k, v in result.fields.items()},
        "skipped": [s.to_dict() for s in result.skipped],
    }
