"""Pure converters from Qualytics API items to `qatlan.model` records, and field counts.

Shapes follow the Qualytics reference: scores and counts of datastores and containers live in
`metrics`, a field's score is its own `quality_score`, tags are `global_tags` objects and an
external tag carries the full `integration` object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from qatlan.errors import ApiResponseError
from qatlan.model import QContainer, QDatastore, QField, QTag, QTagDef, QualityScore

__all__ = [
    "FieldKey",
    "container_record",
    "datastore_record",
    "field_counts",
    "field_record",
    "tag_def_record",
    "tags_of",
]

FieldKey = tuple[int, str]


def datastore_record(item: Mapping[str, Any]) -> QDatastore:
    """A `QDatastore` from a `GET /datastores` item (jdbc, dfs or native)."""
    metrics = item.get("metrics") or {}
    return QDatastore(
        id=_required_int(item, "id", "datastore"),
        name=_required_str(item, "name", "datastore"),
        store_type=str(item.get("store_type") or ""),
        connector=str(item.get("type") or ""),
        host=item.get("host"),
        # native datastores name their database `catalog`
        database=item.get("database") if item.get("database") is not None else item.get("catalog"),
        schema=item.get("schema"),
        tags=tags_of(item),
        score=QualityScore.from_api(metrics.get("quality_score")),
        active_checks=_opt_int(metrics.get("active_checks")),
        active_anomalies=_opt_int(metrics.get("active_anomalies")),
    )


def container_record(item: Mapping[str, Any]) -> QContainer:
    """A `QContainer` from a `GET /containers` item (table, view, file or computed)."""
    metrics = item.get("metrics") or {}
    datastore = item.get("datastore") or {}
    datastore_id = datastore.get("id") if isinstance(datastore, Mapping) else None
    if datastore_id is None:
        datastore_id = item.get("datastore_id")
    if not isinstance(datastore_id, int) or isinstance(datastore_id, bool):
        raise _bad("container", item, "datastore.id")
    return QContainer(
        id=_required_int(item, "id", "container"),
        datastore_id=datastore_id,
        name=_required_str(item, "name", "container"),
        container_type=str(item.get("container_type") or ""),
        table_type=item.get("table_type"),
        status=item.get("status"),
        tags=tags_of(item),
        score=QualityScore.from_api(metrics.get("quality_score")),
        active_checks=_opt_int(metrics.get("active_checks")),
        active_anomalies=_opt_int(metrics.get("active_anomalies")),
        last_profiled=metrics.get("last_profiled"),
        last_scanned=metrics.get("last_scanned"),
    )


def field_record(
    item: Mapping[str, Any],
    container_id: int,
    active_checks: int | None = None,
    active_anomalies: int | None = None,
) -> QField:
    """A `QField` from a `GET /containers/{id}/fields` item and its counts (`field_counts`)."""
    return QField(
        id=_required_int(item, "id", "field"),
        container_id=container_id,
        name=_required_str(item, "name", "field"),
        tags=tags_of(item),
        score=QualityScore.from_api(item.get("quality_score")),
        active_checks=active_checks,
        active_anomalies=active_anomalies,
        status=item.get("status"),
    )


def _tag_parts(tag: Mapping[str, Any]) -> tuple[str, str, int | None]:
    """(name, type, integration id of an external tag) of a Qualytics global-tag object."""
    kind = str(tag.get("type") or "global")
    integration = tag.get("integration")
    integration_id = integration.get("id") if isinstance(integration, Mapping) else None
    if integration_id is None:
        integration_id = tag.get("integration_id")
    return str(tag["name"]), kind, integration_id if kind == "external" else None


def tags_of(item: Mapping[str, Any]) -> tuple[QTag, ...]:
    """`global_tags` objects as `QTag`s, sorted by name (external ones keep their integration)."""
    tags = [QTag(*_tag_parts(tag)) for tag in item.get("global_tags") or ()
            if isinstance(tag, Mapping) and tag.get("name")]
    return tuple(sorted(tags, key=lambda t: (t.name, t.type)))


def tag_def_record(item: Mapping[str, Any]) -> QTagDef:
    """A `QTagDef` from a `GET /global-tags` item."""
    return QTagDef(*_tag_parts(item))


def field_counts(
    checks: Iterable[Mapping[str, Any]], anomalies: Iterable[Mapping[str, Any]]
) -> dict[FieldKey, tuple[int, int]]:
    """`{(container_id, field_name): (active_checks, active_anomalies)}` for every field named.

    A check concerns the fields in its `fields[].name`; an anomaly concerns the fields of the
    checks it failed (`failed_checks[].quality_check.fields`), once per field. Only `Active`
    checks (or ones without a status, as the list was already filtered) that are not archived,
    and only `Active` anomalies, count. Fields that nothing concerns are absent.
    """
    check_n: dict[FieldKey, int] = defaultdict(int)
    anomaly_n: dict[FieldKey, int] = defaultdict(int)
    for check in checks:
        if check.get("status", "Active") not in ("Active", None) or check.get("deleted_at"):
            continue
        container_id = _container_id(check)
        for name in _field_names(check):
            check_n[(container_id, name)] += 1
    for anomaly in anomalies:
        if anomaly.get("status") != "Active" or anomaly.get("archived"):
            continue
        container_id = _container_id(anomaly)
        names: set[str] = set()
        for failed in anomaly.get("failed_checks") or ():
            names.update(_field_names((failed or {}).get("quality_check") or {}))
        for name in names:
            anomaly_n[(container_id, name)] += 1
    return {k: (check_n.get(k, 0), anomaly_n.get(k, 0)) for k in sorted({*check_n, *anomaly_n}, key=str)}


def _field_names(check: Mapping[str, Any]) -> set[str]:
    return {
        str(f["name"]) for f in check.get("fields") or ()
        if isinstance(f, Mapping) and f.get("name")
    }


def _container_id(item: Mapping[str, Any]) -> int:
    container = item.get("container")
    cid = container.get("id") if isinstance(container, Mapping) else item.get("container_id")
    if not isinstance(cid, int):
        raise _bad("check or anomaly", item, "container.id")
    return cid


# --------------------------------------------------------------------------- small helpers


def _required_int(item: Mapping[str, Any], key: str, what: str) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(what, item, key)
    return value


def _required_str(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _bad(what, item, key)
    return value


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bad(what: str, item: Mapping[str, Any], key: str) -> ApiResponseError:
    ident = item.get("id") if isinstance(item, Mapping) else None
    return ApiResponseError(
        f"Qualytics returned a {what} (id {ident}) without a valid {key!r}",
        service="qualytics",
        hint="the server may not be the Qualytics API qatlan expects",
    )
