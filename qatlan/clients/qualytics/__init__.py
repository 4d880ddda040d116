"""Qualytics: `QualyticsClient` (client.py) and JSON → records (records.py)."""

from qatlan.clients.qualytics.client import MAX_PAGE_SIZE, QualyticsClient, qualytics_api_root
from qatlan.clients.qualytics.records import container_record, datastore_record, field_counts, field_record, tags_of

__all__ = [
    "MAX_PAGE_SIZE",
    "QualyticsClient",
    "container_record",
    "datastore_record",
    "field_counts",
    "field_record",
    "qualytics_api_root",
    "tags_of",
]
