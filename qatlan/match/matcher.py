"""Which Atlan asset is which Qualytics asset. Pure: a snapshot and the config in, a result out.

- A datastore maps to an Atlan connection + database + schema: by a `[[mappings]]` rule
  (`qatlan.config.MappingConfig`; by datastore id first, then by name), or inferred when
  exactly one connection of the same connector type holds `<connectionQN>/<database>/<schema>`.
- A container maps to the Table/View/MaterialisedView named like it under that schema, a
  field to the Column named like it under the matched table. Renames in the rule win. Exact
  names first; a case-insensitive match only when it is unique.
- Never guess: everything else is a `Skip` with a reason (see `SKIP_REASONS`) and, where it
  helps, a hint (the nearest Atlan name, the candidates, what to add to the config).

docs/matching.md explains the rules for users.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qatlan._gc import gc_paused
from qatlan.config import MappingConfig
from qatlan.match.domains import in_scope
from qatlan.match.index import AtlanIndex, nearest
from qatlan.model import AConnection, QDatastore, Skip, Snapshot
from qatlan.normalize import connector_key

__all__ = ["LEVELS", "SKIP_REASONS", "DatastoreMatch", "MatchResult", "match", "match_datastores",
           "rules_by_datastore"]

#: every reason an asset is skipped, in the order reports list them
SKIP_REASONS: tuple[str, ...] = (
    "file_datastore",
    "not_visible",
    "unmapped_datastore",
    "ambiguous",
    "computed",
    "unmatched",
    "outside_domains",
)
LEVELS = ("datastore", "container", "field")


@dataclass(frozen=True, slots=True)
class DatastoreMatch:
    connection_qn: str
    database: str
    schema: str
    schema_guid: str | None
    #: False when a domain filter is set and the Schema asset is not in it (no schema-level sync)
    schema_in_scope: bool = True
    #: "rule" or "inferred"
    via: str = "inferred"

    @property
    def schema_qn(self) -> str:
        return f"{self.connection_qn}/{self.database}/{self.schema}"


@dataclass(frozen=True)
class MatchResult:
    datastores: Mapping[int, DatastoreMatch]
    containers: Mapping[int, str]  # container id → Atlan asset guid
    fields: Mapping[int, str]  # field id → Atlan column guid
    skipped: tuple[Skip, ...]
    totals: Mapping[str, int]
    domain_guids: frozenset[str] | None = None

    def counts(self, level: str) -> dict[str, int]:
        """{"total", "matched", <reason>: n, ...}: matched + every reason == total."""
        matched = {"datastore": self.datastores, "container": self.containers,
                   "field": self.fields}[level]
        reasons = Counter(s.reason for s in self.skipped if s.level == level)
        out = {"total": self.totals.get(level, 0), "matched": len(matched)}
        out.update({r: reasons[r] for r in SKIP_REASONS if reasons[r]})
        return out


# --------------------------------------------------------------------------- datastores


def rules_by_datastore(snapshot: Snapshot, rules: Sequence[MappingConfig]) -> dict[int, MappingConfig]:
    """Datastore id → its rule: a rule naming the id wins over one naming the datastore's name.

    A rule that names an id applies to that id only (ids survive renames); the first rule wins.
    """
    by_id: dict[int, MappingConfig] = {}
    by_name: dict[str, MappingConfig] = {}
    for r in rules:
        if r.datastore_id is not None:
            by_id.setdefault(r.datastore_id, r)
        elif r.datastore is not None:
            by_name.setdefault(r.datastore, r)
    out = {}
    for ds in snapshot.datastores.values():
        rule = by_id.get(ds.id) or by_name.get(ds.name)
        if rule is not None:
            out[ds.id] = rule
    return out


class _Matcher:
    def __init__(self, snapshot: Snapshot, rules: Sequence[MappingConfig], domain_guids,
                 children: bool = True):
        self.s = snapshot
        self.idx = AtlanIndex(snapshot, children)
        self.domain_guids = domain_guids
        self.rules = rules_by_datastore(snapshot, rules)
        self.datastores: dict[int, DatastoreMatch] = {}
        self.containers: dict[int, str] = {}
        self.fields: dict[int, str] = {}
        self.skips: dict[str, dict[int, Skip]] = {lvl: {} for lvl in LEVELS}
        self.inexact: set[tuple[str, int]] = set()  # matched case-insensitively

    def skip(self, level: str, id_: int, name: str, reason: str, hint: str | None = None,
             inherited: bool = False) -> None:
        self.skips[level][id_] = Skip(level, id_, name, reason, hint, inherited)

    # ---- datastores
    def match_datastores(self) -> None:
        for ds in self.s.datastores.values():
            result = self._datastore(ds)
            if isinstance(result, DatastoreMatch):
                self.datastores[ds.id] = result
            else:
                self.skip("datastore", ds.id, ds.name, *result)
        self._settle_shared_schemas()

    def _datastore(self, ds: QDatastore) -> DatastoreMatch | tuple[str, str | None]:
        if ds.store_type == "dfs":
            return ("file_datastore", "file datastores are not synced with Atlan")
        rule = self.rules.get(ds.id)
        if rule is not None:
            return self._by_rule(ds, rule)
        return self._infer(ds)

    def _by_rule(self, ds: QDatastore, rule: MappingConfig):
        conns = self.idx.connections(rule.connection)
        if not conns:
            return ("not_visible", f"connection {rule.connection!r} of the mapping rule is not "
                    "visible to the Atlan token (check its persona) or does not exist")
        if len(conns) > 1:
            return ("ambiguous", f"several connections are named {rule.connection!r}; "
                    "use the qualifiedName: " + ", ".join(sorted(c.qualified_name for c in conns)))
        database, schema = rule.database or ds.database, rule.schema_name or ds.schema
        if not database or not schema:
            return ("unmapped_datastore", "the mapping rule needs `database` and `schema`")
        return self._with_schema(conns[0], database, schema, "rule")

    def _with_schema(self, conn: AConnection, database: str, schema: str, via: str):
        qn, candidates = self.idx.resolve_schema(conn.qualified_name, database, schema)
        if qn is None and len(candidates) > 1:
            return ("ambiguous", "schemas differing only in case: " + ", ".join(candidates))
        if qn is None:
            near = nearest(f"{database}/{schema}", self.idx.schemas_of(conn.qualified_name))
            hint = f"no schema {database}/{schema} in {conn.qualified_name}"
            return ("unmapped_datastore", hint + (f"; nearest: {near}" if near else ""))
        database, _, schema = qn[len(conn.qualified_name) + 1:].partition("/")
        asset = self.idx.schemas[qn]
        return DatastoreMatch(conn.qualified_name, database, schema, asset.guid,
                              in_scope(asset, self.domain_guids), via)

    def _infer(self, ds: QDatastore):
        if not ds.database or not ds.schema:
            return ("unmapped_datastore", "the datastore has no database/schema; add a mapping rule")
        key = connector_key(ds.connector)
        fits, unsure = [], []
        for conn in self.idx.conns_by_type.get(key, ()):
            qn, candidates = self.idx.resolve_schema(conn.qualified_name, ds.database, ds.schema)
            if qn is not None:
                fits.append(conn)
            elif len(candidates) > 1:
                unsure.append(conn)
        if len(fits) == 1 and not unsure:
            return self._with_schema(fits[0], ds.database, ds.schema, "inferred")
        if fits or unsure:
            names = ", ".join(sorted(c.qualified_name for c in fits + unsure))
            return ("ambiguous", f"several connections fit ({names}); add a mapping rule")
        return ("unmapped_datastore", f"no {key or 'matching'} connection has schema "
                f"{ds.database}/{ds.schema}; add a mapping rule")

    def _settle_shared_schemas(self) -> None:
        """Two datastores on one schema: a rule beats inference; otherwise neither is used."""
        by_schema: dict[str, list[int]] = defaultdict(list)
        for ds_id, m in self.datastores.items():
            by_schema[m.schema_qn].append(ds_id)
        for schema_qn, ids in by_schema.items():
            if len(ids) < 2:
                continue
            ruled = [i for i in ids if self.datastores[i].via == "rule"]
            keep = ruled[0] if len(ruled) == 1 else None
            names = ", ".join(sorted(self.s.datastores[i].name for i in ids))
            for i in ids:
                if i != keep:
                    del self.datastores[i]
                    self.skip("datastore", i, self.s.datastores[i].name, "ambiguous",
                              f"datastores {names} all map to {schema_qn}; add a mapping rule")

    # ---- containers and fields
    def match_containers(self) -> None:
        for c in self.s.containers.values():
            parent = self.skips["datastore"].get(c.datastore_id)
            dsm = self.datastores.get(c.datastore_id)
            if dsm is None:
                reason = parent.reason if parent else "unmapped_datastore"
                self.skip("container", c.id, c.name, reason,
                          f"datastore {c.datastore_id} is skipped ({reason})", inherited=True)
            elif c.container_type.startswith("computed"):
                self.skip("container", c.id, c.name, "computed", "computed containers exist only in Qualytics")
            elif c.container_type == "file":
                self.skip("container", c.id, c.name, "file_datastore")
            else:
                rule = self.rules.get(c.datastore_id)
                name = rule.table(c.name) if rule else c.name
                self._child("container", c.id, c.name, name, dsm.schema_qn, self.containers)
        self._settle_shared_assets("container", self.containers,
                                   lambda i: self.s.containers[i].name)

    def _child(self, level: str, id_: int, name: str, atlan_name: str, parent_qn: str,
               out: dict[int, str]) -> None:
        names = self.idx.names(level, parent_qn)
        found, exact = names.lookup(atlan_name)
        if len(found) > 1:
            hint = "candidates: " + ", ".join(sorted(f"{a.type_name} {a.name}" for a in found))
            self.skip(level, id_, name, "ambiguous", hint)
        elif not found:
            near = names.pool().nearest(atlan_name)
            self.skip(level, id_, name, "unmatched", f"nearest: {near}" if near else None)
        elif level == "container" and not in_scope(found[0], self.domain_guids):
            self.skip(level, id_, name, "outside_domains",
                      f"{found[0].qualified_name} is not in the configured domains")
        else:
            out[id_] = found[0].guid
            if not exact:
                self.inexact.add((level, id_))

    def _settle_shared_assets(self, level: str, matched: dict[int, str], name_of) -> None:
        """Two containers (fields) on one Atlan asset: an exact name wins, else neither."""
        by_guid: dict[str, list[int]] = defaultdict(list)
        for id_, guid in matched.items():
            by_guid[guid].append(id_)
        for guid, ids in by_guid.items():
            if len(ids) < 2:
                continue
            exact = [i for i in ids if (level, i) not in self.inexact]
            keep = exact[0] if len(exact) == 1 else None
            names = ", ".join(sorted(name_of(i) for i in ids))
            for i in ids:
                if i != keep:
                    del matched[i]
                    self.skip(level, i, name_of(i), "ambiguous",
                              f"{names} all match {self.s.assets[guid].qualified_name}")

    def match_fields(self) -> None:
        for f in self.s.fields.values():
            table_guid = self.containers.get(f.container_id)
            if table_guid is None:
                parent = self.skips["container"].get(f.container_id)
                reason = parent.reason if parent else "unmatched"
                self.skip("field", f.id, f.name, reason,
                          f"container {f.container_id} is skipped ({reason})", inherited=True)
                continue
            c = self.s.containers[f.container_id]
            rule = self.rules.get(c.datastore_id)
            name = rule.column(c.name, f.name) if rule else f.name
            self._child("field", f.id, f.name, name, self.s.assets[table_guid].qualified_name,
                        self.fields)
        self._settle_shared_assets("field", self.fields, lambda i: self.s.fields[i].name)

    def result(self) -> MatchResult:
        skipped = tuple(s for lvl in LEVELS for s in self.skips[lvl].values())
        totals = {"datastore": len(self.s.datastores), "container": len(self.s.containers),
                  "field": len(self.s.fields)}
        return MatchResult(self.datastores, self.containers, self.fields, skipped, totals,
                           self.domain_guids)


def match(snapshot: Snapshot, rules: Sequence[MappingConfig] = (),
          domain_guids: frozenset[str] | None = None) -> MatchResult:
    """Match every Qualytics datastore, container and field of `snapshot` to Atlan, or skip it.

    `domain_guids` (from `resolve_domains`) limits matching to Atlan assets in those domains;
    None means no domain filter. Only ACTIVE Atlan assets match.
    """
    with gc_paused():
        m = _Matcher(snapshot, rules, domain_guids)
        m.match_datastores()
        m.match_containers()
        m.match_fields()
        return m.result()


def match_datastores(snapshot: Snapshot, rules: Sequence[MappingConfig] = ()) -> dict[int, DatastoreMatch]:
    """The datastores of `snapshot` that match an Atlan schema (no containers, fields or
    domains): what refresh compares from one snapshot to the next, so that scope never
    shrinks silently."""
    m = _Matcher(snapshot, rules, None, children=False)
    m.match_datastores()
    return dict(m.datastores)
