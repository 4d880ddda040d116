"""From collected changes to a `Plan`: filters, safety rules, definitions, order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from qatlan import addresses
from qatlan.model import Skip, Snapshot
from qatlan.plan import Action, Change, Plan
from qatlan.match import LEVELS
from qatlan.planner.context import Context, tag_definition
from qatlan.planner.settings import PlanSettings


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


def settle_tag_definitions(ctx: Context) -> dict[str, str]:
    """One definition per tag name whatever order the assets were walked in: when Qualytics
    spells a tag that Atlan lacks in several ways (`PII`, `pii`), the definition planned is
    the first spelling in sort order, and every change waiting for another spelling's
    definition waits for that one instead. (A walk in another order, such as a partitioned
    plan's, would otherwise create the definition under whichever spelling it met first.)
    Returns {definition address given up: the one kept}: the changes that need one of the
    first are pointed at the second by the sink (`ChangeSink.result`)."""
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
    return moved


def move_needs(change: Change, moved: Mapping[str, str]) -> None:
    """Point `change` at the definitions `settle_tag_definitions` kept (in place)."""
    needs = change.target.get("needs")
    if needs and any(n in moved for n in needs):
        change.target["needs"] = [moved.get(n, n) for n in needs]  # type: ignore[index]


def change_order(c: Change) -> tuple[str, str]:
    """A plan's changes are sorted by this."""
    return c.address, c.action.value


class ChangeSink:
    """Where the finished changes of a plan go, and the sorted sequence they come back as.
    This one keeps them in memory; `qatlan.state` has one that spills each batch to a file,
    so planning a million changes does not hold them all (`plan_partitioned(sink=...)`)."""

    def __init__(self) -> None:
        self._changes: list[Change] = []

    def add(self, changes: list[Change]) -> None:
        """A batch of finished changes (filtered; their `needs` may still move)."""
        self._changes += changes

    def result(self, moved: Mapping[str, str]) -> Sequence[Change]:
        """Every change added, sorted (`change_order`), their needs moved."""
        if moved:
            for c in self._changes:
                move_needs(c, moved)
        return tuple(sorted(self._changes, key=change_order))


class Collector:
    """Finishes changes a batch at a time (a part's, then the rest) and hands them to the
    sink: --target/--exclude, and no removals from an incomplete snapshot. It notes the
    definitions they need and the removals it held back, which the plan lists."""

    def __init__(self, settings: PlanSettings, snapshot: Snapshot, sink: ChangeSink | None = None):
        self.settings, self.snapshot = settings, snapshot
        self.sink = sink if sink is not None else ChangeSink()
        self.withheld: list[Skip] = []
        self.used: set[str] = set()

    def add(self, changes: list[Change]) -> None:
        s = self.settings
        if s.targets or s.excludes:
            changes = [c for c in changes if selected(c.address, s.targets, s.excludes, c.target)]
        if not self.snapshot.complete:
            changes, withheld = _withhold(changes, self.snapshot.missing)
            self.withheld += withheld
        for c in changes:
            needs = c.target.get("needs")
            if needs:
                self.used.update(needs)
        self.sink.add(changes)


def _skip_order(skip: Skip) -> tuple:
    return (LEVELS.index(skip.level), str(type(skip.id)), skip.id)


def finish(ctx: Context, base: Mapping[str, Any], created_at: str,
           collector: Collector | None = None) -> Plan:
    """The plan: `ctx.changes` and whatever `collector` took in already, finished, with the
    definitions they need, the conflicts, skips and counts of `ctx`."""
    moved = settle_tag_definitions(ctx)
    s = ctx.settings
    collector = collector or Collector(s, ctx.snapshot)
    collector.add(ctx.changes)
    conflicts, waiting = ctx.conflicts, ctx.waiting
    if s.targets or s.excludes:
        conflicts = [c for c in conflicts if selected(c.address, s.targets, s.excludes)]
        waiting = {d: kept for d, held in waiting.items()
                   if (kept := [a for a in held if selected(a, s.targets, s.excludes)])}
    used = {moved.get(a, a) for a in collector.used}
    definitions = [d for a, d in sorted(ctx.needed.items()) if a in used or a in waiting]
    if s.create_definitions:
        collector.sink.add([d for d in definitions if d.address in used])
    # by level, then id: the same list whatever order the assets were matched in
    skipped = sorted((k for k in ctx.matches.skipped if not k.inherited), key=_skip_order)
    skipped += _waiting_skips(waiting) + sorted(collector.withheld, key=lambda k: k.id)
    return Plan(
        changes=collector.sink.result(moved),
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
