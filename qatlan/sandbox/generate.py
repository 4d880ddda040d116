"""Deterministic sandbox worlds: `generate_world("tables=1000,seed=7")`.

The same spec always gives the same document, byte for byte (`json.dumps(world,
sort_keys=True)`): all randomness comes from `random.Random(seed)` and every time is an offset
from 2026-01-01T00:00:00Z. The spec keys, the mess the world contains and the `meta.summary`
counts are documented in docs/world-format.md ("Generated worlds").
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from qatlan.sandbox import _gen_atlan as atl
from qatlan.sandbox._gen_layout import Conn, Layout, plan_layout
from qatlan.sandbox._gen_qualytics import aggregate_score, global_tags, integrations, tokens
from qatlan.sandbox._gen_tables import Gen, emit_extra_tables, emit_schema_tables
from qatlan.sandbox._gen_util import iso, scaled
from qatlan.sandbox._util import gc_paused
from qatlan.sandbox.errors import WorldError

__all__ = ["GenSpec", "generate_world", "parse_spec"]

# key -> (kind, minimum, maximum); kind is "int", "float" or a tuple of choices.
# What each key means is documented in docs/world-format.md ("Spec keys").
_KEYS: dict[str, tuple[Any, float, float]] = {
    "tables": ("int", 1, 200_000),  # Qualytics containers with container_type table (tables and views)
    "columns": ("int", 1, 500),  # mean columns per table
    "seed": ("int", 0, 2**63 - 1),
    "datastores": ("int", 4, 2_000),  # jdbc datastores; default max(4, round(sqrt(tables) / 5))
    "cm": (("absent", "present"), 0, 0),  # whether the `Qualytics` custom-metadata set exists
    "mess": ("float", 0, 10),  # multiplier on every mess rate (0 keeps exactly one of each)
    "checks": ("float", 0, 50),  # mean quality checks per scanned container
    "anomalies": ("float", 0, 20),  # mean anomalies per container with an active check
}


def _default_datastores(tables: int) -> int:
    return max(4, round(math.sqrt(tables) / 5))


@dataclass(frozen=True)
class GenSpec:
    """What to generate. `datastores=None` means the default for the table count."""

    tables: int = 100
    columns: int = 20
    seed: int = 0
    datastores: int | None = None
    cm: str = "absent"
    mess: float = 1.0
    checks: float = 3.0
    anomalies: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name != "datastores":
                _check_value(f.name, value)

    @property
    def datastore_count(self) -> int:
        return self.datastores if self.datastores is not None else _default_datastores(self.tables)

    def canonical(self) -> str:
        """The spec with every key spelled out (what `meta.spec` records)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["datastores"] = self.datastore_count
        return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _valid_keys() -> str:
    return ", ".join(sorted(_KEYS))


def _check_value(key: str, value: Any) -> None:
    kind, lo, hi = _KEYS[key]
    if isinstance(kind, tuple):
        if value not in kind:
            raise WorldError(f"generator spec: {key} must be one of {', '.join(kind)}, got {value!r}")
        return
    numeric = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
    if isinstance(value, bool) or not numeric or not lo <= value <= hi:
        what = "an integer" if kind == "int" else "a number"
        raise WorldError(f"generator spec: {key} must be {what} from {lo:g} to {hi:g}, got {value!r}")


def _convert(key: str, text: str) -> Any:
    kind = _KEYS[key][0]
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError:
        _check_value(key, text)  # raises with the key's rule
    return text


def parse_spec(spec: str) -> GenSpec:
    """Parse `key=value,key=value`; unknown keys and bad values raise WorldError."""
    values: dict[str, Any] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, text = (s.strip() for s in part.partition("="))
        if not sep or not key:
            raise WorldError(f"generator spec: {part!r} is not key=value (valid keys: {_valid_keys()})")
        if key not in _KEYS:
            raise WorldError(f"generator spec: unknown key {key!r} (valid keys: {_valid_keys()})")
        if key in values:
            raise WorldError(f"generator spec: {key} is given twice")
        values[key] = _convert(key, text)
    return GenSpec(**values)


@functools.cache
def _qatlan_version() -> str:
    """The installed qatlan's version, from package metadata (the sandbox imports nothing from qatlan)."""
    try:
        return version("qatlan")
    except PackageNotFoundError:
        return "unknown"


def generate_world(spec: GenSpec | str) -> dict[str, Any]:
    """A valid world document for `spec` (see docs/world-format.md)."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    with gc_paused():
        return _generate(spec)


def _generate(spec: GenSpec) -> dict[str, Any]:
    rng = random.Random(spec.seed)
    layout = plan_layout(rng, spec.tables, spec.datastore_count, spec.mess)
    g = Gen(rng, spec.columns, spec.checks, spec.anomalies, spec.mess)
    typedefs = _typedefs(g, spec)
    atl.domains(g.a)
    _datastores(g, layout)
    for conn in layout.conns:
        _emit_connection(g, conn, layout, spec)
    _emit_files(g, layout, spec)
    for table in g.link_assets:
        atl.link(g.a, table)
    _datastore_scores(g)
    world = {
        "world_version": 1,
        "meta": {"spec": spec.canonical(), "seed": spec.seed, "generator": f"qatlan {_qatlan_version()}"},
        "atlan": {"personas": atl.personas(layout.conns), "typedefs": typedefs, "entities": g.a.entities},
        "qualytics": {"tokens": tokens(), "integrations": integrations(), "global_tags": global_tags(),
                      "datastores": g.q.datastores, "containers": g.q.containers, "fields": g.q.fields,
                      "checks": g.q.checks, "anomalies": g.q.anomalies},
    }
    world["meta"]["mapping"] = _mapping(layout)
    world["meta"]["summary"] = _summary(g, world)
    return world


def _typedefs(g: Gen, spec: GenSpec) -> dict[str, Any]:
    tags = atl.classification_defs(g.a)
    g.human_cm = atl.business_metadata_def(g.rng, atl.HUMAN_CM, atl.HUMAN_CM_ATTRS)
    sets = [g.human_cm]
    if spec.cm == "present":
        sets.append(atl.business_metadata_def(g.rng, atl.QUALYTICS_CM, atl.QUALYTICS_CM_ATTRS))
    return {"classificationDefs": tags, "businessMetadataDefs": sets}


def _datastores(g: Gen, layout: Layout) -> None:
    conn_ids = {conn.name: i for i, conn in enumerate(layout.conns, start=1)}
    for store in layout.datastores:
        record = g.q.jdbc_datastore(store, conn_ids[store.conn.name])
        if store.id == 1 or g.rng.random() < 0.2:
            record["tags"].append("Critical" if store.id == 1 else g.rng.choice(("Critical", "Finance")))
    g.q.dfs_datastore(len(layout.datastores) + 1, len(layout.conns) + 1)


def _emit_connection(g: Gen, conn: Conn, layout: Layout, spec: GenSpec) -> None:
    atl.connection(g.a, conn)
    for db in conn.databases:
        atl.database(g.a, conn, db)
    if conn.extra:
        base = atl.schema(g.a, conn, conn.databases[0], "public", "Sales US")
        emit_extra_tables(g, conn, base, scaled(min(0.02 * spec.mess, 0.1), spec.tables, 2), "Sales US")
        return
    for store in (s for s in layout.datastores if s.conn is conn):
        domain = "Finance" if conn.hidden else g.rng.choice(atl.ASSET_DOMAINS)
        base = atl.schema(g.a, conn, store.database, store.schema, domain)
        emit_schema_tables(g, store, base, domain)


_FILE_FIELDS = (("id", "Integral"), ("partner", "String"), ("amount", "Fractional"), ("sent_at", "Timestamp"))


def _emit_files(g: Gen, layout: Layout, spec: GenSpec) -> None:
    """File containers in the dfs datastore, which was never scanned."""
    ds_id = len(layout.datastores) + 1
    nouns = ("orders", "returns", "stock", "prices", "leads", "invoices", "claims", "shipments")
    for i in range(scaled(min(0.02 * spec.mess, 0.1), spec.tables, 2)):
        noun = nouns[i % len(nouns)] + ("" if i < len(nouns) else f"_{i // len(nouns) + 1}")
        container = g.q.container(ds_id, f"{noun}_*.csv", "file", scanned=False)
        container.update({"relative_path": f"/exports/{noun}/", "file_name": f"{noun}_0001.csv",
                          "extension": "csv", "last_modified": container["last_profiled"]})
        for name, ftype in _FILE_FIELDS:
            g.q.field(container, name, ftype)
        g.count("file")


def _datastore_scores(g: Gen) -> None:
    for record in g.q.datastores:
        scores = g.q.scores[record["id"]]
        record["quality_score"] = aggregate_score(scores, iso(31 * 86_400))


def _mapping(layout: Layout) -> list[dict[str, Any]]:
    """Which Atlan connection, database and schema each jdbc datastore is meant to map to."""
    return [{"datastore_id": s.id, "datastore": s.name, "connection": s.conn.name,
             "connection_qualified_name": s.conn.qn, "connector": s.conn.connector, "database": s.database,
             "schema": s.schema, "visible_to_sync": not s.conn.hidden} for s in layout.datastores]


_TABLE_TYPES = ("Table", "View", "MaterialisedView")
MESS_KEYS = (
    "tables_matched", "tables_exact", "tables_case_only", "tables_ambiguous", "tables_only_qualytics",
    "tables_only_atlan", "tables_extra_connection", "tables_hidden_connection", "views", "materialised_views",
    "archived_containers", "computed", "computed_name_collisions", "file", "columns_case_only",
    "columns_only_qualytics", "columns_only_atlan", "columns_ambiguous", "tag_conflicts", "propagated_tags",
    "external_tag_attachments", "human_announcements", "human_custom_metadata", "links", "outside_domains",
    "never_scanned_containers", "never_scanned_datastores", "ambiguous_connection_pairs",
    "hidden_connections", "extra_connections",
)


def _summary(g: Gen, world: dict[str, Any]) -> dict[str, Any]:
    q, a = world["qualytics"], world["atlan"]
    types = Counter(e["typeName"] for e in a["entities"])
    mess = {k: g.mess.get(k, 0) for k in MESS_KEYS}
    mess["links"] = types["Link"]
    mess["outside_domains"] = sum(1 for e in a["entities"] if e["typeName"] in _TABLE_TYPES
                                  and e["status"] == "ACTIVE" and not e["attributes"].get("domainGUIDs"))
    mess["never_scanned_containers"] = sum(1 for c in q["containers"] if c["last_scanned"] is None)
    mess["never_scanned_datastores"] = sum(1 for d in q["datastores"] if d["quality_score"] is None)
    mess.update(ambiguous_connection_pairs=1, hidden_connections=1, extra_connections=1)
    containers = Counter(c["container_type"] for c in q["containers"])
    checks = Counter("archived" if c["deleted_at"] else c["status"].lower() for c in q["checks"])
    anomalies = Counter(x["status"].lower() if x["status"] in ("Active", "Acknowledged") else "archived"
                        for x in q["anomalies"])
    return {
        "qualytics": {
            "datastores": len(q["datastores"]), "table_containers": containers["table"],
            "views": sum(1 for c in q["containers"] if c.get("table_type") == "view"),
            "computed_tables": containers["computed_table"], "file_containers": containers["file"],
            "containers": len(q["containers"]), "fields": len(q["fields"]),
            "checks": len(q["checks"]), **{f"checks_{k}": checks[k] for k in ("active", "draft", "archived")},
            "anomalies": len(q["anomalies"]),
            **{f"anomalies_{k}": anomalies[k] for k in ("active", "acknowledged", "archived")},
            "global_tags": len(q["global_tags"]),
            "external_tags": sum(1 for t in q["global_tags"] if t["type"] == "external"),
        },
        "atlan": {**dict(sorted(types.items())), "entities": len(a["entities"]), "personas": len(a["personas"]),
                  "classification_defs": len(a["typedefs"]["classificationDefs"]),
                  "business_metadata_defs": len(a["typedefs"]["businessMetadataDefs"])},
        "mess": mess,
    }
