"""Canonical forms, so that a value read back from a server compares equal to what was written.

Without this every run would plan an update: Atlan may hand back `82` for a float written as
`82.0`, Qualytics scores carry more decimals than anyone reads, and tag names differ in case.
Every function here is pure and idempotent: `normalize(normalize(x)) == normalize(x)`.

- numbers: floats are rounded to 2 decimals (NaN and infinities become None); ints stay
  ints; booleans stay booleans.
- custom metadata values are normalised by the attribute's kind (`float`, `int`, `date`, `url`).
- tag names are compared by `fold(name)` (case-insensitive, surrounding blanks ignored); the
  source's spelling is kept for display and addresses.
- timestamps qatlan writes: `iso_utc` (`2024-05-01T12:00:00.123Z`), one format everywhere.
- connector names: `connector_key` maps Qualytics and Atlan spellings of one connector
  (`postgresql` ↔ `postgres`, ...) to one key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["connector_key", "epoch_ms", "fold", "format_duration", "iso_utc", "normalize", "normalize_cm",
           "round_float"]

#: decimals kept for floats (scores are 0–100; two decimals is what people read)
DECIMALS = 2

# UNCONFIRMED: Atlan connector names for some Qualytics connector types.
_CONNECTOR_ALIASES: dict[str, str] = {
    "postgresql": "postgres",
    "timescale": "postgres",
    "sqlserver": "mssql",
    "microsoft-sql-server": "mssql",
    "hana": "sap-hana",
    "saphana": "sap-hana",
    "databricks_native": "databricks",
    "hive_native": "hive",
    "fabric": "microsoft-fabric",
    "azure-synapse-analytics": "synapse",
    "google-bigquery": "bigquery",
}


def normalize(value: Any) -> Any:
    """The canonical JSON-able form of a value (see the module docstring)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return round_float(value)
    if isinstance(value, Mapping):
        return {str(k): normalize(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def round_float(value: float) -> float | None:
    """A float rounded to 2 decimals (-0.0 → 0.0; NaN and infinities → None)."""
    if math.isnan(value) or math.isinf(value):
        return None
    rounded = round(value, DECIMALS)
    return 0.0 if rounded == 0 else rounded


def normalize_cm(kind: str, value: Any) -> Any:
    """A custom metadata value as qatlan writes it and compares it, by attribute kind.

    `float` → rounded float; `int` and `date` (epoch ms) → int; `url`/`string` → str.
    Anything that cannot be read as its kind is kept in its generic normal form, so that
    a value someone else wrote is still compared (and seen as different), never dropped.
    """
    if value is None or isinstance(value, bool):
        return value
    try:
        if kind == "float":
            return round_float(float(value))
        if kind in ("int", "date"):
            number = float(value)
            if math.isnan(number) or math.isinf(number):
                return None
            return int(number) if number.is_integer() else round_float(number)
    except (TypeError, ValueError):
        return normalize(value)
    if kind in ("url", "string"):
        return value if isinstance(value, str) else normalize(value)
    return normalize(value)


def fold(name: str) -> str:
    """The comparison key of a tag name: case-insensitive, surrounding blanks ignored."""
    return name.strip().casefold()


def connector_key(name: str | None) -> str:
    """One key for a connector however the two products spell it."""
    key = (name or "").strip().lower()
    return _CONNECTOR_ALIASES.get(key, key)


def epoch_ms(iso: str | None) -> int | None:
    """Epoch milliseconds of an ISO-8601 timestamp (naive = UTC); None if unreadable."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))


def iso_utc(ts: float | None = None) -> str:
    """`ts` (epoch seconds; now when None) as ISO 8601 UTC with milliseconds and a Z:
    `2024-05-01T12:00:00.123Z`. The one format of every timestamp qatlan writes."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_stamp(text: str) -> str:
    """A time a person typed (ISO 8601, `Z` or an offset; UTC when neither; a date alone is
    its midnight) in `iso_utc`'s format, so that it compares with stored times as text.
    ValueError when it is not a time."""
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_duration(seconds: float) -> str:
    """`6h`, `1h 30m`, `45s`: the largest two units."""
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])
