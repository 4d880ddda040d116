"""Atlan: `AtlanClient` (client.py), JSON → records (records.py), changes → entities and
typedef payloads (writes.py), and index-search paging (search.py)."""

from qatlan.clients.atlan.client import ASSET_TYPES, READ_LIMIT, AtlanClient, Entities
from qatlan.clients.atlan.records import asset_record, connection_record, domain_record, link_record
from qatlan.clients.atlan.search import SearchPager, with_filter
from qatlan.clients.atlan.writes import Names

__all__ = [
    "ASSET_TYPES",
    "READ_LIMIT",
    "AtlanClient",
    "Entities",
    "Names",
    "SearchPager",
    "asset_record",
    "connection_record",
    "domain_record",
    "link_record",
    "with_filter",
]
