"""Rendering: a `Plan` (or a match result) in, text or a dict out. It never decides anything.

    human(plan, color=False)       Terraform-style text grouped by asset, ending with
                                   "Plan: A to add, C to change, D to destroy."
    human_pieces(plan, color=False)  the same text in pieces, split at line ends
    json(plan)                     the documented, versioned dict (docs/plan-format.md)
    json_pieces(plan)              `json.dumps(json(plan), ensure_ascii=False)` in pieces
    markdown(plan, limit=65536)    a pull-request comment that never exceeds `limit` characters
    match_report(result, snapshot) the `qatlan match` text: counts per level and reason, names
    match_json(result)             the same as a dict

Only the CLI writes these to a stream. The code lives in `qatlan/_render/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qatlan import __version__
from qatlan.matching import MatchResult
from qatlan.model import Snapshot
from qatlan.plan import Plan, iter_json

from qatlan._render.human import iter_human, render_human
from qatlan._render.lines import change_lines, fmt
from qatlan._render.markdown import GITHUB_LIMIT, render_markdown
from qatlan._render.match import render_match_json, render_match_report

__all__ = ["GITHUB_LIMIT", "change_lines", "fmt", "human", "human_pieces", "json", "json_pieces",
           "markdown", "match_json", "match_report"]


def human(plan: Plan, *, color: bool = False) -> str:
    """The plan for a terminal; ANSI colours only when `color` (the CLI passes isatty)."""
    return render_human(plan, color=color)


def human_pieces(plan: Plan, *, color: bool = False) -> Iterator[str]:
    """`human(plan, color=color)` in pieces that start and end at line ends (joined, the
    same text), so a large plan is written without holding its whole text."""
    return iter_human(plan, color=color)


def json(plan: Plan) -> dict[str, Any]:  # noqa: A001 - the name users expect (`--json`)
    """The documented JSON form: `plan.to_dict()` plus `qatlan_version` and `checksum`."""
    from qatlan.planning import plan_checksum

    data = plan.to_dict()
    return _document(data, plan_checksum(data))


def json_pieces(plan: Plan, *, checksum: str | None = None) -> Iterator[str]:
    """`json.dumps(json(plan), ensure_ascii=False)` in pieces (joined, exactly that text),
    without a dict copy of every change; `checksum` is `plan_checksum(plan)` if known."""
    from qatlan.planning import plan_checksum

    return iter_json(_document(plan.json_parts(), checksum or plan_checksum(plan)), ensure_ascii=False)


def _document(parts: dict[str, Any], checksum: str) -> dict[str, Any]:
    """The plan's parts with `qatlan_version` and `checksum` after `format_version`."""
    out: dict[str, Any] = {"format_version": parts.pop("format_version"),
                           "qatlan_version": __version__, "checksum": checksum}
    out.update(parts)
    return out


def markdown(plan: Plan, *, limit: int = GITHUB_LIMIT) -> str:
    """A pull-request comment of at most `limit` characters that says when it was cut."""
    return render_markdown(plan, limit=limit)


def match_report(result: MatchResult, snapshot: Snapshot) -> str:
    """Counts per level and reason (matched + each reason = total), then skipped names."""
    return render_match_report(result, snapshot)


def match_json(result: MatchResult) -> dict[str, Any]:
    """The match result as a versioned dict (see docs/commands.md, `qatlan match --json`)."""
    return render_match_json(result)
