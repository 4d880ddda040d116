"""Qualytics: `QualyticsClient` (client.py) and JSON → records (records.py)."""

from qatlan.clients.qualytics.client import MAX_PAGE_SIZE, QualyticsClient
from qatlan.clients.qualytics.records import container_record, datastore_record, field_counts, field_record, tags_of

__all__ = [
    "MAX_PAGE_SIZE",
    "QualyticsClient",
    "container_record",
    "datastore_record",
    "field_counts",
    "field_record",
    "tags_of",
]
