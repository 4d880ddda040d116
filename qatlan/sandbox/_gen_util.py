"""Small deterministic helpers for the world generator (private to `generate`).

Everything random comes from one `random.Random(seed)`; nothing reads the clock. Times are
offsets from a fixed base, 2026-01-01T00:00:00Z.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
BASE_MS = int(BASE.timestamp()) * 1000

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LETTERS = _ALNUM[:52]
_NANOID = _ALNUM + "_-"
_VARIANT = "89ab"


def guid(rng: random.Random) -> str:
    """A uuid4-shaped string (version 4, RFC 4122 variant) drawn from `rng`."""
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def hashed_name(rng: random.Random) -> str:
    """An Atlan typedef name: one letter and 21 alphanumerics (22 characters)."""
    return rng.choice(_LETTERS) + "".join(rng.choices(_ALNUM, k=21))


def nanoid(rng: random.Random) -> str:
    """A 21-character nanoid as Atlan uses in data-domain qualified names."""
    return "".join(rng.choices(_NANOID, k=21))


def iso(seconds: float) -> str:
    """ISO-8601 UTC timestamp `seconds` after the base, as Qualytics returns them."""
    return (BASE + timedelta(seconds=int(seconds))).isoformat()


class AtlanClock:
    """Hands out distinct, increasing Atlan `createTime` values (epoch ms)."""

    def __init__(self, step_ms: int = 1000):
        self._next = BASE_MS
        self._step = step_ms

    def tick(self) -> int:
        now = self._next
        self._next += self._step
        return now


class Counter:
    """Sequential integer ids from 1, one counter per Qualytics record kind."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def geometric(rng: random.Random, mean: float) -> int:
    """A count >= 0 with the given mean (geometric distribution)."""
    if mean <= 0:
        return 0
    q = mean / (1.0 + mean)
    n = 0
    while rng.random() < q:
        n += 1
    return n


def scaled(rate: float, total: int, minimum: int = 1) -> int:
    """round(rate * total), but at least `minimum` (so small worlds still hold one)."""
    return max(minimum, int(round(rate * total)))


# Column names with their kind; the first is every table's key column.
COLUMN_POOL: tuple[tuple[str, str], ...] = (
    ("id", "int"), ("created_at", "timestamp"), ("updated_at", "timestamp"), ("status", "string"),
    ("name", "string"), ("email", "string"), ("customer_id", "int"), ("order_id", "int"),
    ("product_id", "int"), ("account_id", "int"), ("region", "string"), ("country_code", "string"),
    ("city", "string"), ("postal_code", "string"), ("phone", "string"), ("quantity", "int"),
    ("unit_price", "float"), ("total_price", "float"), ("discount", "float"), ("tax", "float"),
    ("currency", "string"), ("is_active", "bool"), ("is_deleted", "bool"), ("order_date", "date"),
    ("ship_date", "date"), ("due_date", "date"), ("birth_date", "date"), ("category", "string"),
    ("sku", "string"), ("description", "string"), ("channel", "string"), ("campaign_id", "int"),
    ("segment", "string"), ("score", "float"), ("balance", "float"), ("credit_limit", "float"),
    ("source_system", "string"), ("loaded_at", "timestamp"), ("event_ts", "timestamp"),
    ("session_id", "string"), ("user_id", "int"), ("ip_address", "string"), ("device", "string"),
    ("revenue", "float"), ("cost", "float"), ("margin", "float"), ("warehouse_id", "int"),
    ("supplier_id", "int"), ("employee_id", "int"), ("manager_id", "int"), ("department", "string"),
    ("salary", "float"), ("hire_date", "date"), ("first_name", "string"), ("last_name", "string"),
    ("gender", "string"), ("age", "int"), ("notes", "string"), ("version", "int"),
    ("batch_id", "string"), ("row_hash", "string"), ("valid_from", "timestamp"),
    ("valid_to", "timestamp"), ("is_current", "bool"), ("payment_method", "string"),
    ("invoice_id", "int"), ("line_number", "int"), ("weight_kg", "float"), ("latitude", "float"),
    ("longitude", "float"), ("url", "string"), ("referrer", "string"), ("priority", "int"),
)

# Per kind: (Qualytics FieldType, Snowflake data type, Postgres data type)
COLUMN_TYPES: dict[str, tuple[str, str, str]] = {
    "int": ("Integral", "NUMBER", "integer"),
    "float": ("Fractional", "FLOAT", "numeric"),
    "string": ("String", "VARCHAR", "text"),
    "bool": ("Boolean", "BOOLEAN", "boolean"),
    "date": ("Date", "DATE", "date"),
    "timestamp": ("Timestamp", "TIMESTAMP_NTZ", "timestamp"),
}

TABLE_PREFIXES = ("stg", "fct", "dim", "raw", "int", "rpt", "agg", "src", "snap", "mart")
TABLE_NOUNS = (
    "sales", "order_lines", "products", "inventory", "shipments", "returns", "refunds", "sessions",
    "events", "clicks", "campaigns", "leads", "opportunities", "contracts", "subscriptions",
    "plans", "usage", "billing", "ledger", "journal", "budgets", "forecasts", "employees",
    "payroll", "stores", "regions", "suppliers", "purchase_orders", "receipts", "tickets",
    "surveys", "reviews", "promotions", "prices", "currencies", "exchange_rates", "devices",
    "users", "logins", "audits", "partners", "territories", "quotas", "targets", "warehouses",
)
# Bare names for the mess categories (never produced by the prefixed generator above).
CASE_ONLY_NOUNS = ("orders", "invoices", "payments", "transactions", "deliveries", "bookings")
AMBIGUOUS_NOUNS = ("customers", "accounts", "vendors", "members", "contacts", "households")


class TableNames:
    """Unique table names within one schema, in the schema's case.

    Standard names are `<prefix>_<noun>[_<n>]`; the mess categories draw from their own bare
    nouns, so no two names in a schema can collide, even ignoring case.
    """

    def __init__(self, rng: random.Random, upper: bool):
        combos = [f"{p}_{n}" for p in TABLE_PREFIXES for n in TABLE_NOUNS]
        rng.shuffle(combos)
        self._combos = combos
        self._upper = upper
        self._std = 0
        self._mess: dict[tuple[str, ...], int] = {}

    def case(self, name: str) -> str:
        return name.upper() if self._upper else name

    def standard(self) -> str:
        i, n = self._std, len(self._combos)
        self._std += 1
        name = self._combos[i % n] if i < n else f"{self._combos[i % n]}_{i // n + 1}"
        return self.case(name)

    def bare(self, nouns: tuple[str, ...]) -> str:
        """The next unused bare noun (lower case), suffixed once the list is used up."""
        i = self._mess.get(nouns, 0)
        self._mess[nouns] = i + 1
        return nouns[i % len(nouns)] if i < len(nouns) else f"{nouns[i % len(nouns)]}_{i // len(nouns) + 1}"
