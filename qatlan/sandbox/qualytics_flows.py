"""Qualytics Flow HTTP actions for changes to the sandbox's records (reference events.md §Qualytics).

A Flow fires on a trigger; the sandbox plays two of them:

- **Operation** (an operation finished): a container's `quality_score`, `last_profiled` or
  `last_scanned` changed (a profile or scan recorded), or a datastore's `quality_score` did.
- **Anomaly / AnomalyStatusChange**: an anomaly was added, its `status` changed (resolved,
  archived, ...), or it was deleted.

`flow_messages(store, kind, old, new, base_url)` gives the token values of each firing, and
`render(template, tokens)` fills a user's template with them. Which tokens each trigger fills
follows the Qualytics user guide's message variables (UNCONFIRMED beyond that list): an
operation gets `operation_type`, `operation_result`, `operation_message`, `target_link` (the
datastore's activity page) and the datastore's name and link, not the container's; an anomaly
gets the container's name and link. Unknown or unfilled tokens render as "" (UNCONFIRMED).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_TEMPLATE", "flow_messages", "render"]

Record = dict[str, Any]

#: the same template qatlan documents for users (qatlan.watch.events.QUALYTICS_FLOW_TEMPLATE);
#: copied, since the sandbox imports nothing of the product
DEFAULT_TEMPLATE: dict[str, str] = {
    "event": "qualytics.flow.triggered",
    "flow_name": "{{flow_name}}",
    "datastore_name": "{{datastore_name}}",
    "datastore_link": "{{datastore_link}}",
    "container_name": "{{container_name}}",
    "container_link": "{{container_link}}",
    "target_link": "{{target_link}}",
    "operation_type": "{{operation_type}}",
    "operation_result": "{{operation_result}}",
    "anomaly_type": "{{anomaly_type}}",
}
FLOW_NAME = "qatlan sandbox flow"
_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_SCAN_KEYS = ("quality_score", "last_profiled", "last_scanned")


def render(template: Any, tokens: dict[str, str]) -> Any:
    """The template with every `{{token}}` in its strings replaced (recursively)."""
    if isinstance(template, str):
        return _TOKEN.sub(lambda m: tokens.get(m.group(1), ""), template)
    if isinstance(template, dict):
        return {k: render(v, tokens) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, tokens) for v in template]
    return template


def flow_messages(store: Any, kind: str, old: Record | None, new: Record | None, base_url: str,
                  operation_id: int) -> list[dict[str, str]]:
    """The token values of each Flow firing for one record's change ([] when none fires)."""
    if kind == "containers" and old is not None and new is not None and _scanned(old, new):
        return [_operation(store, new["datastore_id"], old, new, base_url, operation_id)]
    if kind == "datastores" and old is not None and new is not None and old.get("quality_score") != new.get("quality_score"):
        return [_operation(store, new["id"], None, None, base_url, operation_id)]
    if kind == "anomalies":
        if old is not None and new is not None and old.get("status", "Active") == new.get("status", "Active"):
            return []
        return [_anomaly(store, new or old or {}, "Deleted" if new is None else new.get("status", "Active"), base_url)]
    return []


def _scanned(old: Record, new: Record) -> bool:
    return any(old.get(k) != new.get(k) for k in _SCAN_KEYS)


def _datastore_tokens(store: Any, datastore_id: int, base_url: str) -> dict[str, str]:
    ds = store.get("datastores", datastore_id) or {}
    return {"flow_name": FLOW_NAME, "datastore_name": str(ds.get("name", "")),
            "datastore_link": f"{base_url}/datastores/{datastore_id}"}


def _operation(store: Any, datastore_id: int, old: Record | None, new: Record | None, base_url: str,
               operation_id: int) -> dict[str, str]:
    kind = "scan"
    if old is not None and new is not None and old.get("last_profiled") != new.get("last_profiled") \
            and old.get("last_scanned") == new.get("last_scanned"):
        kind = "profile"
    return {
        **_datastore_tokens(store, datastore_id, base_url),
        "operation_type": kind, "operation_result": "success", "operation_message": "",
        "target_link": f"{base_url}/datastores/{datastore_id}/activity?operation_id={operation_id}",
    }


def _anomaly(store: Any, anomaly: Record, status: str, base_url: str) -> dict[str, str]:
    container = store.get("containers", anomaly.get("container_id")) or {}
    datastore_id = container.get("datastore_id", 0)
    return {
        **_datastore_tokens(store, datastore_id, base_url),
        "container_name": str(container.get("name", "")),
        "container_link": f"{base_url}/datastores/{datastore_id}/containers/{container.get('id', 0)}/overview",
        "anomaly_type": str(anomaly.get("type") or "record"),
        "anomaly_message": str(anomaly.get("message") or ""),
        "anomaly_status": status,
        "target_link": f"{base_url}/datastores/{datastore_id}/anomalies?id={anomaly.get('id', 0)}",
    }
