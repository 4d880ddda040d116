"""Qualytics API response shapes built from stored world records (reference §2-§8).

Each function takes the store and one stored record and returns the JSON object the real API
serves, with every key the OpenAPI schema marks as required. Keys the world does not hold are
filled with the real server's defaults (or null), and stored extra keys never leak.
"""

from __future__ import annotations

from typing import Any

from qatlan.sandbox.qualytics_store import QualyticsStore, is_archived_anomaly

SCORE_KEYS = ("total", "completeness", "coverage", "conformity", "consistency", "precision",
              "timeliness", "volumetrics", "accuracy", "created")
_SCORE_EXTRAS = ("decay_period_days", "dimensions", "explanation")

_DATASTORE_STUB_DEFAULTS: dict[str, Any] = {
    "enrichment_only": False,
    "enrichment_source_record_limit": 10,
    "enrichment_remediation_strategy": "none",
    "enrichment_auto_sync": False,
    "high_count_rollup_threshold": 10,
    "default_volumetric_tracking_enabled": True,
    "default_freshness_tracking_enabled": True,
    "default_automate_volumetric_checks": False,
    "default_automate_freshness_checks": False,
    "default_ai_effort": "off",
    "default_infer_as_draft": False,
}
_TRACKING_DEFAULTS: dict[str, Any] = {
    "volumetric_tracking_enabled": True,
    "freshness_tracking_enabled": True,
    "automate_volumetric_checks": False,
    "automate_freshness_checks": False,
}
_INTEGRATION_DEFAULTS: dict[str, Any] = {
    "api_url": None,
    "connected": True,
    "overwrite": False,
    "event_driven": True,
    "enable_announcements": True,
    "status": "synced",
    "category": "data_catalog",
    "last_synced": None,
}
_INTEGRATION_SECRETS = frozenset({"api_access_token", "api_refresh_token", "api_service_token"})


def _get(rec: dict[str, Any], key: str, default: Any) -> Any:
    value = rec.get(key)
    return default if value is None else value


def quality_score(score: Any) -> dict[str, Any] | None:
    """A QualityScore with `total`, the eight dimensions and `created` (null when never scored)."""
    if not isinstance(score, dict):
        return None
    out = {key: score.get(key) for key in SCORE_KEYS}
    out.update({key: score[key] for key in _SCORE_EXTRAS if key in score})
    return out


def integration(rec: dict[str, Any]) -> dict[str, Any]:
    out = {"id": rec["id"], "created": rec.get("created"), "type": rec["type"]}
    out.update({key: _get(rec, key, default) for key, default in _INTEGRATION_DEFAULTS.items()})
    out["parameters"] = dict(_get(rec, "parameters", {"domains": []}))
    if rec.get("message") is not None:
        out["message"] = rec["message"]
    return out


def embedded_tag(store: QualyticsStore, tag: dict[str, Any]) -> dict[str, Any]:
    """A GlobalTag / ExternalTag as embedded in assets' `global_tags` (no id, no created)."""
    out = {
        "type": tag["type"],
        "name": tag["name"],
        "color": tag.get("color"),
        "description": tag.get("description"),
        "category": tag.get("category"),
        "weight_modifier": _get(tag, "weight_modifier", 0),
    }
    if tag["type"] == "external":
        linked = store.get("integrations", tag.get("integration_id"))
        out["integration"] = integration(linked) if linked else None
    return out


def full_tag(store: QualyticsStore, tag: dict[str, Any]) -> dict[str, Any]:
    """GetGlobalTag / GetExternalTag as served by /api/global-tags."""
    return {"id": tag["id"], "created": tag.get("created"), **embedded_tag(store, tag)}


def global_tags(store: QualyticsStore, rec: dict[str, Any]) -> list[dict[str, Any]]:
    # UNCONFIRMED: whether inherited tags are listed; the sandbox lists directly applied tags only
    tags = (store.get("global_tags", name) for name in rec.get("tags") or ())
    return [embedded_tag(store, t) for t in tags if t is not None]


def datastore_stub(ds: dict[str, Any]) -> dict[str, Any]:
    out = {"id": ds["id"], "name": ds["name"], "store_type": ds["store_type"], "type": ds["type"]}
    out.update({key: _get(ds, key, default) for key, default in _DATASTORE_STUB_DEFAULTS.items()})
    out["connected"] = _get(ds, "connected", True)
    out["description"] = ds.get("description")
    return out


def datastore_metrics(store: QualyticsStore, ds: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = dict(store.datastore_counts(ds["id"]))
    metrics["partitions"] = None
    metrics["quality_score"] = quality_score(ds.get("quality_score"))
    metrics["latest_observability_measurement"] = None
    return metrics


def datastore(store: QualyticsStore, ds: dict[str, Any]) -> dict[str, Any]:
    """GetJdbcDatastore / GetDfsDatastore / GetNativeDatastore by `store_type`."""
    out = datastore_stub(ds)
    out.update({
        "created": ds.get("created"),
        "has_scheduled_operations": False,
        "enrichment_prefix": ds.get("enrichment_prefix"),
        "metrics": datastore_metrics(store, ds),
        "connection_id": ds.get("connection_id"),
        "global_tags": global_tags(store, ds),
        "favorite": False,
        "group": None,
        "teams": [],
        "additional_metadata": {},
        "latest_operation": None,
        "linked_datastores": [],
        "enrich_datastore": None,
    })
    if ds["store_type"] == "jdbc":
        out.update({key: ds.get(key) for key in ("host", "port", "database", "schema", "username")})
        out["jdbc_url"] = ds.get("jdbc_url") or _jdbc_url(ds)
        out["parameters"] = {}
    elif ds["store_type"] == "dfs":
        out["uri"] = ds.get("uri")
        out["root_path"] = ds.get("root_path")
    else:
        out["catalog"] = ds.get("catalog", ds.get("database"))
        out["schema"] = ds.get("schema")
        out["has_password"] = False
    return out


def _jdbc_url(ds: dict[str, Any]) -> str:
    host = ds.get("host") or "localhost"
    port = f":{ds['port']}" if ds.get("port") else ""
    return f"jdbc:{ds['type']}://{host}{port}/{ds.get('database') or ''}"


def container_stub(c: dict[str, Any]) -> dict[str, Any]:
    out = {"id": c["id"], "name": c["name"], "container_type": c["container_type"]}
    if c["container_type"] == "table":
        out["table_type"] = _get(c, "table_type", "table")
    out.update({key: _get(c, key, default) for key, default in _TRACKING_DEFAULTS.items()})
    out.update({"deleted_at": c.get("deleted_at"), "description": c.get("description"),
                "display_name": c.get("display_name")})
    return out


def container_metrics(store: QualyticsStore, c: dict[str, Any]) -> dict[str, Any]:
    counts = store.container_counts(c["id"])
    metrics = {key: counts[key] for key in ("fields", "active_checks", "important_checks", "passing_checks",
                                            "failing_checks", "anomalies", "active_anomalies")}
    metrics.update({
        "last_profiled": c.get("last_profiled"),
        "last_scanned": c.get("last_scanned"),
        "records": c.get("records"),
        "completeness": c.get("completeness"),
        "quality_score": quality_score(c.get("quality_score")),
    })
    return metrics


def container(store: QualyticsStore, c: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    """GetTableContainer / GetFileContainer / GetComputed*Container by `container_type`."""
    out = container_stub(c)
    ds = store.get("datastores", c["datastore_id"])
    out.update({
        "created": c.get("created"),
        "datastore": datastore_stub(ds) if ds else None,
        "status": _get(c, "status", "Available"),
        "metrics": container_metrics(store, c),
        "global_tags": global_tags(store, c),
        "favorite": False,
        "additional_metadata": {},
        "purpose": c.get("purpose"),
    })
    out.update(_container_specifics(store, c))
    if detail:
        out["computed_fields"] = []
    return out


def _container_specifics(store: QualyticsStore, c: dict[str, Any]) -> dict[str, Any]:
    kind = c["container_type"]
    if kind == "file":
        keys = ("relative_path", "file_name", "extension", "last_modified", "file_format", "has_header")
        return {key: c.get(key) for key in keys}
    if kind == "computed_table":
        return {"query": c.get("query"), "owner": None, "last_editor": None}
    if kind == "computed_file":
        source = store.get("containers", c.get("source_container_id"))
        return {"source_container": container_stub(source) if source else None,
                "select_clause": _get(c, "select_clause", "*"), "where_clause": c.get("where_clause"),
                "group_by_clause": c.get("group_by_clause")}
    if kind == "computed_join":
        return {"right_datastore_id": _get(c, "right_datastore_id", c["datastore_id"]),
                "query": c.get("query"), "join_type": _get(c, "join_type", "inner"), "sources": []}
    return {}


def field(store: QualyticsStore, f: dict[str, Any]) -> dict[str, Any]:
    """A Field (reference §5)."""
    return {
        "id": f["id"],
        "created": f.get("created"),
        "name": f["name"],
        "type": _get(f, "type", "Unknown"),
        "status": _get(f, "status", "active"),
        "completeness": f.get("completeness"),
        "weight": f.get("weight"),
        "global_tags": global_tags(store, f),
        "quality_score": quality_score(f.get("quality_score")),
        "deleted_at": f.get("deleted_at"),
        "description": f.get("description"),
        "display_name": f.get("display_name"),
        "native_type": f.get("native_type"),
        "nullable": f.get("nullable"),
        "parent_field_id": None,
        "latest_profile_id": None,
        "additional_metadata": {},
    }


def field_profile(store: QualyticsStore, f: dict[str, Any]) -> dict[str, Any]:
    """A GetFieldProfileListing-like item: the field, its per-field counts, no statistics."""
    checks, anomalies = store.field_counts(f["container_id"]).get(f["name"], (0, 0))
    stats = dict.fromkeys(("min", "max", "mean", "median", "std_dev", "q1", "q3", "histogram_buckets"))
    return {
        "id": f["id"],
        "created": f.get("created"),
        "field_name": f["name"],
        "field_type": _get(f, "type", "Unknown"),
        "completeness": f.get("completeness"),
        "active_quality_check_count": checks,
        "active_anomaly_count": anomalies,
        "field": field(store, f),
        "container_profile": None,
        **stats,
    }


def check_field(store: QualyticsStore, f: dict[str, Any]) -> dict[str, Any]:
    """GetQualityCheckField."""
    return {"id": f["id"], "name": f["name"], "type": _get(f, "type", "Unknown"),
            "status": _get(f, "status", "active"), "global_tags": global_tags(store, f),
            "quality_score": quality_score(f.get("quality_score"))}


def check(store: QualyticsStore, chk: dict[str, Any]) -> dict[str, Any]:
    """GetQualityCheckListing (reference §6.3)."""
    c = store.get("containers", chk["container_id"])
    ds = store.get("datastores", c["datastore_id"]) if c else None
    open_count, active_count = store.check_anomaly_counts(chk["id"])
    names = chk.get("field_names") or []
    return {
        "id": chk["id"],
        "created": chk.get("created"),
        "rule_type": chk["rule_type"],
        "inferred": _get(chk, "inferred", False),
        "coverage": _get(chk, "coverage", 1.0),
        "is_template": False,
        "is_new": _get(chk, "is_new", False),
        "num_container_scans": 0,
        "template_checks_count": 0,
        "anomaly_count": open_count,
        "active_anomaly_count": active_count,
        "weight": _get(chk, "weight", 0),
        "container": container_stub(c) if c else None,
        "datastore": datastore_stub(ds) if ds else None,
        "description": chk.get("description"),
        "fields": [check_field(store, f) for f in store.fields_named(chk["container_id"], names)],
        "filter": chk.get("filter"),
        "global_tags": global_tags(store, chk),
        "status": _get(chk, "status", "Active"),
        "is_passing": chk.get("is_passing"),
        "last_asserted": chk.get("last_asserted"),
        "last_updated": chk.get("last_updated"),
        "deleted_at": chk.get("deleted_at"),
        "properties": dict(_get(chk, "properties", {})),
        "template": None,
        "template_locked": False,
        "favorite": False,
        "additional_metadata": {},
    }


def anomaly(store: QualyticsStore, a: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    """GetAnomalyListing (reference §6.2); `detail` adds GetAnomaly's keys."""
    c = store.get("containers", a["container_id"])
    ds = store.get("datastores", c["datastore_id"]) if c else None
    checks = (store.get("checks", cid) for cid in a.get("check_ids") or ())
    out = {
        "id": a["id"],
        "uuid": a.get("uuid"),
        "created": a.get("created"),
        "type": _get(a, "type", "record"),
        "is_new": _get(a, "is_new", False),
        "archived": is_archived_anomaly(a),
        "status": _get(a, "status", "Active"),
        "source_enriched": False,
        "datastore": datastore_stub(ds) if ds else None,
        "container": container_stub(c) if c else None,
        "partition": {"name": c["name"] if c else None, "location": None},
        "failed_checks": [{"quality_check": check(store, chk), "message": _failed_message(a, chk)}
                          for chk in checks if chk is not None],
        "weight": _get(a, "weight", 0),
        "anomalous_records_count": a.get("anomalous_records_count"),
        "assignees": [],
        "description": a.get("description"),
        "fingerprint": None,
        "global_tags": global_tags(store, a),
        "message": a.get("message"),
    }
    if detail:
        out.update({"operation": None, "fingerprint_source": None})
    return out


def _failed_message(a: dict[str, Any], chk: dict[str, Any]) -> str:
    return a.get("message") or chk.get("description") or f"{chk['rule_type']} check failed"


def user(rec: dict[str, Any]) -> dict[str, Any]:
    """The current user (`GET /api/users/me`), UserStub-like."""
    out = {"id": rec.get("id"), "created": rec.get("created"), "user_id": rec.get("user_id", str(rec.get("id"))),
           "user_name": rec.get("user_name"), "user_type": rec.get("user_type", "Human"), "name": rec.get("name"),
           "email": rec.get("email"), "picture": None, "role": rec.get("role", "Member"),
           "last_login": rec.get("last_login"), "deleted_at": None}
    return out
