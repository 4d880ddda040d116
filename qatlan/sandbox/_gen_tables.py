"""Tables, columns, containers and fields of a generated world (private to `generate`).

One *slot* is one Qualytics table container and whatever Atlan holds for it. The mess counters
in `Gen.mess` are incremented here, as each thing is made, and end up in `meta.summary.mess`.
"""

from __future__ import annotations

import random
from typing import Any

from qatlan.sandbox import _gen_atlan as atl
from qatlan.sandbox._gen_layout import (AMBIGUOUS, ARCHIVED, CASE_ONLY, EXACT, MATCHED, MVIEW, ONLY_Q, VIEW, Conn,
                                        Datastore, Slot)
from qatlan.sandbox._gen_qualytics import ANOMALY_STATUSES, CHECK_STATUSES, QualyticsOut
from qatlan.sandbox._gen_util import AMBIGUOUS_NOUNS, CASE_ONLY_NOUNS, COLUMN_POOL, COLUMN_TYPES, TableNames

_UPPER = {name: name.upper() for name, _ in COLUMN_POOL}
_ATLAN_TYPE = {VIEW: "View", MVIEW: "MaterialisedView"}
_SLOT_COUNTERS = {EXACT: "tables_exact", VIEW: "views", MVIEW: "materialised_views", CASE_ONLY: "tables_case_only",
                  AMBIGUOUS: "tables_ambiguous", ONLY_Q: "tables_only_qualytics", ARCHIVED: "archived_containers"}
_TABLE_TAG_RATE = 0.08
_COLUMN_TAG_RATE = 0.015
_Q_CONTAINER_TAGS = (("Critical", 0.03), ("Finance", 0.03), ("Sensitive", 0.02))
_DAY_MS = 86_400_000

# A column plan entry: (Qualytics field name or None, Atlan column names, kind)
Plan = list[tuple[str | None, tuple[str, ...], str]]


class Gen:
    """Everything one generation run shares."""

    def __init__(self, rng: random.Random, columns: int, checks: float, anomalies: float, mess: float):
        self.rng = rng
        self.columns = columns
        self.checks = checks
        self.anomalies = anomalies
        self.a = atl.AtlanOut(rng)
        self.q = QualyticsOut(rng)
        self.mess: dict[str, int] = {}
        p = min(0.01 * mess, 0.1)
        self.column_cuts = (p, 2 * p, 3 * p)  # case-only, only-Qualytics, only-Atlan
        self.human_cm: dict[str, Any] = {}
        self.link_assets: list[dict[str, Any]] = []
        self.table_tags: dict[int, list[str]] = {}  # id(table entity) -> tag display names

    def tags_of(self, entity: dict[str, Any]) -> list[str]:
        return self.table_tags.get(id(entity), [])

    def count(self, key: str, n: int = 1) -> None:
        self.mess[key] = self.mess.get(key, 0) + n


def pick_columns(rng: random.Random, mean: int) -> list[tuple[str, str]]:
    lo = max(1, mean // 2)
    n = rng.randint(lo, 2 * mean - lo)
    picked = rng.sample(range(1, len(COLUMN_POOL)), min(n, len(COLUMN_POOL)) - 1)
    chosen = [COLUMN_POOL[0]] + [COLUMN_POOL[i] for i in picked]
    chosen += [(f"attr_{i:03d}", "string") for i in range(len(COLUMN_POOL), n)]
    return chosen


def column_plan(g: Gen, columns: list[tuple[str, str]], upper: bool, messy: bool) -> Plan:
    rng = g.rng
    c1, c2, c3 = g.column_cuts
    plan: Plan = []
    for i, (name, kind) in enumerate(columns):
        big = _UPPER.get(name) or name.upper()
        std = big if upper else name
        r = rng.random() if messy and i else 1.0
        if r >= c3:
            plan.append((std, (std,), kind))
        elif r < c1:
            plan.append((name, (big,), kind))  # Qualytics `order_id`, Atlan `ORDER_ID`
        elif r < c2:
            plan.append((std, (), kind))
        else:
            plan.append((None, (std,), kind))
    return plan


def add_column_kit(plan: Plan, upper: bool) -> None:
    """One column of each column-level mess kind, whatever the dice said."""
    def std(n: str) -> str:
        return n.upper() if upper else n
    plan.extend([("discount_pct", ("DISCOUNT_PCT",), "float"), (std("legacy_code"), (), "string"),
                 (None, (std("etl_batch"),), "string"), ("amount", ("Amount", "AMOUNT"), "float")])


def count_columns(g: Gen, plan: Plan) -> None:
    for q, a, _ in plan:
        if q is None:
            g.count("columns_only_atlan")
        elif not a:
            g.count("columns_only_qualytics")
        elif len(a) > 1:
            g.count("columns_ambiguous")
        elif q != a[0]:
            g.count("columns_case_only")


def emit_schema_tables(g: Gen, store: Datastore, base: dict[str, Any], domain: str | None) -> None:
    """All containers of a jdbc datastore and the tables of its mapped schema."""
    names = TableNames(g.rng, store.conn.upper)
    for slot in store.slots:
        emit_slot(g, store, names, slot, base, domain)
    only_atlan = [names.standard() for _ in range(store.only_atlan)]
    for name in only_atlan:
        plan = column_plan(g, pick_columns(g.rng, g.columns), store.conn.upper, False)
        _atlan_table(g, "Table", name, plan, base, None if g.rng.random() < 0.1 else domain)
    g.count("tables_only_atlan", len(only_atlan))
    for k in range(store.computed):
        if k == 0 and only_atlan:  # a computed container named like an Atlan table: still skipped
            g.count("computed_name_collisions")
            _computed(g, store, only_atlan[0])
        else:
            _computed(g, store, names.standard() + names.case("_cmp"))


def emit_extra_tables(g: Gen, conn: Conn, base: dict[str, Any], n: int, domain: str) -> None:
    names = TableNames(g.rng, conn.upper)
    for _ in range(n):
        plan = column_plan(g, pick_columns(g.rng, g.columns), conn.upper, False)
        _atlan_table(g, "Table", names.standard(), plan, base, None if g.rng.random() < 0.1 else domain)
    g.count("tables_extra_connection", n)


def emit_slot(g: Gen, store: Datastore, names: TableNames, slot: Slot, base: dict[str, Any],
              domain: str | None) -> None:
    """One table container and what Atlan holds for it (nothing, one table, or two)."""
    rng, cat, feats = g.rng, slot.cat, slot.features
    if cat == CASE_ONLY:
        q_name = names.bare(CASE_ONLY_NOUNS)
        a_names: tuple[str, ...] = (q_name.upper(),)
    elif cat == AMBIGUOUS:
        q_name = names.bare(AMBIGUOUS_NOUNS)
        a_names = (q_name.title(), q_name.upper())
    else:
        q_name = names.standard()
        a_names = () if cat == ONLY_Q else (q_name,)
    matched = cat in MATCHED
    plan = column_plan(g, pick_columns(rng, g.columns), store.conn.upper, matched)
    if "kit" in feats:
        add_column_kit(plan, store.conn.upper)
    if matched:
        count_columns(g, plan)
    _count_slot(g, store, slot)
    container, fields = _container(g, store, q_name, cat, plan, feats)
    status = "DELETED" if cat == ARCHIVED else "ACTIVE"
    table_domain = None if "no_domain" in feats else domain
    tables = [_atlan_table(g, _ATLAN_TYPE.get(cat, "Table"), n, plan, base, table_domain, status, fields)
              for n in a_names]
    if matched and not store.conn.hidden:
        if "kit" in feats:
            _external_tag(g, tables[0], fields)
        _decorate(g, container, tables[0], feats)


def _count_slot(g: Gen, store: Datastore, slot: Slot) -> None:
    g.count(_SLOT_COUNTERS[slot.cat])
    if slot.cat in MATCHED:
        g.count("tables_matched")
    if store.conn.hidden:
        g.count("tables_hidden_connection")


def _container(g: Gen, store: Datastore, name: str, cat: str, plan: Plan,
               feats: set[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    q, rng = g.q, g.rng
    container = q.container(store.id, name, "table", table_type="view" if cat in (VIEW, MVIEW) else "table",
                            scanned="never_scanned" not in feats, archived=cat == ARCHIVED)
    for tag, rate in _Q_CONTAINER_TAGS:
        if rng.random() < rate:
            container["tags"].append(tag)
    fields = {}
    for q_name, _, kind in plan:
        if q_name is not None:
            field = q.field(container, q_name, COLUMN_TYPES[kind][0])
            if rng.random() < 0.005:
                field["tags"].append("Sensitive")
            fields[q_name] = field
    if cat != ARCHIVED:
        # the kit table has every status; an announced table has an active anomaly
        checks, anomalies = ((CHECK_STATUSES, ANOMALY_STATUSES) if "kit" in feats
                             else (("Active",), ("Active",)) if "announce" in feats else ((), ()))
        found = q.checks_for(container, list(fields), g.checks, ensure=checks)
        q.anomalies_for(container, found, g.anomalies, ensure=anomalies)
    return container, fields


def _atlan_table(g: Gen, type_name: str, name: str, plan: Plan, base: dict[str, Any], domain: str | None,
                 status: str = "ACTIVE", fields: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    a, rng = g.a, g.rng
    qn = f"{base['schemaQualifiedName']}/{name}"
    attrs = {"qualifiedName": qn, "name": name, **base, "columnCount": 0}
    if domain:
        attrs["domainGUIDs"] = [a.domain_guid[domain]]
    table = a.add(type_name, attrs, status)
    if rng.random() < _TABLE_TAG_RATE:
        _tag(g, table, rng.choice(atl.TAGS)[0])
    # UNCONFIRMED: columns of a MaterialisedView carry viewName/viewQualifiedName, like a View's
    prefix = "table" if type_name == "Table" else "view"
    col_base = {**base, f"{prefix}Name": name, f"{prefix}QualifiedName": qn}
    connector = 1 if base["connectorName"] == "snowflake" else 2
    order = 0
    for q_name, a_names, kind in plan:
        for col in a_names:
            order += 1
            column = a.add("Column", {**col_base, "qualifiedName": f"{qn}/{col}", "name": col, "order": order,
                                      "dataType": COLUMN_TYPES[kind][connector]}, status)
            if rng.random() < _COLUMN_TAG_RATE:
                _tag_column(g, column, fields.get(q_name) if fields and q_name else None)
    attrs["columnCount"] = order
    return table


def _tag(g: Gen, entity: dict[str, Any], display: str, propagate: bool = False) -> None:
    g.a.tag(entity, display, propagate)
    g.table_tags.setdefault(id(entity), []).append(display)


def _tag_column(g: Gen, column: dict[str, Any], field: dict[str, Any] | None) -> None:
    display = g.rng.choice(atl.COLUMN_TAGS)
    g.a.tag(column, display)
    if field is not None and display in ("PII", "GDPR") and g.rng.random() < 0.3:
        field["tags"].append(display)  # left by an earlier catalog sync
        g.count("external_tag_attachments")


def _decorate(g: Gen, container: dict[str, Any], table: dict[str, Any], feats: set[str]) -> None:
    """The human-made mess on a matched pair the sync persona can see."""
    a, rng = g.a, g.rng
    if "conflict" in feats:
        if "Finance" not in container["tags"]:
            container["tags"].append("Finance")
        if "Finance" not in g.tags_of(table):
            _tag(g, table, "Finance")
    if "announce" in feats:
        when = a.touch(table, atl.HUMAN, rng.randrange(1, 30) * _DAY_MS)
        table["attributes"].update(atl.announcement(rng, when))
        g.count("human_announcements")
    if "human_cm" in feats:
        a.touch(table, atl.HUMAN, rng.randrange(1, 30) * _DAY_MS)
        table["businessAttributes"] = atl.human_cm_values(rng, g.human_cm, rng.choice(("Sales Ops", "FP&A", "Growth")))
        g.count("human_custom_metadata")
    if "propagate" in feats:
        _propagate(g, table)
    if "link" in feats:
        g.link_assets.append(table)
    shared = set(container["tags"]) & set(g.tags_of(table))
    if shared:
        g.count("tag_conflicts", len(shared))


def _propagate(g: Gen, table: dict[str, Any]) -> None:
    """Confidential on the table, propagated to each of its columns (entityGuid = the table)."""
    if "Confidential" in g.tags_of(table):
        for item in table["classifications"]:
            if item["typeName"] == g.a.tag_hash["Confidential"]:
                item["propagate"] = True
    else:
        _tag(g, table, "Confidential", propagate=True)
    for column in _columns_of(g, table):
        g.a.propagated(column, "Confidential", table["guid"])
        g.count("propagated_tags")


def _columns_of(g: Gen, table: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns of the table made last (they follow it in the entity list)."""
    out = []
    for entity in reversed(g.a.entities):
        if entity is table:
            break
        out.append(entity)
    return out[::-1]


def _external_tag(g: Gen, table: dict[str, Any], fields: dict[str, dict[str, Any]]) -> None:
    """PII on a column and, from an earlier catalog sync, the external PII tag on its field."""
    for column in _columns_of(g, table):
        field = fields.get(column["attributes"]["name"])
        if field is not None and not column.get("classifications"):
            g.a.tag(column, "PII")
            field["tags"].append("PII")
            g.count("external_tag_attachments")
            return


def _computed(g: Gen, store: Datastore, name: str) -> None:
    q, rng = g.q, g.rng
    source = f"{store.schema}.{name}"
    container = q.container(store.id, name, "computed_table", scanned=rng.random() < 0.9)
    container["query"] = f"SELECT id, status, created_at FROM {source} WHERE status <> 'test'"
    upper = store.conn.upper
    fields = [q.field(container, n.upper() if upper else n, t) for n, t in
              (("id", "Integral"), ("status", "String"), ("created_at", "Timestamp"))]
    q.checks_for(container, [f["name"] for f in fields], g.checks)
    g.count("computed")
