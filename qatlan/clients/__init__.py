"""HTTP clients for Atlan and Qualytics: the only code that knows their JSON.

    HttpClient        one service: Bearer auth, retries, rate limit, concurrency, error mapping
    ├── AtlanClient     search, typedefs, domains, assets and Links as records; plan changes written
    └── QualyticsClient datastores, containers, fields, tags and counts as records; tag writes
    open_clients      both clients from a Config (Clients)

The clients return `qatlan.model` records, take `qatlan.plan` changes and raise
`qatlan.errors.ApiError` subclasses; nothing outside this package sees httpx or API JSON.
"""

from qatlan.clients.atlan import ASSET_TYPES, READ_LIMIT, AtlanClient, Entities, Names
from qatlan.clients.connect import Clients, open_clients
from qatlan.clients.http import (
    RETRY_STATUSES,
    HttpClient,
    HttpStats,
    gather,
    last_call_seconds,
    reset_call_seconds,
)
from qatlan.clients.qualytics import QualyticsClient

__all__ = [
    "ASSET_TYPES",
    "AtlanClient",
    "Clients",
    "Entities",
    "HttpClient",
    "HttpStats",
    "Names",
    "QualyticsClient",
    "READ_LIMIT",
    "RETRY_STATUSES",
    "gather",
    "last_call_seconds",
    "open_clients",
    "reset_call_seconds",
]
