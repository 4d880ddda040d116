"""What `qatlan watch` counts, served at /metrics in the Prometheus text format.

`WatchMetrics` owns its own `CollectorRegistry` rather than prometheus-client's global one, so
two watchers in one process (tests, or a library user) never share or double-register
counters, and /metrics shows only qatlan's series. docs/watch.md lists every metric.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "REJECT_REASONS", "SIDES", "SOURCES", "WatchMetrics"]

#: the text exposition format generate_latest writes (names here are all legacy-valid)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SOURCES = ("atlan", "qualytics")
SIDES = ("atlan", "qualytics")
#: why a webhook request was refused: bad or missing secret, too big, unreadable, wrong method
REJECT_REASONS = ("secret", "size", "malformed", "method")
#: seconds: from a key's first event to its reconcile starting (a debounce window is seconds)
_DEBOUNCE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
#: seconds: one reconcile (read both sides for a few tables, plan, apply) up to a full resync
_RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class WatchMetrics:
    """Every metric of one watcher, registered in `self.registry`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "qatlan_watch_events_total", "Webhook events accepted, by source and event type",
            ["source", "type"], registry=r)
        self.rejected = Counter(
            "qatlan_watch_rejected_total", "Webhook requests refused, by source and reason "
            "(secret, size, malformed, method)", ["source", "reason"], registry=r)
        self.own_writes = Counter(
            "qatlan_watch_own_writes_total", "Work keys dropped unreconciled: every Atlan event that "
            "queued them reported one of qatlan's own writes", registry=r)
        self.queue_depth = Gauge(
            "qatlan_watch_queue_depth", "Work keys waiting to be reconciled", registry=r)
        self.debounce = Histogram(
            "qatlan_watch_debounce_seconds", "Time from a key's first event to its reconcile start",
            buckets=_DEBOUNCE_BUCKETS, registry=r)
        self.reconcile = Histogram(
            "qatlan_watch_reconcile_seconds", "Duration of one reconcile", buckets=_RECONCILE_BUCKETS, registry=r)
        self.requests = Counter(
            "qatlan_watch_requests_total", "API requests the watcher made, by side", ["side"], registry=r)
        self.apply_outcomes = Counter(
            "qatlan_watch_apply_outcomes_total", "Outcomes of applied changes (created, updated, ...)",
            ["outcome"], registry=r)
        self.throttled = Counter(
            "qatlan_watch_429_total", "429 Too Many Requests answers received, by side", ["side"], registry=r)
        self.last_reconcile = Gauge(
            "qatlan_watch_last_reconcile_timestamp_seconds", "Unix time the last reconcile finished", registry=r)
        self.side_up = Gauge(
            "qatlan_watch_side_up", "1 when the last request to a side succeeded, else 0", ["side"], registry=r)
        self._zero_series()

    def _zero_series(self) -> None:
        """Create the known label combinations at 0, so a dashboard sees them before any event."""
        for source in SOURCES:
            for reason in REJECT_REASONS:
                self.rejected.labels(source=source, reason=reason)
        for side in SIDES:
            self.requests.labels(side=side)
            self.throttled.labels(side=side)
            self.side_up.labels(side=side)

    def event(self, source: str, event_type: str) -> None:
        self.events.labels(source=source, type=event_type).inc()

    def reject(self, source: str, reason: str) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; known: {', '.join(REJECT_REASONS)}")
        self.rejected.labels(source=source, reason=reason).inc()

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE
