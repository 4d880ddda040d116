"""From collected changes to a `Plan`: filters, safety rules, definitions, order."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from qatlan import addresses
from qatlan.model import Skip
from qatlan.plan import Action, Change, Plan
from qatlan.planner.context import Context


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


def finish(ctx: Context, base: Mapping[str, Any], created_at: str) -> Plan:
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
    skipped = [k for k in ctx.matches.skipped if not k.inherited]
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
