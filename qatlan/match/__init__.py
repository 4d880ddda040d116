"""Which Atlan asset is which Qualytics asset: pure functions over a snapshot and the config.

    match(snapshot, rules, domain_guids)   every datastore, container and field matched or skipped
    resolve_domains(domains, names)        the configured domains (with subdomains) as GUIDs
    in_scope(asset, domain_guids)          whether an asset is in them

The rules are in docs/matching.md.
"""

from qatlan.match.domains import in_scope, resolve_domains
from qatlan.match.index import TABLE_TYPES
from qatlan.match.matcher import (
    LEVELS,
    SKIP_REASONS,
    DatastoreMatch,
    MatchResult,
    match,
    match_datastores,
    rules_by_datastore,
)

__all__ = [
    "LEVELS",
    "SKIP_REASONS",
    "TABLE_TYPES",
    "DatastoreMatch",
    "MatchResult",
    "in_scope",
    "match",
    "match_datastores",
    "resolve_domains",
    "rules_by_datastore",
]
