"""A plan as a pull-request comment that never exceeds a character limit.

Layout: a title, the summary line and a table of changes by kind, counts of skipped assets
and conflicts, then the changes grouped by asset in a collapsed `diff` block (GitHub colours
`+` and `-`; updates use `!` as tfcmt does), then the conflicts. When the limit is near, whole
assets are left out and a notice says how many changes are not shown.
"""

from __future__ import annotations

import re

from qatlan.plan import Plan
from qatlan.render.lines import (
    UNBLOCK,
    breakdown,
    change_lines,
    change_skips,
    conflict_counts,
    counts_line,
    freshness_line,
    iter_groups,
    header,
    skip_counts,
    status_line,
    summary_line,
)

#: GitHub's maximum comment body, in characters
GITHUB_LIMIT = 65536
_MD_SYMBOL = {"+": "+   ", "~": "!   ", "-": "-   ", "=": "=   ", " ": "    "}
_TICKS = re.compile(r"`{3,}")
#: room kept for the fence lines (a longer fence when values hold backticks) and joins
_SLACK = 40


def cut_notice(hidden: int, what: str = "change") -> str:
    noun = what if hidden == 1 else what + "s"
    return (f"… {hidden:,} more {noun} not shown; see the CI logs or "
            "`qatlan show plan.json`.")


def render_markdown(plan: Plan, *, limit: int = GITHUB_LIMIT) -> str:
    head = _head(plan)
    changes, _ = _changes_block(plan, limit)
    conflicts, _ = _conflicts_block(plan, limit)
    text = _join(head, changes, conflicts)
    if len(text) <= limit:
        return text
    # the wrappers with nothing listed hold the longest notices: what must always fit
    wrappers = len(_changes_block(plan, 0)[0]) + len(_conflicts_block(plan, 0)[0])
    room = limit - len(head) - wrappers - _SLACK
    # conflicts are few and need a person: they may take up to a quarter of the room
    conflicts, used = _conflicts_block(plan, room // 4)
    changes, _ = _changes_block(plan, room - used)
    text = _join(head, changes, conflicts)
    if len(text) > limit:  # only when the head alone does not fit a tiny limit
        line = status_line(plan)
        text = f"**{line}** {counts_line(plan)}\n\n{cut_notice(len(plan.changes))}\n"[:limit]
    return text


def _join(*parts: str) -> str:
    return "\n".join(part for part in parts if part).rstrip() + "\n"


def _head(plan: Plan) -> str:
    out = ["### qatlan plan", ""]
    if plan.is_empty():
        out.append(f"**{status_line(plan)}** " + counts_line(plan))
    else:
        rows = breakdown(plan)
        width = 5 if any(row[4] for row in rows) else 4  # the adopt column only when there are some
        headers = ["changes by kind", "add", "change", "destroy", "adopt"][:width]
        out += [f"**{summary_line(plan)}** {counts_line(plan)}", "",
                "| " + " | ".join(headers) + " |", "|---" + "|---:" * (width - 1) + "|"]
        out += ["| " + " | ".join([row[0], *(f"{n:,}" for n in row[1:width])]) + " |" for row in rows]
    if not plan.complete:
        out += ["", "> [!WARNING]", "> The snapshot did not read completely, so this plan "
                "removes nothing (removals are held back until a complete refresh)."]
    waiting = change_skips(plan, "definition_missing")
    if waiting:
        names = ", ".join(f"`{s.id}`" for s in waiting[:20])
        more = f" and {len(waiting) - 20:,} more" if len(waiting) > 20 else ""
        out += ["", f"**Atlan definitions missing**, {plan.waiting:,} changes wait for them "
                f"(`{UNBLOCK}`): {names}{more}"]
    skips = skip_counts(plan)
    if skips:
        parts = ", ".join(f"{n:,} {level} {reason}" for level, reason, n in skips)
        out += ["", f"**Skipped:** {parts} (`qatlan match` lists them)."]
    if plan.conflicts:
        parts = ", ".join(f"{n:,} {rule}" for rule, n in conflict_counts(plan))
        out += ["", f"**Conflicts (left as they are):** {parts}."]
    fresh = freshness_line(plan)
    if fresh:
        out += ["", f"_{fresh}_"]
    return "\n".join(out) + "\n"


def _changes_block(plan: Plan, budget: int) -> tuple[str, int]:
    if not plan.changes:
        return "", 0
    blocks: list[str] = []
    shown = used = 0
    for subject, changes in iter_groups(plan.changes):
        lines = [header(subject, changes)]
        for change, part in changes:
            lines += [_MD_SYMBOL[s] + text for s, text in change_lines(change, part)]
        block = "\n".join(lines) + "\n"
        if used + len(block) + 1 > budget:
            break
        blocks.append(block)
        shown += len(changes)
        used += len(block) + 1
    body = "\n".join(blocks)
    fence = "`" * max(3, 1 + max((len(m) for m in _TICKS.findall(body)), default=0))
    total = len(plan.changes)
    summary = f"Changes ({total:,}, grouped by asset)"
    out = [f"<details><summary>{summary}</summary>", ""]
    if blocks:
        out += [f"{fence}diff", body.rstrip("\n"), fence, ""]
    if shown < total:
        out += [cut_notice(total - shown), ""]
    out += ["</details>", ""]
    text = "\n".join(out)
    return text, used


def _conflicts_block(plan: Plan, budget: int) -> tuple[str, int]:
    if not plan.conflicts:
        return "", 0
    items, used = [], 0
    for c in plan.conflicts:
        item = f"- `{c.address}` ({c.rule}): {_escape(c.message)}"
        if used + len(item) + 1 > budget:
            break
        items.append(item)
        used += len(item) + 1
    out = [f"<details><summary>Conflicts ({len(plan.conflicts):,})</summary>", ""]
    if items:
        out += [*items, ""]
    if len(items) < len(plan.conflicts):
        out += [cut_notice(len(plan.conflicts) - len(items), "conflict"), ""]
    out += ["</details>", ""]
    text = "\n".join(out)
    return text, used


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")
