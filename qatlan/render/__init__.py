"""Rendering: a `Plan` (or a match result) in, text or a dict out. It never decides anything.

    human(plan, color=False)       Terraform-style text grouped by asset, ending with
                                   "Plan: A to add, C to change, D to destroy."
    human_pieces(plan, color=False)  the same text in pieces, split at line ends
    json(plan)                     the documented, versioned dict (docs/plan-format.md)
    json_pieces(plan)              `json.dumps(json(plan), ensure_ascii=False)` in pieces
    markdown(plan, limit=65536)    a pull-request comment that never exceeds `limit` characters
    match_report(result, snapshot) the `qatlan match` text: counts per level and reason, names
    match_json(result)             the same as a dict

    apply_summary(result), refresh_summary(result), runs_table(runs), snapshots_table(rows),
    record_history(...), missing_lines(missing)   the other commands' texts (tables.py)
    log_table(events), diff_text(a, b, entries), state_at_text(...)   the audit commands (audit.py)
    Progress                       progress of long reads and writes on stderr (progress.py)
    use_color(stream), set_no_color(flag)   whether ANSI colours go to a stream (term.py)

Only the CLI writes these to a stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qatlan.plan import Plan
from qatlan.render.audit import diff_text, log_table, state_at_text
from qatlan.render.human import iter_human, render_human
from qatlan.render.lines import change_lines, fmt, status_line
from qatlan.render.markdown import GITHUB_LIMIT, render_markdown
from qatlan.render.match import render_match_json, render_match_report
from qatlan.render.plan_json import json, json_pieces
from qatlan.render.progress import Progress
from qatlan.render.term import set_no_color, use_color
from qatlan.render.tables import (
    apply_summary,
    missing_lines,
    record_history,
    refresh_summary,
    runs_table,
    snapshots_table,
)

if TYPE_CHECKING:
    from qatlan.match import MatchResult
    from qatlan.model import Snapshot

__all__ = [
    "GITHUB_LIMIT",
    "Progress",
    "set_no_color",
    "use_color",
    "apply_summary",
    "diff_text",
    "log_table",
    "state_at_text",
    "change_lines",
    "fmt",
    "human",
    "human_pieces",
    "json",
    "json_pieces",
    "markdown",
    "match_json",
    "match_report",
    "missing_lines",
    "record_history",
    "refresh_summary",
    "runs_table",
    "snapshots_table",
    "status_line",
]


def human(plan: Plan, *, color: bool = False, max_assets: int = 0) -> str:
    """The plan for a terminal; ANSI colours only when `color` (the CLI passes isatty);
    `max_assets` > 0 lists that many assets' changes and counts the rest."""
    return render_human(plan, color=color, max_assets=max_assets)


def human_pieces(plan: Plan, *, color: bool = False, max_assets: int = 0) -> Iterator[str]:
    """`human(plan, color=color)` in pieces that start and end at line ends (joined, the
    same text), so a large plan is written without holding its whole text. `max_assets` > 0
    lists that many assets' changes and counts the rest."""
    return iter_human(plan, color=color, max_assets=max_assets)


def markdown(plan: Plan, *, limit: int = GITHUB_LIMIT) -> str:
    """A pull-request comment of at most `limit` characters that says when it was cut."""
    return render_markdown(plan, limit=limit)


def match_report(result: MatchResult, snapshot: Snapshot) -> str:
    """Counts per level and reason (matched + each reason = total), then skipped names."""
    return render_match_report(result, snapshot)


def match_json(result: MatchResult) -> dict[str, Any]:
    """The match result as a versioned dict (see docs/commands.md, `qatlan match --json`)."""
    return render_match_json(result)
