"""The terminal rendering of a plan, grouped by asset like Terraform's."""

from __future__ import annotations

from collections.abc import Iterator

from tabulate import tabulate

from qatlan._gc import gc_paused
from qatlan.plan import Plan
from qatlan.render.lines import (
    asset_skips,
    breakdown,
    change_lines,
    change_skips,
    conflict_counts,
    counts_line,
    freshness_line,
    iter_groups,
    header,
    plural,
    skip_counts,
    status_line,
    waiting_line,
)

_RESET = "\033[0m"
_STYLE = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "=": "\033[36m", "!": "\033[35m",
          "#": "\033[1m"}
#: change-level skips listed one by one up to this many (the rest counted)
LIST_LIMIT = 50
#: lines per piece of `iter_human`
BATCH = 4096


class _Paint:
    def __init__(self, color: bool):
        self.color = color
        self.sym = {s: (f"{_STYLE[s]}{s}{_RESET}" if color else s) for s in "+~-="}
        self.sym[" "] = " "

    def __call__(self, style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.color else text


def render_human(plan: Plan, *, color: bool = False, max_assets: int = 0) -> str:
    return "".join(iter_human(plan, color=color, max_assets=max_assets))


def iter_human(plan: Plan, *, color: bool = False, batch: int = BATCH,
               max_assets: int = 0) -> Iterator[str]:
    """`render_human`'s text in pieces of about `batch` lines, split only at line ends.
    `max_assets` > 0 lists the changes of that many assets and counts the rest."""
    with gc_paused():
        pending: list[str] = []
        sep = ""
        for block in _blocks(plan, _Paint(color), max_assets):
            pending += block
            if len(pending) >= batch:
                yield sep + "\n".join(pending)
                pending, sep = [], "\n"
        if pending or not sep:
            yield sep + "\n".join(pending)


def _blocks(plan: Plan, paint: _Paint, max_assets: int = 0) -> Iterator[list[str]]:
    """The plan's lines, a block at a time (each asset's changes are one block)."""
    if not plan.is_empty():
        yield ["qatlan will perform the following actions:", ""]
        yield from _changes(plan, paint, max_assets)
    yield _definitions_missing(plan)
    yield _conflicts(plan, paint)
    yield _skipped(plan)
    yield _withheld(plan)
    if not plan.complete:
        yield [paint("!", "Note: the snapshot did not read completely, so this plan removes "
                          "nothing (removals are held back until a complete refresh)."), ""]
    yield _tail(plan, paint)


def _tail(plan: Plan, paint: _Paint) -> list[str]:
    out: list[str] = []
    if not plan.is_empty():
        out += _breakdown(plan)
    if plan.unchanged:
        out.append(f"{plural(plan.unchanged, 'item')} already in sync.")
    out.append(paint("#" if plan.in_sync() or not plan.is_empty() else "!", status_line(plan)))
    waiting = waiting_line(plan)
    if waiting:
        out.append(paint("!", waiting))
    out.append(counts_line(plan))
    fresh = freshness_line(plan)
    if fresh:
        out.append(fresh)
    return out


def _changes(plan: Plan, paint: _Paint, max_assets: int = 0) -> Iterator[list[str]]:
    sym = {s: f"    {p} " for s, p in paint.sym.items()}
    shown = shown_changes = 0
    for subject, changes in iter_groups(plan.changes):
        if max_assets and shown >= max_assets:
            break
        shown += 1
        shown_changes += len(changes)
        block = [paint("#", "  " + header(subject, changes))]
        append = block.append
        for change, part in changes:
            for s, text in change_lines(change, part):
                append(sym[s] + text)
        append("")
        yield block
    if max_assets and shown >= max_assets:  # the rest is counted, not read
        t = plan.tally()
        definitions = sum(t["kinds"].get("definition", ()))
        hidden_assets = definitions + t["assets"] - shown
        hidden_changes = sum(map(sum, t["kinds"].values())) - shown_changes
        if hidden_assets:
            yield [f"  ... and {plural(hidden_changes, 'change')} on {plural(hidden_assets, 'more asset')} "
                   "not listed here (the summary below counts them all; `qatlan show FILE` or "
                   "`--json` lists every change, `--max-assets 0` lists them here)", ""]


def _definitions_missing(plan: Plan) -> list[str]:
    waiting = change_skips(plan, "definition_missing")
    if not waiting:
        return []
    out = ["Atlan definitions missing (not planned; run `qatlan plan --create-definitions`, or "
           "create them in Atlan):"]
    for s in waiting:
        why = (s.hint or "").split(";")[0]
        out.append(f"  {s.id}" + (f" ({why})" if why else ""))
    return out + [""]


def _conflicts(plan: Plan, paint: _Paint) -> list[str]:
    if not plan.conflicts:
        return []
    rules = ", ".join(f"{n:,} {rule}" for rule, n in conflict_counts(plan))
    out = [f"Conflicts, left as they are ({rules}):"]
    for c in plan.conflicts:
        out.append(f"  {paint('!', '!')} {c.address}: {c.message}")
    return out + [""]


def _skipped(plan: Plan) -> list[str]:
    rows = skip_counts(plan)
    if not rows:
        return []
    out = [f"Skipped ({plural(len(asset_skips(plan)), 'asset')}; `qatlan match` lists them "
           "with hints):"]
    levels: dict[str, list[str]] = {}
    for level, reason, n in rows:
        levels.setdefault(level, []).append(f"{n:,} {reason}")
    for level, parts in levels.items():
        out.append(f"  {level}s: {', '.join(parts)}")
    return out + [""]


def _withheld(plan: Plan) -> list[str]:
    held = change_skips(plan, "incomplete_snapshot")
    if not held:
        return []
    out = [f"Held back because the snapshot is incomplete ({plural(len(held), 'removal')}):"]
    for s in held[:LIST_LIMIT]:
        out.append(f"  {s.id}")
    if len(held) > LIST_LIMIT:
        out.append(f"  … {len(held) - LIST_LIMIT:,} more")
    return out + [""]


def _breakdown(plan: Plan) -> list[str]:
    rows = breakdown(plan)
    width = 5 if any(row[4] for row in rows) else 4  # the adopt column only when there are some
    headers = ["changes by kind", "add", "change", "destroy", "adopt"][:width]
    shown = [(row[0], *(f"{n:,}" for n in row[1:width])) for row in rows]
    table = tabulate(shown, headers=headers, tablefmt="simple",
                     colalign=("left",) + ("right",) * (width - 1))
    return [table, ""]
