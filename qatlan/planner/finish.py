"""From collected changes to a `Plan`: filters, safety rules, definitions, order."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from qatlan import addresses
from qatlan.model import Skip
from qatlan.plan import Action, Change, Plan
from qatlan.match import LEVELS
from qatlan.planner.context import Context, tag_definition


def _names(address: str, target: Mapping[str, Any] | None = None) -> list[str]:
    """What --target/--exclude patterns are matched against: the address, the asset, its name."""
    asset, _ = addresses.parse(address)
    path = asset.partition(":")[2]
    names = [address, asset, path, path.rsplit("/", 1)[-1]]
    if target and target.get("qualified_name"):
        names.append(str(target["qualified_name"]))
    return names


def selected(address: str, targets: tuple[str, ...], excludes: tuple[str, ...],
             target: Mapping[str, Any] | None = None) -> bool:
    names = _names(address, target)
    if targets and not any(fnmatchcase(n, p) for p in targets for n in names):
        return False
    return not any(fnmatchcase(n, p) for p in excludes for n in names)


def _withhold(changes: list[Change], missing: tuple[str, ...]) -> tuple[list[Change], list[Skip]]:
    """Incomplete snapshot: no removals at all (deletes, and CM attributes set to None)."""
    why = "the snapshot did not read completely" + (f" ({', '.join(missing)})" if missing else "")
    kept, withheld = [], []
    for c in changes:
        if c.action is Action.DELETE:
            withheld.append(Skip("change", c.address, c.address, "incomplete_snapshot", why))
        elif c.action is Action.UPDATE and c.part.startswith("cm:") and None in c.after.values():
            withheld.append(Skip("change", c.address, c.address, "incomplete_snapshot",
                                 why + "; values to clear: " + ", ".join(
                                     sorted(a for a, v in c.after.items() if v is None))))
            rest = {a: v for a, v in c.after.items() if v is not None}
            if rest:
                before = {a: c.before[a] for a in rest}
                if before == rest:  # only values already there, taken over
                    action, before = Action.ADOPT, dict(rest)
                elif all(v is None for v in before.values()):
                    action, before = Action.CREATE, None
                else:
                    action = Action.UPDATE
                kept.append(Change(c.address, action, before, rest, c.reason, c.target))
        else:
            kept.append(c)
    return kept, withheld


def _waiting_skips(waiting: dict[str, list[str]]) -> list[Skip]:
    out = []
    for address, held in sorted(waiting.items()):
        name = address[len(addresses.TYPEDEF_PREFIX):]
        out.append(Skip("change", address, name, "definition_missing",
                        f"{len(held)} change(s) wait for this Atlan definition; run `qatlan plan "
                        "--create-definitions` (or create it in Atlan)"))
    return out


def settle_tag_definitions(ctx: Context) -> None:
    """One definition per tag name whatever order the assets were walked in: when Qualytics
    spells a tag that Atlan lacks in several ways (`PII`, `pii`), the definition planned is
    the first spelling in sort order, and every change waiting for another spelling's
    definition waits for that one instead. (A walk in another order, such as a partitioned
    plan's, would otherwise create the definition under whichever spelling it met first.)"""
    moved: dict[str, str] = {}
    for f, names in ctx.tag_spellings.items():
        want = min(names)
        new = tag_definition(want)
        ctx.tag_definitions[f] = new
        for name in names - {want}:
            old = addresses.typedef_tag(name)
            moved[old] = new.address
            if ctx.needed.pop(old, None) is not None:
                ctx.needed[new.address] = new
            if old in ctx.waiting:
                ctx.waiting[new.address].extend(ctx.waiting.pop(old))
    if not moved:
        return
    for change in ctx.changes:
        needs = change.target.get("needs")
        if needs and any(n in moved for n in needs):
            change.target["needs"] = [moved.get(n, n) for n in needs]


def _skip_order(skip: Skip) -> tuple:
    return (LEVELS.index(skip.level), str(type(skip.id)), skip.id)


def finish(ctx: Context, base: Mapping[str, Any], created_at: str) -> Plan:
    settle_tag_definitions(ctx)
    s = ctx.settings
    changes, conflicts, waiting = ctx.changes, ctx.conflicts, ctx.waiting
    if s.targets or s.excludes:
        changes = [c for c in changes if selected(c.address, s.targets, s.excludes, c.target)]
        conflicts = [c for c in conflicts if selected(c.address, s.targets, s.excludes)]
        waiting = {d: kept for d, held in waiting.items()
                   if (kept := [a for a in held if selected(a, s.targets, s.excludes)])}
    withheld: list[Skip] = []
    if not ctx.snapshot.complete:
        changes, withheld = _withhold(changes, ctx.snapshot.missing)
    used = {a for c in changes for a in c.target.get("needs", ())}
    definitions = [d for a, d in sorted(ctx.needed.items()) if a in used or a in waiting]
    if s.create_definitions:
        changes += [d for d in definitions if d.address in used]
    # by level, then id: the same list whatever order the assets were matched in
    skipped = sorted((k for k in ctx.matches.skipped if not k.inherited), key=_skip_order)
    skipped += _waiting_skips(waiting) + sorted(withheld, key=lambda k: k.id)
    return Plan(
        changes=tuple(sorted(changes, key=lambda c: (c.address, c.action.value))),
        unchanged=ctx.unchanged,
        conflicts=tuple(sorted(conflicts, key=lambda c: (c.address, c.rule))),
        skipped=tuple(skipped),
        definitions_needed=tuple(definitions),
        complete=ctx.snapshot.complete,
        settings=s.to_dict(),
        base=dict(base),
        created_at=created_at,
        waiting=sum(len(held) for held in waiting.values()),
    )
