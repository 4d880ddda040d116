"""Small Qualytics worlds for the sandbox Qualytics tests, and a World stand-in.

`FakeWorld` has what the app needs from `qatlan.sandbox.world.World` (`.qualytics`, `.lock`),
so these tests do not depend on the Atlan side.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import starlette.exceptions

#: starlette 0.47+ warns with its own class; older ones have none (and no notice to silence)
StarletteDeprecationWarning = getattr(starlette.exceptions, "StarletteDeprecationWarning", DeprecationWarning)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)  # "install httpx2" notice
    from starlette.testclient import TestClient

from qatlan.sandbox.qualytics_app import create_qualytics_app
from qatlan.sandbox.qualytics_store import QualyticsStore

ADMIN = "tok-admin"
MEMBER = "tok-member"
SCORE = {"total": 82.1, "completeness": 98, "coverage": 85, "conformity": 92, "consistency": 95,
         "precision": 100, "timeliness": 100, "volumetrics": 100, "accuracy": 88, "created": "2026-01-02T00:00:00+00:00"}
T0 = "2026-01-01T00:00:00+00:00"

# required keys per schema (reference §2-§8, SPEC26 `required` arrays)
SCORE_KEYS = {"total", "completeness", "coverage", "conformity", "consistency", "precision", "timeliness",
              "volumetrics", "accuracy", "created"}
DATASTORE_STUB_KEYS = {
    "id", "name", "store_type", "type", "enrichment_only", "enrichment_source_record_limit",
    "enrichment_remediation_strategy", "enrichment_auto_sync", "high_count_rollup_threshold",
    "default_volumetric_tracking_enabled", "default_freshness_tracking_enabled", "default_automate_volumetric_checks",
    "default_automate_freshness_checks", "default_ai_effort", "default_infer_as_draft"}
DATASTORE_KEYS = DATASTORE_STUB_KEYS | {"created", "has_scheduled_operations", "enrichment_prefix", "metrics",
                                        "connection_id"}
DATASTORE_METRICS_KEYS = {"active_anomalies", "active_checks", "anomalies", "containers", "failing_checks", "fields",
                          "important_checks", "new_anomalies", "partitions", "passing_checks", "records",
                          "quality_score", "latest_observability_measurement"}
CONTAINER_STUB_KEYS = {"id", "name", "container_type", "volumetric_tracking_enabled", "freshness_tracking_enabled",
                       "automate_volumetric_checks", "automate_freshness_checks"}
CONTAINER_KEYS = CONTAINER_STUB_KEYS | {"created", "datastore", "status", "metrics"}
CONTAINER_METRICS_KEYS = {"last_profiled", "last_scanned", "fields", "records", "completeness", "active_checks",
                          "important_checks", "passing_checks", "failing_checks", "anomalies", "active_anomalies",
                          "quality_score"}
FIELD_KEYS = {"created", "id", "name", "type", "status", "global_tags", "quality_score"}
CHECK_KEYS = {"created", "id", "rule_type", "inferred", "coverage", "is_template", "is_new", "num_container_scans",
              "template_checks_count", "anomaly_count", "active_anomaly_count", "weight"}
ANOMALY_KEYS = {"created", "id", "uuid", "type", "is_new", "archived", "status", "source_enriched", "datastore",
                "container", "partition", "failed_checks", "weight", "anomalous_records_count"}
INTEGRATION_KEYS = {"created", "id", "type", "api_url", "connected", "overwrite", "event_driven", "status",
                    "parameters"}
EMBEDDED_TAG_KEYS = {"type", "name", "weight_modifier", "color", "description", "category"}
PAGE_KEYS = {"items", "total", "page", "size", "pages"}


class FakeWorld:
    def __init__(self, doc: dict[str, Any]):
        self.qualytics = QualyticsStore(doc, clock=lambda: 1767225600.0)
        self.lock = threading.RLock()


def client_for(doc: dict[str, Any], token: str | None = ADMIN) -> TestClient:
    return client_of(FakeWorld(doc), token)


def client_of(world: FakeWorld, token: str | None = ADMIN) -> TestClient:
    client = TestClient(create_qualytics_app(world))
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


def small_world() -> dict[str, Any]:
    """Datastore 1 (jdbc) with table 10, view 11, archived 12, computed 13; dfs datastore 2; enrichment 3.

    Container 10: active fields id, email; checks 1000 (email, failing), 1001 (id, passing),
    1005 (id+email, not asserted) active; anomalies 5000 (Active, 1000), 5001 (Acknowledged),
    5002 (Resolved), 5003 (Active, shape, 1005), 5004 (Duplicate).
    """
    return {
        "tokens": [
            {"token": ADMIN, "user": {"id": 1, "name": "Ada", "email": "ada@x.io", "user_name": "ada", "role": "Admin"}},
            {"token": MEMBER, "user": {"id": 2, "name": "Bo", "email": "bo@x.io", "user_name": "bo", "role": "Member"}},
        ],
        "integrations": [
            {"id": 1, "type": "atlan", "api_url": "https://x.atlan.com", "connected": True, "overwrite": False,
             "event_driven": True, "enable_announcements": True, "status": "synced",
             "parameters": {"domains": []}, "created": T0, "category": "data_catalog"},
        ],
        "global_tags": [
            {"id": 1, "name": "PII", "type": "global", "color": "#FF2000", "weight_modifier": 0, "created": T0},
            {"id": 2, "name": "Finance", "type": "global", "created": T0},
            {"id": 3, "name": "Critical", "type": "global", "weight_modifier": 10, "created": T0},
            {"id": 4, "name": "Gold", "type": "external", "integration_id": 1, "created": T0},
            {"id": 5, "name": "a/b c", "type": "global", "created": T0},
        ],
        "datastores": [
            {"id": 1, "name": "warehouse", "store_type": "jdbc", "type": "snowflake", "host": "acme.snowflake.com",
             "port": 443, "database": "SALES", "schema": "PUBLIC", "connection_id": 7, "created": T0,
             "tags": ["Finance"], "quality_score": SCORE},
            {"id": 2, "name": "lake", "store_type": "dfs", "type": "s3", "uri": "s3://lake", "root_path": "/",
             "connection_id": 8, "created": T0, "tags": [], "quality_score": None},
            {"id": 3, "name": "enrich", "store_type": "jdbc", "type": "postgresql", "host": "pg", "database": "e",
             "schema": "q", "connection_id": 9, "created": T0, "enrichment_only": True},
        ],
        "containers": [
            _table(10, "ORDERS", tags=["PII"], records=1000, quality_score=SCORE),
            _table(11, "CUSTOMERS", table_type="view", records=10),
            _table(12, "OLD_ORDERS", deleted_at="2026-01-05T00:00:00+00:00"),
            {"id": 13, "datastore_id": 1, "name": "orders_ct", "container_type": "computed_table",
             "status": "Available", "created": T0, "query": "select 1", "tags": []},
            {"id": 20, "datastore_id": 2, "name": "events.csv", "container_type": "file", "status": "Available",
             "created": T0, "relative_path": "/events.csv", "file_name": "events.csv", "extension": "csv",
             "last_modified": T0, "tags": []},
        ],
        "fields": [
            _field(100, 10, "id", type="Integral"),
            _field(101, 10, "email", tags=["PII"], quality_score=SCORE),
            _field(102, 10, "legacy", status="missing"),
            _field(103, 10, "secret", status="excluded"),
            _field(104, 10, "gone", deleted_at="2026-01-03T00:00:00+00:00"),
            _field(110, 11, "name"),
        ],
        "checks": [
            _check(1000, ["email"], is_passing=False, tags=["PII"]),
            _check(1001, ["id"], is_passing=True),
            _check(1002, ["email"], status="Draft"),
            _check(1003, ["id"], status="Discarded"),
            _check(1004, ["id"], deleted_at="2026-01-04T00:00:00+00:00"),
            _check(1005, ["id", "email"], is_passing=None),
        ],
        "anomalies": [
            _anomaly(5000, [1000], "Active", tags=["Critical"]),
            _anomaly(5001, [1000], "Acknowledged"),
            _anomaly(5002, [1001], "Resolved"),
            _anomaly(5003, [1005], "Active", type="shape"),
            _anomaly(5004, [], "Duplicate"),
        ],
    }


def _table(cid: int, name: str, **extra: Any) -> dict[str, Any]:
    rec = {"id": cid, "datastore_id": 1, "name": name, "container_type": "table", "table_type": "table",
           "status": "Available", "created": T0, "deleted_at": None, "tags": [], "last_profiled": T0,
           "last_scanned": T0, "records": None, "quality_score": None}
    rec.update(extra)
    return rec


def _field(fid: int, cid: int, name: str, **extra: Any) -> dict[str, Any]:
    rec = {"id": fid, "container_id": cid, "name": name, "type": "String", "status": "active", "created": T0,
           "deleted_at": None, "tags": [], "quality_score": None}
    rec.update(extra)
    return rec


def _check(check_id: int, names: list[str], **extra: Any) -> dict[str, Any]:
    rec = {"id": check_id, "container_id": 10, "field_names": names, "rule_type": "notNull", "status": "Active",
           "is_passing": True, "created": T0, "deleted_at": None, "description": f"check {check_id}", "tags": []}
    rec.update(extra)
    return rec


def _anomaly(anomaly_id: int, check_ids: list[int], status: str, **extra: Any) -> dict[str, Any]:
    rec = {"id": anomaly_id, "uuid": f"uuid-{anomaly_id}", "container_id": 10, "check_ids": check_ids,
           "type": "record", "status": status, "created": T0, "description": None,
           "anomalous_records_count": 3, "tags": []}
    rec.update(extra)
    return rec


def big_world(containers: int, fields_per_container: int) -> dict[str, Any]:
    """One datastore with many tables, each with the same number of fields and one check."""
    doc = small_world()
    doc["containers"] = [_table(i, f"T{i:05d}") for i in range(1, containers + 1)]
    doc["fields"] = [_field(c * 1000 + j, c, f"c{j}") for c in range(1, containers + 1)
                     for j in range(fields_per_container)]
    doc["checks"] = [_check(c, ["c0"], container_id=c) for c in range(1, containers + 1)]
    doc["anomalies"] = []
    return doc
