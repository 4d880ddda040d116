"""`qatlan watch`: react to Atlan webhooks and Qualytics Flows instead of polling (issue 15).

`events` reads webhook bodies into work keys (pure), `server` is the HTTP receiver, `metrics`
the Prometheus counters. docs/watch.md describes the setup on both sides.
"""

from qatlan.watch.events import (
    AtlanEvent,
    EventError,
    QualyticsEvent,
    atlan_key,
    container_key,
    datastore_key,
    parse_atlan,
    parse_key,
    parse_qualytics,
)
from qatlan.watch.metrics import WatchMetrics
from qatlan.watch.server import ATLAN_SECRET_ENV, QUALYTICS_SECRET_ENV, ListenError, build_app, check_listen

__all__ = [
    "ATLAN_SECRET_ENV",
    "QUALYTICS_SECRET_ENV",
    "AtlanEvent",
    "EventError",
    "ListenError",
    "QualyticsEvent",
    "WatchMetrics",
    "atlan_key",
    "build_app",
    "check_listen",
    "container_key",
    "datastore_key",
    "parse_atlan",
    "parse_key",
    "parse_qualytics",
]
