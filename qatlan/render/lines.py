"""The one textual model of a plan that every renderer shares.

A change becomes a few `(symbol, text)` lines: symbol `+`, `~`, `-`, `=` (adopted: already
there, recorded as qatlan's), or ` ` for a continuation line. Custom metadata shows one line per attribute (`cm:<Set>.<attribute>`),
definitions one line per attribute or tag. Groups put definitions first, then each asset's
changes under one header. Nothing here decides anything: it only describes the plan.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from qatlan import addresses
from qatlan.model import CM_ATTRIBUTES
from qatlan.normalize import epoch_ms, format_duration
from qatlan.plan import Action, Change, Plan

Line = tuple[str, str]

SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.ADOPT: "=",
          Action.NOOP: " "}
VERB = {Action.CREATE: "created", Action.UPDATE: "updated", Action.DELETE: "destroyed",
        Action.ADOPT: "adopted"}
_CM_DATES = frozenset(attr for attr, kind in CM_ATTRIBUTES if kind == "date")
_PLAIN = frozenset("\"\\\n\r\t\x0b\x0c")
#: the order values are shown in, whatever order a plan's dicts arrive in (a saved plan and
#: the state hold them with sorted keys): the custom metadata set's own attribute order,
#: then an announcement's and a Link's fields as Atlan shows them; other keys follow as given
_ORDER = {name: i for i, name in enumerate(
    [attr for attr, _ in CM_ATTRIBUTES] + ["type", "title", "message", "name", "url"])}


def _ordered(values: dict[str, Any]) -> list[tuple[str, Any]]:
    last = len(_ORDER)
    return sorted(values.items(), key=lambda kv: _ORDER.get(kv[0], last))


# --------------------------------------------------------------------------- values


def fmt(value: Any) -> str:
    """A value as the plan shows it: strings quoted, numbers bare, structures as JSON."""
    t = type(value)
    if t is float or t is int:  # the hot path: scores and counts
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.isdisjoint(value) and value.isprintable():
            return f'"{value}"'
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _cm_value(attr: str, value: Any) -> str:
    if attr not in _CM_DATES:
        return fmt(value)
    if type(value) is int:
        try:
            ts = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return fmt(value)
        return ts.isoformat(timespec="seconds").replace("+00:00", "Z")
    return fmt(value)


# --------------------------------------------------------------------------- per part


def _cm(change: Change, part: str) -> list[Line]:
    prefix = part + "."
    before, after = change.before or {}, change.after or {}
    value = _cm_value
    if change.action is Action.CREATE:
        return [("+", f"{prefix}{a}: {value(a, v)}") for a, v in _ordered(after)]
    if change.action is Action.DELETE:
        return [("-", f"{prefix}{a}: {value(a, v)}") for a, v in _ordered(before)]
    if change.action is Action.ADOPT:
        return [("=", f"{prefix}{a}: {value(a, v)}") for a, v in _ordered(after)]
    out: list[Line] = []
    for attr, new in _ordered(after):
        old = before.get(attr)
        if old is None:
            out.append(("+", f"{prefix}{attr}: {value(attr, new)}"))
        elif new is None:
            out.append(("-", f"{prefix}{attr}: {value(attr, old)}"))
        elif new == old:  # already there, taken over with the rest of the change
            out.append(("=", f"{prefix}{attr}: {value(attr, new)}"))
        else:
            out.append(("~", f"{prefix}{attr}: {value(attr, old)} → {value(attr, new)}"))
    return out


def _dict_diff(before: Any, after: Any) -> str:
    """`key: old → new` for each key that differs (or the whole values when not dicts)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return f"{fmt(before)} → {fmt(after)}"
    keys = [k for k, _ in _ordered({**before, **after})]
    diffs = [f"{k}: {fmt(before.get(k))} → {fmt(after.get(k))}"
             for k in keys if before.get(k) != after.get(k)]
    return ", ".join(diffs)


def _tag(change: Change, part: str) -> list[Line]:
    value = change.after if change.after is not None else change.before
    external = isinstance(value, dict) and value.get("type") == "external"
    sym = SYMBOL[change.action]
    if change.action is Action.UPDATE:
        return [(sym, f"{part}: {_dict_diff(change.before, change.after)}")]
    return [(sym, part + (" (external)" if external else ""))]


def _link(change: Change, part: str) -> list[Line]:
    sym = SYMBOL[change.action]
    if change.action is Action.UPDATE:
        return [(sym, f"{part}: {_dict_diff(change.before, change.after)}")]
    value = change.after if change.after is not None else change.before
    if isinstance(value, dict):
        return [(sym, f"{part}: {value.get('name')} {fmt(value.get('url'))}")]
    return [(sym, f"{part}: {fmt(value)}")]


def _announcement(change: Change, part: str) -> list[Line]:
    sym = SYMBOL[change.action]
    if change.action is Action.UPDATE:
        return [(sym, f"{part}: {_dict_diff(change.before, change.after)}")]
    value = change.after if change.after is not None else change.before
    if not isinstance(value, dict):
        return [(sym, f"{part}: {fmt(value)}")]
    out = [(sym, f"{part}: {value.get('type')} {fmt(value.get('title'))}")]
    if value.get("message"):
        out.append((" ", f"  message: {fmt(value['message'])}"))
    return out


def _definition(change: Change, part: str) -> list[Line]:
    sym = SYMBOL[change.action]
    kind, _, name = part.partition(":")
    if kind == "tag":
        return [(sym, f"tag definition {fmt(name)}")]
    before = {a["name"]: a.get("type") for a in (change.before or {}).get("attributes", ())}
    after = (change.after or {}).get("attributes", ())
    out = [(sym, f"custom metadata set {fmt(name)}")]
    if change.action is Action.CREATE:
        out = [(sym, f"custom metadata set {fmt(name)} with {len(after)} attributes")]
    for a in after:
        if a["name"] not in before:
            out.append(("+", f"  attribute {fmt(a['name'])} ({a.get('type')})"))
    return out


def change_lines(change: Change, part: str | None = None) -> list[Line]:
    """The lines of one change, with its display-only reason on the first line.

    `part` may be passed when the caller already parsed the address (see `groups`).
    """
    if part is None:
        part = addresses.parse(change.address)[1]
    if addresses.is_typedef(change.address):
        out = _definition(change, part)
    elif part.startswith("cm:"):
        out = _cm(change, part)
    elif part.startswith("tag:"):
        out = _tag(change, part)
    elif part == "link":
        out = _link(change, part)
    elif part == "announcement":
        out = _announcement(change, part)
    elif change.action is Action.UPDATE:
        out = [("~", f"{part or change.address}: {fmt(change.before)} → {fmt(change.after)}")]
    else:
        value = change.after if change.after is not None else change.before
        out = [(SYMBOL[change.action], f"{part or change.address}: {fmt(value)}")]
    if change.reason and out:
        sym, text = out[0]
        out[0] = (sym, f"{text}  # {change.reason}")
    return out


# --------------------------------------------------------------------------- grouping


Group = tuple[str, list[tuple[Change, str]]]


def groups(changes: Iterable[Change]) -> list[Group]:
    """[(header subject, [(change, part)])]: each definition alone and first, then assets
    in the order of their first change's address (a plan's changes are sorted by address, so
    this is address order; no-ops are not listed)."""
    definitions: list[Group] = []
    by_asset: dict[str, list[tuple[Change, str]]] = {}
    first: dict[str, str] = {}
    for c in changes:
        if c.action is Action.NOOP:
            continue
        asset, part = addresses.parse(c.address)
        if addresses.is_typedef(c.address):
            definitions.append((c.address, [(c, part)]))
            continue
        bucket = by_asset.get(asset)
        if bucket is None:
            bucket = by_asset[asset] = []
            first[asset] = c.address
        elif c.address < first[asset]:
            first[asset] = c.address
        bucket.append((c, part))
    return definitions + sorted(by_asset.items(), key=lambda kv: first[kv[0]])


def iter_groups(changes: Iterable[Change]) -> Iterator[Group]:
    """`groups(changes)` one at a time. A stored plan's changes (`iter_groups` of their own)
    are read from the state only as far as the caller goes: listing the first assets of a
    million changes reads those assets' rows, not the million."""
    own = getattr(changes, "iter_groups", None)
    return own() if own is not None else iter(groups(changes))


def header(subject: str, changes: list[tuple[Change, str]]) -> str:
    if addresses.is_typedef(subject):
        return f"# {subject} will be {VERB.get(changes[0][0].action, 'changed')}"
    if all(c.action is Action.ADOPT for c, _ in changes):
        return f"# {subject} will be adopted"
    return f"# {subject} will be updated"


# --------------------------------------------------------------------------- summaries


KINDS = (
    ("definition", "Atlan definitions"),
    ("atlan:cm", "Atlan custom metadata"),
    ("atlan:tag", "Atlan tags"),
    ("atlan:link", "Atlan links"),
    ("atlan:announcement", "Atlan announcements"),
    ("qualytics:tag", "Qualytics tags (external)"),
)
_KIND_LABEL = dict(KINDS)


def breakdown(plan: Plan) -> list[tuple[str, int, int, int, int]]:
    """[(kind label, add, change, destroy, adopt)] for the kinds present, in a fixed order."""
    counts = plan.tally()["kinds"]
    order = [k for k, _ in KINDS] + sorted(k for k in counts if k not in _KIND_LABEL)
    return [(_KIND_LABEL.get(k, k), *counts[k]) for k in order if k in counts]


def summary_line(plan: Plan) -> str:
    n = plan.counts()
    adopt = f"{n['adopt']:,} to adopt, " if n["adopt"] else ""
    return (f"Plan: {adopt}{n['add']:,} to add, {n['change']:,} to change, "
            f"{n['destroy']:,} to destroy.")


#: the one command that unblocks values waiting for definitions
UNBLOCK = "qatlan plan --create-definitions"


def status_line(plan: Plan) -> str:
    """The plan's verdict: in sync, the summary line, or what waits for definitions."""
    if plan.in_sync():
        return "No changes. Both sides are in sync."
    if plan.is_empty():
        return (f"Not in sync: {plural(plan.waiting, 'change')} wait for Atlan definitions; "
                f"run `{UNBLOCK}` to plan them too.")
    return summary_line(plan)


def waiting_line(plan: Plan) -> str | None:
    """What waits for definitions, under a plan that has changes too (None: nothing waits)."""
    if not plan.waiting or plan.is_empty():
        return None
    return (f"{plural(plan.waiting, 'more change')} wait for Atlan definitions; "
            f"run `{UNBLOCK}` to plan them too.")


def asset_skips(plan: Plan) -> list[Any]:
    return [s for s in plan.skipped if s.level != "change"]


def change_skips(plan: Plan, reason: str) -> list[Any]:
    return [s for s in plan.skipped if s.level == "change" and s.reason == reason]


def freshness_line(plan: Plan) -> str | None:
    """How old the oldest Qualytics field read the plan relies on is (None: not known)."""
    oldest, made = epoch_ms(plan.base.get("oldest_field_read")), epoch_ms(plan.created_at)
    if oldest is None or made is None:
        return None
    age = format_duration(max(0, made - oldest) / 1000)
    limit = plan.base.get("max_field_age")
    tail = f" (max_field_age {format_duration(limit)})" if limit else ""
    return f"Qualytics fields read at most {age} before this plan{tail}."


def counts_line(plan: Plan) -> str:
    n = len(asset_skips(plan))
    m = len(plan.conflicts)
    return (f"{n:,} asset{'' if n == 1 else 's'} skipped, "
            f"{m:,} conflict{'' if m == 1 else 's'}.")


def skip_counts(plan: Plan) -> list[tuple[str, str, int]]:
    """[(level, reason, n)] of the skipped assets, most first within each level."""
    counter = Counter((s.level, s.reason) for s in asset_skips(plan))
    levels = ("datastore", "container", "field")
    return sorted(((lvl, r, n) for (lvl, r), n in counter.items()),
                  key=lambda t: (levels.index(t[0]) if t[0] in levels else 9, -t[2], t[1]))


def conflict_counts(plan: Plan) -> list[tuple[str, int]]:
    return sorted(Counter(c.rule for c in plan.conflicts).items(), key=lambda kv: (-kv[1], kv[0]))


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
