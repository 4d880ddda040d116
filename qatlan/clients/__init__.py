"""HTTP clients for Atlan and Qualytics.

    HttpClient        one service: Bearer auth, retries, rate limit, concurrency, error mapping
    ├── AtlanClient     search (offset then timestamp paging), typedefs, domains, assets, writes
    └── QualyticsClient paged lists, datastores/containers/fields/checks/anomalies, tags, writes

The clients return parsed JSON or `qatlan.model` records and raise `qatlan.errors.ApiError`
subclasses; nothing outside this package sees httpx.
"""

from __future__ import annotations

from qatlan.clients._http import (
    RETRY_STATUSES,
    HttpClient,
    HttpStats,
    gather,
    last_call_seconds,
    reset_call_seconds,
)
from qatlan.clients.atlan import (
    ASSET_TYPES,
    AtlanClient,
    asset_record,
    connection_record,
    direct_tags,
    domain_record,
    link_record,
    resolve_domains,
)
from qatlan.clients.qualytics import (
    QualyticsClient,
    container_record,
    datastore_record,
    field_counts,
    field_record,
    qualytics_api_root,
    tags_of,
)

__all__ = [
    "ASSET_TYPES",
    "AtlanClient",
    "HttpClient",
    "HttpStats",
    "QualyticsClient",
    "RETRY_STATUSES",
    "asset_record",
    "connection_record",
    "container_record",
    "datastore_record",
    "direct_tags",
    "domain_record",
    "field_counts",
    "field_record",
    "gather",
    "last_call_seconds",
    "link_record",
    "qualytics_api_root",
    "reset_call_seconds",
    "resolve_domains",
    "tags_of",
]
