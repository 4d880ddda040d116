"""The shape of a generated world before any record exists (private to `generate`).

`plan_layout` decides the Atlan connections, the Qualytics datastores and which (connection,
database, schema) each datastore maps to, then which table containers each datastore holds
("slots") and which mess each slot carries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from qatlan.sandbox._gen_util import scaled

# Slot categories: what one Qualytics table container (container_type `table`) looks like.
EXACT = "exact"  # Atlan Table with the same name
VIEW = "view"  # Qualytics view <-> Atlan View
MVIEW = "mview"  # Qualytics view <-> Atlan MaterialisedView (UNCONFIRMED: Qualytics table_type of a
# materialised view; it only knows table|view, and "view" is assumed)
CASE_ONLY = "case_only"  # Qualytics `orders` <-> Atlan `ORDERS`
AMBIGUOUS = "ambiguous"  # Qualytics `customers` <-> Atlan `Customers` and `CUSTOMERS`
ONLY_Q = "only_qualytics"  # no Atlan table
ARCHIVED = "archived"  # Qualytics deleted_at set, Atlan table DELETED
MATCHED = frozenset({EXACT, VIEW, MVIEW, CASE_ONLY})

# Rates (share of `tables`, times `mess`) of the special slot categories; at least one each.
SLOT_RATES = ((VIEW, 0.05), (MVIEW, 0.01), (CASE_ONLY, 0.02), (AMBIGUOUS, 0.01), (ONLY_Q, 0.03), (ARCHIVED, 0.01))

# Extras beyond `tables`, spread over the visible datastores
ONLY_ATLAN_RATE = 0.03
COMPUTED_RATE = 0.02

# Features sampled over slots: (name, rate, eligible categories, visible connections only)
FEATURES = (
    ("kit", 0.0, frozenset({EXACT}), True),  # one table with one of every small thing
    ("announce", 0.01, frozenset({EXACT, VIEW}), True),
    ("conflict", 0.01, frozenset({EXACT}), True),
    ("propagate", 0.005, MATCHED, True),
    ("human_cm", 0.01, MATCHED, True),
    ("link", 0.005, MATCHED, True),
    ("no_domain", 0.1, MATCHED | {AMBIGUOUS}, False),
    ("never_scanned", 0.08, MATCHED | {ONLY_Q}, False),
)

_SNOWFLAKE_SCHEMAS = ("SALES", "FINANCE", "MARKETING", "INVENTORY", "HR", "OPS", "SUPPORT", "PRODUCT", "WEB", "BILLING")


@dataclass
class Conn:
    """One Atlan connection (and, unless `extra`, one Qualytics connection)."""

    name: str
    connector: str
    qn: str
    upper: bool
    host: str
    port: int
    databases: tuple[str, ...]
    hidden: bool = False  # the qualytics-sync persona cannot see it
    extra: bool = False  # no Qualytics datastore maps to it
    used: int = 0  # datastores placed on it so far


@dataclass
class Slot:
    cat: str
    features: set[str] = field(default_factory=set)


@dataclass
class Datastore:
    id: int
    name: str
    conn: Conn
    database: str
    schema: str
    slots: list[Slot] = field(default_factory=list)
    only_atlan: int = 0  # Atlan tables in the mapped schema with no container
    computed: int = 0  # computed_table containers


@dataclass
class Layout:
    conns: list[Conn]
    datastores: list[Datastore]  # jdbc only; the dfs datastore is built separately


def plan_layout(rng: random.Random, tables: int, n_datastores: int, mess: float) -> Layout:
    conns = _connections(rng, n_datastores)
    stores = _datastores(conns, n_datastores)
    _place_slots(rng, stores, tables, mess)
    _sample_features(rng, stores, mess)
    return Layout(conns=conns, datastores=stores)


def _connection_qn(rng: random.Random, connector: str, index: int) -> str:
    # default/<connector>/<epochSeconds>: one week apart from 2025-01-01, so never equal
    return f"default/{connector}/{1735689600 + index * 604800 + rng.randrange(86400)}"


def _connections(rng: random.Random, n_datastores: int) -> list[Conn]:
    specs = [
        ("snowflake-prod", "snowflake", "acme-prod.snowflakecomputing.com", ("ANALYTICS", "RAW"), False),
        ("snowflake-dev", "snowflake", "acme-dev.snowflakecomputing.com", ("ANALYTICS", "RAW"), False),
        ("postgres-app", "postgres", "app-db.acme.internal", ("app", "reporting"), False),
        ("postgres-finance", "postgres", "finance-db.acme.internal", ("finance", "treasury"), True),
    ]
    for n in range(1, (n_datastores - 4) // 6 + 1):
        if n % 2:
            host, dbs = f"acme-bu{n}.snowflakecomputing.com", (f"BU{n}_DW", f"BU{n}_RAW")
            specs.append((f"snowflake-bu{n}", "snowflake", host, dbs, False))
        else:
            host, dbs = f"svc{n}-db.acme.internal", (f"svc{n}", f"svc{n}_archive")
            specs.append((f"postgres-svc{n}", "postgres", host, dbs, False))
    conns = []
    for i, (name, connector, host, dbs, hidden) in enumerate(specs):
        upper = connector == "snowflake"
        qn = _connection_qn(rng, connector, i)
        conns.append(Conn(name, connector, qn, upper, host, 443 if upper else 5432, dbs, hidden))
    extra = Conn("redshift-marketing", "redshift", _connection_qn(rng, "redshift", len(specs)), False,
                 "marketing.acme.redshift.amazonaws.com", 5439, ("marketing",), extra=True)
    return conns + [extra]


def _schema_name(conn: Conn, m: int) -> str:
    if m == 0:
        return "PUBLIC" if conn.upper else "public"
    base = _SNOWFLAKE_SCHEMAS[(m - 1) % len(_SNOWFLAKE_SCHEMAS)]
    if m > len(_SNOWFLAKE_SCHEMAS):
        base = f"{base}_{(m - 1) // len(_SNOWFLAKE_SCHEMAS) + 1}"
    return base if conn.upper else base.lower()


def _datastores(conns: list[Conn], n: int) -> list[Datastore]:
    """Datastores 1-4 map to the four fixed connections; the rest spread over the others
    (never onto snowflake-dev or the hidden connection, so those keep exactly one each)."""
    spread = [c for c in conns if not c.extra and c.name not in ("snowflake-dev", "postgres-finance")]
    out = []
    for i in range(n):
        conn = conns[i] if i < 4 else spread[(i - 4) % len(spread)]
        m = conn.used
        conn.used += 1
        db = conn.databases[m % len(conn.databases)] if m else conn.databases[0]
        schema = _schema_name(conn, m)
        name = f"{conn.name}_{db}_{schema}".replace("-", "_").lower()
        out.append(Datastore(id=i + 1, name=name, conn=conn, database=db, schema=schema))
    return out


def _special_counts(tables: int, n_datastores: int, mess: float) -> list[tuple[str, int]]:
    counts = [(cat, scaled(min(rate * mess, 0.1), tables)) for cat, rate in SLOT_RATES]
    room = max(0, tables - min(tables, n_datastores))  # every datastore keeps one exact table
    while sum(c for _, c in counts) > room:  # tiny worlds: trim the largest category first
        i = max(range(len(counts)), key=lambda k: (counts[k][1], -k))
        counts[i] = (counts[i][0], counts[i][1] - 1)
    return counts


def _place_slots(rng: random.Random, stores: list[Datastore], tables: int, mess: float) -> None:
    visible = [s for s in stores if not s.conn.hidden]
    specials = _special_counts(tables, len(stores), mess)
    n_special = 0
    for cat, count in specials:
        for _ in range(count):
            rng.choice(visible).slots.append(Slot(cat))
        n_special += count
    exact = tables - n_special
    for store in stores[:exact]:
        store.slots.append(Slot(EXACT))
    rest = exact - min(exact, len(stores))
    weights = [0.3 if s.conn.hidden else rng.uniform(0.5, 1.5) for s in stores]
    for store in rng.choices(stores, weights=weights, k=rest):
        store.slots.append(Slot(EXACT))
    for store in stores:
        rng.shuffle(store.slots)
    for _ in range(scaled(min(ONLY_ATLAN_RATE * mess, 0.1), tables)):
        rng.choice(visible).only_atlan += 1
    for k in range(scaled(min(COMPUTED_RATE * mess, 0.1), tables)):
        # the first one shares a schema with Atlan-only tables, to take one of their names
        store = next(s for s in visible if s.only_atlan) if k == 0 else rng.choice(visible)
        store.computed += 1


def _sample_features(rng: random.Random, stores: list[Datastore], mess: float) -> None:
    for name, rate, cats, visible_only in FEATURES:
        eligible = [
            slot for store in stores if not (visible_only and store.conn.hidden)
            for slot in store.slots if slot.cat in cats and not _clashes(name, slot)
        ]
        if not eligible:
            continue
        k = min(len(eligible), scaled(min(rate * mess, 0.5), len(eligible)))
        for slot in rng.sample(eligible, k):
            slot.features.add(name)


def _clashes(feature: str, slot: Slot) -> bool:
    # announced and kit tables must have been scanned (they have active anomalies)
    return feature == "never_scanned" and bool(slot.features & {"announce", "kit"})
