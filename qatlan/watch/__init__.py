"""`qatlan watch`: react to Atlan webhooks and Qualytics Flows instead of polling (issue 15).

`events` reads webhook bodies into work keys (pure), `server` is the HTTP receiver, `metrics`
the Prometheus counters, `poll` finds changed tables without events, `reconcile` reads,
plans and applies a batch of tables, `loop` runs it all (`Watcher`). docs/watch.md describes the setup on both sides.
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
from qatlan.watch.loop import JsonFormatter, TextFormatter, Watcher
from qatlan.watch.metrics import WatchMetrics
from qatlan.watch.poll import poll_keys
from qatlan.watch.reconcile import Outcome, Reconciler, kind_of, split_by_kind
from qatlan.watch.server import ATLAN_SECRET_ENV, QUALYTICS_SECRET_ENV, ListenError, build_app, check_listen

__all__ = [
    "ATLAN_SECRET_ENV",
    "QUALYTICS_SECRET_ENV",
    "AtlanEvent",
    "EventError",
    "JsonFormatter",
    "ListenError",
    "Outcome",
    "QualyticsEvent",
    "Reconciler",
    "TextFormatter",
    "WatchMetrics",
    "Watcher",
    "atlan_key",
    "build_app",
    "check_listen",
    "container_key",
    "datastore_key",
    "kind_of",
    "parse_atlan",
    "parse_key",
    "parse_qualytics",
    "poll_keys",
    "split_by_kind",
]
