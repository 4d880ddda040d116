"""Planning one datastore at a time: the same plan as `plan()`, in memory bounded by the
largest datastore instead of the whole snapshot.

A snapshot splits along matched datastores. What every datastore needs is small and is
loaded once, the *shared* part: the Qualytics datastores and tag registry, the Atlan
connections, domains and definitions, and the Atlan assets that are not tables, views or
columns (schemas, databases). Each matched datastore's *part* holds its containers and
fields and the Atlan tables, views and columns under its schema, with their Links. Matching
never crosses a schema (a container matches a table under its datastore's schema, a field a
column of its container's table), and qatlan retires only what sits under a matched schema,
so a part plans exactly what the whole-snapshot walk plans for it.

    shared, parts = split(snapshot, rules, settings)      # or loaded from the state
    plan_partitioned(shared, parts, settings, rules=..., owned=..., human_tags=...)

`parts` may be a generator: each part is planned and dropped before the next is read. The
rest is pure; `qatlan.state.partitions` loads the same parts from the state with indexed
queries. What a part's walk cannot see is passed in: the folded names of tags people put on
Atlan assets anywhere (`human_tag_names`, for overwrite_tags) and the domains that hold an
active asset (`used_domains`, for the check that a configured domain is not empty).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qatlan import addresses
from qatlan._gc import gc_paused
from qatlan.config import MappingConfig
from qatlan.match import TABLE_TYPES, MatchResult, match, resolve_domains
from qatlan.model import AAsset, ALink, QContainer, QField, Snapshot
from qatlan.plan import Plan
from qatlan.planner.context import Context
from qatlan.planner.finish import ChangeSink, Collector, finish
from qatlan.planner.retire import retire
from qatlan.planner.settings import PlanSettings
from qatlan.planner.walk import _containers, _datastores, _fields

__all__ = ["PART_TYPES", "Part", "Scope", "outside_assets", "part_snapshot", "plan_partitioned",
           "schema_holder", "scope", "split", "split_owned"]

#: the Atlan asset types that live in a part (everything else is shared)
PART_TYPES = frozenset(TABLE_TYPES) | {"Column"}


@dataclass(frozen=True)
class Part:
    """One matched datastore's share of a snapshot."""

    datastore_id: int
    containers: Mapping[int, QContainer]
    fields: Mapping[int, QField]
    #: the Atlan tables, views and columns whose qualifiedName is under the schema's
    assets: Mapping[str, AAsset]
    links: Mapping[str, ALink]


@dataclass(frozen=True)
class Scope:
    """What the shared part decides before any part is read: the domain filter and the
    matched datastores, each with the qualifiedName prefix of its part's Atlan assets."""

    domain_guids: frozenset[str] | None
    matches: MatchResult
    #: datastore id → "<schema qualifiedName>/"
    prefixes: Mapping[int, str]


def scope(shared: Snapshot, settings: PlanSettings, rules: Sequence[MappingConfig] = (),
          used_domains: Iterable[str] | None = None) -> Scope:
    """Resolve the domains and match the datastores of the shared part.

    `used_domains`: the domain GUIDs of the snapshot's active assets (all of them, not only
    the shared ones); None computes them from `shared.assets`. Raises ConfigError like
    `resolve_domains`."""
    domain_guids = None
    if settings.domains:
        domain_guids = resolve_domains(shared.domains, settings.domains, shared.assets,
                                       used=used_domains)
    matches = match(shared, rules, domain_guids)
    prefixes = {ds_id: m.schema_qn + "/" for ds_id, m in matches.datastores.items()}
    return Scope(domain_guids, matches, prefixes)


def split(snapshot: Snapshot, settings: PlanSettings, rules: Sequence[MappingConfig] = (),
          owned: Mapping[str, Any] | None = None) -> tuple[Snapshot, list[Part]]:
    """(shared part, parts) of an in-memory snapshot: what `qatlan.state.partitions` loads
    from the state, for tests and callers that hold a snapshot already.

    The shared part also holds the tables and columns under no matched schema that qatlan
    owns something on (`owned`): a renamed custom metadata set is retired there too."""
    shared = dataclasses.replace(
        snapshot, containers={}, fields={}, links={},
        assets={g: a for g, a in snapshot.assets.items() if a.type_name not in PART_TYPES})
    used = {g for a in snapshot.assets.values() if a.status == "ACTIVE" for g in a.domain_guids}
    prefixes = scope(shared, settings, rules, used).prefixes
    wanted = outside_assets(owned or {}, prefixes)
    if wanted:
        extra = {g: a for g, a in snapshot.assets.items()
                 if a.type_name in PART_TYPES and a.qualified_name in wanted}
        shared = dataclasses.replace(shared, assets={**shared.assets, **extra})
    parts = []
    for ds_id, prefix in prefixes.items():
        containers = {i: c for i, c in snapshot.containers.items() if c.datastore_id == ds_id}
        assets = {g: a for g, a in snapshot.assets.items()
                  if a.type_name in PART_TYPES and a.qualified_name.startswith(prefix)}
        parts.append(Part(
            ds_id, containers,
            {i: f for i, f in snapshot.fields.items() if f.container_id in containers},
            assets, {k: l for k, l in snapshot.links.items() if l.asset_guid in assets}))
    return shared, parts


def outside_assets(owned: Mapping[str, Any], prefixes: Mapping[int, str]) -> set[str]:
    """qualifiedNames of the Atlan assets qatlan owns something on that are under no part's
    schema: the shared part holds them (whatever their type)."""
    by_schema = {prefix: ds_id for ds_id, prefix in prefixes.items()}
    out = set()
    for key in owned:
        asset = addresses.parse(key)[0]
        if asset.startswith("atlan:") and not addresses.is_typedef(key):
            qn = asset[len("atlan:"):]
            if not schema_holder(qn, by_schema):
                out.add(qn)
    return out


def split_owned(owned: Mapping[str, Any], shared: Snapshot, prefixes: Mapping[int, str]
                ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """(what no part holds, ownership by datastore id): an Atlan key goes to the part whose
    schema its asset is under, a Qualytics key of a container or field to its datastore's
    part (by name: the longest datastore name that prefixes it, all datastores of that name)."""
    by_schema = {prefix: ds_id for ds_id, prefix in prefixes.items()}
    by_name: dict[str, list[int]] = {}
    for ds_id in prefixes:
        ds = shared.datastores.get(ds_id)
        by_name.setdefault(f"qualytics:{ds.name if ds else ds_id}/", []).append(ds_id)
    names = sorted(by_name, key=len, reverse=True)
    rest: dict[str, Any] = {}
    parts: dict[int, dict[str, Any]] = {ds_id: {} for ds_id in prefixes}
    for key, value in owned.items():
        asset = addresses.parse(key)[0]
        holders: Sequence[int] = ()
        if asset.startswith("atlan:") and not addresses.is_typedef(key):
            holders = schema_holder(asset[len("atlan:"):], by_schema)
        elif asset.startswith("qualytics:"):
            holders = next((by_name[n] for n in names if asset.startswith(n)), ())
        for ds_id in holders:
            parts[ds_id][key] = value
        if not holders:
            rest[key] = value
    return rest, parts


def schema_holder(qn: str, by_schema: Mapping[str, int]) -> tuple[int, ...]:
    """The datastore whose schema `qn` is under (a table: the schema is its parent; a column:
    its grandparent), or ()."""
    head = qn
    while "/" in head:
        head = head.rpartition("/")[0]
        ds_id = by_schema.get(head + "/")
        if ds_id is not None:
            return (ds_id,)
    return ()


def plan_partitioned(
    shared: Snapshot,
    parts: Iterable[Part],
    settings: PlanSettings = PlanSettings(),
    *,
    rules: Sequence[MappingConfig] = (),
    owned: Mapping[str, Any] | None = None,
    human_tags: set[str] | None = None,
    used_domains: Iterable[str] | None = None,
    scope_: Scope | None = None,
    only: frozenset[int] | None = None,
    focus: frozenset[int] | None = None,
    base: Mapping[str, Any] | None = None,
    created_at: str = "",
    sink: ChangeSink | None = None,
) -> Plan:
    """The plan `plan()` makes of the snapshot these parts come from (see the module doc).

    `human_tags` (`qatlan.planner.context.human_tag_names` over every Atlan asset) is needed
    with overwrite_tags; `scope_` may be passed when the caller computed it to choose parts.
    With `only` (datastore ids), the plan covers those datastores and their parts alone
    (`parts` holds just theirs): what `qatlan watch` plans for the tables it was told about.
    With `focus` (container ids) as well, only those containers and their fields are walked
    (matching and retiring still see the whole part, so every claim counts): the plan's
    changes on those containers, their tables and columns are the same as without `focus`;
    elsewhere changes are missing (and a new tag definition's spelling is chosen among the
    focus's tables alone), so a caller keeps only the focus's changes.

    Each part's changes are finished and handed to `sink` as soon as the part is planned
    (default: kept in memory); a sink that spills them keeps memory to the largest part."""
    with gc_paused():
        sc = scope_ or scope(shared, settings, rules, used_domains)
        prefixes = sc.prefixes if only is None else {
            i: p for i, p in sc.prefixes.items() if i in only}
        rest, owned_by_part = split_owned(owned or {}, shared, sc.prefixes)
        if settings.overwrite_tags and human_tags is None:
            raise ValueError("plan_partitioned needs human_tags with overwrite_tags")
        matches = sc.matches if only is None else dataclasses.replace(
            sc.matches, datastores={i: m for i, m in sc.matches.datastores.items() if i in only})
        top = Context(shared, settings, matches, rest, rules, human_tags)
        collector = Collector(settings, shared, sink)
        _datastores(top)
        if only is None:
            retire(top)
        skipped = [k for k in sc.matches.skipped if k.level == "datastore"
                   and (only is None or k.id in only)]
        for part in _matched(parts, prefixes):
            ctx = _plan_part(shared, part, settings, sc, owned_by_part.pop(part.datastore_id, {}),
                             rules, human_tags, focus)
            collector.add(ctx.changes)
            _merge(top, ctx)
            skipped += [k for k in ctx.matches.skipped if k.level != "datastore"]
            del ctx
        top.matches = dataclasses.replace(sc.matches, skipped=tuple(skipped))
        return finish(top, base or {}, created_at, collector)


def _matched(parts: Iterable[Part], prefixes: Mapping[int, str]) -> Iterator[Part]:
    seen = set()
    for part in parts:
        if part.datastore_id not in prefixes or part.datastore_id in seen:
            raise ValueError(f"part of datastore {part.datastore_id} is not one of the "
                             "matched datastores, or comes twice")
        seen.add(part.datastore_id)
        yield part
    if seen != set(prefixes):
        raise ValueError("parts missing for datastores " + ", ".join(
            str(i) for i in sorted(set(prefixes) - seen)))


def part_snapshot(shared: Snapshot, part: Part) -> Snapshot:
    """The snapshot a part is planned from: the shared records and the part's."""
    return dataclasses.replace(shared, containers=part.containers, fields=part.fields,
                               assets={**shared.assets, **part.assets}, links=part.links)


def _plan_part(shared: Snapshot, part: Part, settings: PlanSettings, sc: Scope,
               owned: Mapping[str, Any], rules: Sequence[MappingConfig],
               human_tags: set[str] | None, focus: frozenset[int] | None = None) -> Context:
    snapshot = part_snapshot(shared, part)
    matches = match(snapshot, rules, sc.domain_guids)
    ctx = Context(snapshot, settings, matches if focus is None else _focused(matches, focus, snapshot),
                  owned, rules, human_tags)
    _containers(ctx)
    _fields(ctx)
    ctx.matches = matches  # retiring asks whether any container still claims an asset
    retire(ctx)
    return ctx


def _focused(m: MatchResult, focus: frozenset[int], snapshot: Snapshot) -> MatchResult:
    """The matches of the `focus` containers and of their fields."""
    return dataclasses.replace(
        m, containers={c: g for c, g in m.containers.items() if c in focus},
        fields={f: g for f, g in m.fields.items() if snapshot.fields[f].container_id in focus})


def _merge(top: Context, ctx: Context) -> None:
    """What a part's walk adds to the plan besides its changes (the collector has those)."""
    top.conflicts += ctx.conflicts
    top.unchanged += ctx.unchanged
    for address, definition in ctx.needed.items():
        top.needed.setdefault(address, definition)
    for address, held in ctx.waiting.items():
        top.waiting[address].extend(held)
    for f, names in ctx.tag_spellings.items():
        top.tag_spellings[f] |= names
