"""Qualytics side of a generated world: records and quality scores (private to `generate`)."""

from __future__ import annotations

import random
from typing import Any

from qatlan.sandbox._gen_layout import Datastore
from qatlan.sandbox._gen_util import Counter, geometric, guid, iso

QUALYTICS_TOKEN = "qualytics-sandbox-token"
INTEGRATION_ID = 1
ATLAN_API_URL = "https://atlan.sandbox.invalid"  # a placeholder: the generator does not know the port

# Qualytics' own global tags: name, colour, weight_modifier
GLOBAL_TAGS = (("Critical", "#FF2000", 10), ("Finance", "#1E90FF", 5), ("Sensitive", "#FFA500", 8),
               ("Deprecated", "#808080", -5))
# External tags left by an earlier catalog sync (type external, integration 1)
EXTERNAL_TAGS = ("PII", "GDPR")

DIMENSIONS = ("completeness", "coverage", "conformity", "consistency", "precision", "timeliness",
              "volumetrics", "accuracy")
# Field scores are built from six dimensions (qualytics-api.md §9); timeliness and volumetrics
# stay null. UNCONFIRMED: whether the API returns them null or omits them for fields.
FIELD_DIMENSIONS = ("completeness", "coverage", "conformity", "consistency", "precision", "accuracy")
FIELD_RULES = ("notNull", "unique", "between", "matchesPattern", "notNegative", "isType", "expectedValues", "maxLength")
TABLE_RULES = ("volumetric", "freshness")
CHECK_STATUSES = ("Active", "Draft", "Discarded")
ANOMALY_STATUSES = ("Active", "Acknowledged", "Resolved", "Invalid")
_DAY = 86_400


def tokens() -> list[dict[str, Any]]:
    return [{"token": QUALYTICS_TOKEN, "user": {"id": 1, "name": "Sandbox Admin", "email": "admin@acme.example",
                                                "user_name": "admin", "role": "Admin"}}]


def integrations() -> list[dict[str, Any]]:
    return [{"id": INTEGRATION_ID, "type": "atlan", "category": "data_catalog", "api_url": ATLAN_API_URL,
             "connected": True, "overwrite": False, "event_driven": True, "enable_announcements": True,
             "status": "synced", "parameters": {"domains": []}, "created": iso(-90 * _DAY),
             "last_synced": iso(-1 * _DAY)}]


def global_tags() -> list[dict[str, Any]]:
    tags = [{"id": i, "name": name, "type": "global", "integration_id": None, "color": colour,
             "description": f"{name} assets", "category": None, "weight_modifier": weight,
             "created": iso(-120 * _DAY + i * 3600)}
            for i, (name, colour, weight) in enumerate(GLOBAL_TAGS, start=1)]
    for name in EXTERNAL_TAGS:
        i = len(tags) + 1
        tags.append({"id": i, "name": name, "type": "external", "integration_id": INTEGRATION_ID, "color": None,
                     "description": "From Atlan", "category": None, "weight_modifier": 0,
                     "created": iso(-60 * _DAY + i * 3600)})
    return tags


def container_score(rng: random.Random, created: str) -> dict[str, Any]:
    dims = {d: rng.randint(55, 100) for d in DIMENSIONS}
    score: dict[str, Any] = {"total": round(sum(dims.values()) / 8 * rng.uniform(0.8, 1.0), 1), **dims}
    score["created"] = created
    return score


def field_score(bits: int, created: str) -> dict[str, Any]:
    """A field score from 48 random bits (one rng call per field keeps big worlds fast)."""
    dims = [60 + ((bits >> (8 * i)) & 0xFF) % 41 for i in range(6)]
    c, v, f, s, p, a = dims
    return {"total": round(sum(dims) / 6 * 0.95, 1), "completeness": c, "coverage": v, "conformity": f,
            "consistency": s, "precision": p, "timeliness": None, "volumetrics": None, "accuracy": a,
            "created": created}


def aggregate_score(scores: list[dict[str, Any]], created: str) -> dict[str, Any] | None:
    """A datastore score: the mean of its scanned containers' scores (None if none was scanned)."""
    if not scores:
        return None
    n = len(scores)
    out: dict[str, Any] = {"total": round(sum(s["total"] for s in scores) / n, 1)}
    for d in DIMENSIONS:
        out[d] = round(sum(s[d] for s in scores) / n, 1)
    out["created"] = created
    return out


class QualyticsOut:
    """Collects Qualytics records; ids are sequential per kind."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.datastores: list[dict[str, Any]] = []
        self.containers: list[dict[str, Any]] = []
        self.fields: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.anomalies: list[dict[str, Any]] = []
        self._ids = {k: Counter() for k in ("container", "field", "check", "anomaly")}
        self.scores: dict[int, list[dict[str, Any]]] = {}  # datastore id -> container scores

    def jdbc_datastore(self, store: Datastore, connection_id: int) -> dict[str, Any]:
        conn = store.conn
        record = {"id": store.id, "name": store.name, "store_type": "jdbc",
                  "type": "snowflake" if conn.connector == "snowflake" else "postgresql",
                  "host": conn.host, "port": conn.port, "database": store.database, "schema": store.schema,
                  "connection_id": connection_id, "created": iso(-100 * _DAY + store.id * 3600),
                  "tags": [], "quality_score": None, "description": f"{store.database}.{store.schema} on {conn.name}",
                  "enrichment_only": False}
        self.datastores.append(record)
        self.scores[store.id] = []
        return record

    def dfs_datastore(self, ds_id: int, connection_id: int) -> dict[str, Any]:
        record = {"id": ds_id, "name": "s3_landing", "store_type": "dfs", "type": "s3", "host": None,
                  "port": None, "database": None, "schema": None, "uri": "s3://acme-landing",
                  "root_path": "/exports/", "connection_id": connection_id,
                  "created": iso(-100 * _DAY + ds_id * 3600), "tags": [], "quality_score": None,
                  "description": "Files landed by partners", "enrichment_only": False}
        self.datastores.append(record)
        self.scores[ds_id] = []
        return record

    def container(self, ds_id: int, name: str, container_type: str, *, scanned: bool,
                  table_type: str | None = None, archived: bool = False) -> dict[str, Any]:
        rng = self.rng
        created_s = rng.randrange(0, 30 * _DAY)
        profiled = iso(created_s + rng.randrange(3600, 5 * _DAY))
        record: dict[str, Any] = {"id": self._ids["container"].next(), "datastore_id": ds_id, "name": name,
                                  "container_type": container_type}
        if table_type:
            record["table_type"] = table_type
        scanned_at = iso(created_s + rng.randrange(6 * _DAY, 30 * _DAY)) if scanned else None
        record.update({"status": "Available", "created": iso(created_s),
                       "deleted_at": iso(created_s + 40 * _DAY) if archived else None, "tags": [],
                       "last_profiled": profiled, "last_scanned": scanned_at,
                       "records": rng.randrange(0, 5_000_000),
                       "quality_score": container_score(rng, scanned_at) if scanned_at else None})
        if record["quality_score"] and not archived:
            self.scores[ds_id].append(record["quality_score"])
        self.containers.append(record)
        return record

    def field(self, container: dict[str, Any], name: str, field_type: str) -> dict[str, Any]:
        scanned = container["last_scanned"]
        record = {"id": self._ids["field"].next(), "container_id": container["id"], "name": name,
                  "type": field_type, "status": "active", "created": container["created"], "deleted_at": None,
                  "tags": [], "quality_score": field_score(self.rng.getrandbits(48), scanned) if scanned else None}
        self.fields.append(record)
        return record

    def checks_for(self, container: dict[str, Any], field_names: list[str], mean: float,
                   ensure: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Active, Draft and archived (Discarded) checks on a scanned container; at least one
        of each status in `ensure`."""
        rng = self.rng
        n = rng.randint(0, int(round(2 * mean))) if container["last_scanned"] else 0
        statuses = [rng.choices(CHECK_STATUSES, (8, 1, 1))[0] for _ in range(n)]
        statuses += [s for s in ensure if s not in statuses]
        return [self._check(container, field_names, status) for status in statuses]

    def _check(self, container: dict[str, Any], field_names: list[str], status: str) -> dict[str, Any]:
        rng = self.rng
        if field_names and rng.random() < 0.8:
            fields, rule = [rng.choice(field_names)], rng.choice(FIELD_RULES)
        else:
            fields, rule = [], rng.choice(TABLE_RULES)
        created_s = rng.randrange(6 * _DAY, 30 * _DAY)
        record = {"id": self._ids["check"].next(), "container_id": container["id"], "field_names": fields,
                  "rule_type": rule, "status": status,
                  "is_passing": None if status == "Draft" else rng.random() < 0.9,
                  "created": iso(created_s), "deleted_at": iso(created_s + 5 * _DAY) if status == "Discarded" else None,
                  "description": f"{rule} on {fields[0] if fields else container['name']}", "tags": []}
        self.checks.append(record)
        return record

    def anomalies_for(self, container: dict[str, Any], checks: list[dict[str, Any]], mean: float,
                      ensure: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Active, Acknowledged and archived (Resolved, Invalid) anomalies from active checks;
        at least one of each status in `ensure`."""
        active = [c for c in checks if c["status"] == "Active"]
        if not active:
            return []
        rng = self.rng
        statuses = [rng.choices(ANOMALY_STATUSES, (45, 15, 30, 10))[0] for _ in range(geometric(rng, mean))]
        statuses += [s for s in ensure if s not in statuses]
        return [self._anomaly(container, active, status) for status in statuses]

    def _anomaly(self, container: dict[str, Any], active: list[dict[str, Any]], status: str) -> dict[str, Any]:
        rng = self.rng
        failed = rng.sample(active, 2 if len(active) > 1 and rng.random() < 0.2 else 1)
        if status in ("Active", "Acknowledged"):
            for check in failed:
                check["is_passing"] = False
        kind = "shape" if rng.random() < 0.2 else "record"
        record = {"id": self._ids["anomaly"].next(), "uuid": guid(rng), "container_id": container["id"],
                  "check_ids": sorted(c["id"] for c in failed), "type": kind, "status": status,
                  "created": iso(rng.randrange(20 * _DAY, 40 * _DAY)),
                  "description": f"{len(failed)} check(s) failed on {container['name']}",
                  "anomalous_records_count": rng.randrange(1, 5000) if kind == "record" else None, "tags": []}
        self.anomalies.append(record)
        return record
