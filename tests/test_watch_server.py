"""The watcher's HTTP receiver (qatlan.watch.server, issue 15): secrets, limits, keys, health."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from qatlan.errors import ConfigError
from qatlan.watch.events import ATLAN_VALIDATION_BODY
from qatlan.watch.metrics import WatchMetrics
from qatlan.watch.server import ListenError, build_app, check_listen

ATLAN_SECRET = "atlan-s3cret-value-0123456789"
FLOW_SECRET = "flow-s3cret-value-9876543210"
TABLE = "default/snowflake/1/DB/S/ORDERS"
COLUMN_EVENT = {
    "version": {"version": "1.0.0", "versionParts": [1]}, "msgSplitIdx": 1, "msgSplitCount": 1,
    "message": {"type": "ENTITY_NOTIFICATION_V2", "operationType": "CLASSIFICATION_ADD", "eventTime": 1,
                "entity": {"typeName": "Column", "guid": "g", "attributes": {"qualifiedName": f"{TABLE}/ID",
                                                                             "tableQualifiedName": TABLE}}},
}
FLOW_BODY = {"event": "qualytics.flow.triggered", "operation_type": "scan",
             "container_link": "https://acme.qualytics.io/datastores/3/containers/42/overview"}


class Harness:
    """An app with a recording on_keys, its metrics and a switchable health report."""

    def __init__(self, **kwargs):
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self.metrics = WatchMetrics()
        self.health_report = {"ok": True, "queue": 0}
        self.fail = False
        options = {"atlan_secret": ATLAN_SECRET, "qualytics_secret": FLOW_SECRET, **kwargs}
        self.app = build_app(self.on_keys, metrics=self.metrics, health=lambda: self.health_report, **options)
        self.client = TestClient(self.app)

    def on_keys(self, source, event_type, keys):
        if self.fail:
            raise RuntimeError("queue full")
        self.calls.append((source, event_type, keys))

    def metric(self, text: str) -> float:
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(text + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no series {text}")


@pytest.fixture
def harness():
    return Harness()


def atlan_headers(secret=ATLAN_SECRET):
    return {"x-atlan-signing-secret": secret}


# ---- secrets -----------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, atlan_headers("wrong"), atlan_headers(""), {"authorization": f"Bearer {ATLAN_SECRET}"}])
def test_atlan_without_the_right_secret_is_401_and_queues_nothing(harness, caplog, headers):
    caplog.set_level(logging.DEBUG)
    response = harness.client.post("/webhooks/atlan", json=COLUMN_EVENT, headers=headers)
    assert response.status_code == 401
    assert "secret" in response.json()["error"]
    assert harness.calls == []
    assert harness.metric('qatlan_watch_rejected_total{reason="secret",source="atlan"}') == 1
    assert "reason=secret" in caplog.text
    assert ATLAN_SECRET not in caplog.text and TABLE not in caplog.text


@pytest.mark.parametrize("headers", [
    {}, {"x-qualytics-secret": "nope"}, {"authorization": "Bearer nope"}, {"authorization": f"Basic {FLOW_SECRET}"},
    {"x-atlan-signing-secret": FLOW_SECRET},
])
def test_qualytics_without_the_right_secret_is_401(harness, caplog, headers):
    caplog.set_level(logging.DEBUG)
    response = harness.client.post("/webhooks/qualytics", json=FLOW_BODY, headers=headers)
    assert response.status_code == 401 and harness.calls == []
    assert FLOW_SECRET not in caplog.text


@pytest.mark.parametrize("headers", [{"x-qualytics-secret": FLOW_SECRET}, {"authorization": f"Bearer {FLOW_SECRET}"}])
def test_qualytics_accepts_the_secret_as_header_or_bearer_token(harness, headers):
    response = harness.client.post("/webhooks/qualytics", json=FLOW_BODY, headers=headers)
    assert (response.status_code, response.json()) == (202, {"queued": 1})
    assert harness.calls == [("qualytics", "scan", ("q:c:42",))]


def test_the_secret_is_checked_before_the_body_is_read(harness):
    # a body that would be 413 and 400 still answers 401 when unsigned
    response = harness.client.post("/webhooks/atlan", content=b"x" * 2_000_000)
    assert response.status_code == 401


def test_a_source_without_a_secret_refuses_everything_unless_unsigned_is_allowed():
    closed = Harness(atlan_secret=None)
    response = closed.client.post("/webhooks/atlan", json=COLUMN_EVENT, headers=atlan_headers())
    assert response.status_code == 401 and "QATLAN_ATLAN_WEBHOOK_SECRET" in response.json()["error"]
    open_ = Harness(atlan_secret=None, qualytics_secret=None, allow_unsigned=True)
    assert open_.client.post("/webhooks/atlan", json=COLUMN_EVENT).status_code == 202
    assert open_.client.post("/webhooks/qualytics", json=FLOW_BODY).status_code == 202


def test_an_empty_secret_counts_as_not_configured():
    empty = Harness(atlan_secret="")
    assert empty.client.post("/webhooks/atlan", json=COLUMN_EVENT, headers=atlan_headers("")).status_code == 401


def test_allow_unsigned_still_checks_a_configured_secret():
    half = Harness(qualytics_secret=None, allow_unsigned=True)
    assert half.client.post("/webhooks/atlan", json=COLUMN_EVENT).status_code == 401


# ---- bodies ------------------------------------------------------------------------------

def test_the_validation_request_is_200_and_queues_nothing(harness):
    response = harness.client.post("/webhooks/atlan", json=ATLAN_VALIDATION_BODY, headers=atlan_headers())
    assert response.status_code == 200 and harness.calls == []
    assert harness.metric('qatlan_watch_events_total{source="atlan",type="validation"}') == 1


def test_an_event_queues_its_keys_and_answers_202(harness):
    response = harness.client.post("/webhooks/atlan", json=COLUMN_EVENT, headers=atlan_headers())
    assert (response.status_code, response.json()) == (202, {"queued": 1})
    assert harness.calls == [("atlan", "CLASSIFICATION_ADD", (f"a:{TABLE}",))]
    assert harness.metric('qatlan_watch_events_total{source="atlan",type="CLASSIFICATION_ADD"}') == 1


def test_an_ignored_event_is_200_without_a_call(harness):
    body = {"message": {"operationType": "ENTITY_UPDATE", "entity": {"typeName": "Schema", "attributes": {}}}}
    response = harness.client.post("/webhooks/atlan", json=body, headers=atlan_headers())
    assert response.status_code == 200 and response.json()["queued"] == 0 and harness.calls == []


def test_an_async_on_keys_is_awaited():
    seen = []

    async def on_keys(source, event_type, keys):
        seen.append(keys)

    app = build_app(on_keys, atlan_secret=ATLAN_SECRET, qualytics_secret=None, metrics=WatchMetrics(), health=dict)
    response = TestClient(app).post("/webhooks/atlan", json=COLUMN_EVENT, headers=atlan_headers())
    assert response.status_code == 202 and seen == [(f"a:{TABLE}",)]


def test_a_failing_on_keys_is_503_so_the_sender_retries(harness, caplog):
    harness.fail = True
    response = harness.client.post("/webhooks/atlan", json=COLUMN_EVENT, headers=atlan_headers())
    assert response.status_code == 503 and response.headers["retry-after"]
    assert "queue full" not in caplog.text


@pytest.mark.parametrize("source, body", [("atlan", b"{nope"), ("atlan", b'{"message": 3}'), ("qualytics", b'{"a": 1}')])
def test_malformed_bodies_are_400(harness, source, body):
    headers = {**atlan_headers(), "x-qualytics-secret": FLOW_SECRET}
    response = harness.client.post(f"/webhooks/{source}", content=body, headers=headers)
    assert response.status_code == 400 and response.json()["error"]
    assert harness.calls == []
    assert harness.metric(f'qatlan_watch_rejected_total{{reason="malformed",source="{source}"}}') == 1


def test_a_body_over_the_limit_is_413_by_content_length():
    small = Harness(max_body=100)
    response = small.client.post("/webhooks/atlan", content=b"x" * 101, headers=atlan_headers())
    assert response.status_code == 413 and small.calls == []
    assert small.metric('qatlan_watch_rejected_total{reason="size",source="atlan"}') == 1


def test_a_streamed_body_over_the_limit_is_413():
    small = Harness(max_body=100)
    response = small.client.post("/webhooks/atlan", content=iter([b"x" * 60, b"y" * 60]), headers=atlan_headers())
    assert response.status_code == 413 and small.calls == []


def test_other_methods_are_405_and_counted(harness):
    response = harness.client.get("/webhooks/atlan")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert harness.metric('qatlan_watch_rejected_total{reason="method",source="atlan"}') == 1


# ---- health and metrics ------------------------------------------------------------------

def test_healthz_reports_health_and_503_when_not_ok(harness):
    assert (harness.client.get("/healthz").status_code, harness.client.get("/healthz").json()) == (200, harness.health_report)
    harness.health_report = {"ok": False, "atlan": "down"}
    assert harness.client.get("/healthz").status_code == 503


def test_healthz_is_503_when_the_check_itself_fails():
    def broken():
        raise RuntimeError("boom")

    app = build_app(lambda *a: None, atlan_secret=None, qualytics_secret=None, metrics=WatchMetrics(), health=broken)
    response = TestClient(app).get("/healthz")
    assert response.status_code == 503 and response.json()["ok"] is False


def test_metrics_lists_every_counter(harness):
    harness.metrics.queue_depth.set(3)
    harness.metrics.reconcile.observe(0.2)
    response = harness.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    for name in ("qatlan_watch_events_total", "qatlan_watch_rejected_total", "qatlan_watch_queue_depth 3.0",
                 "qatlan_watch_debounce_seconds_bucket", "qatlan_watch_reconcile_seconds_count 1.0",
                 "qatlan_watch_requests_total", "qatlan_watch_apply_outcomes_total", "qatlan_watch_429_total",
                 "qatlan_watch_last_reconcile_timestamp_seconds", 'qatlan_watch_side_up{side="atlan"}'):
        assert name in response.text


def test_two_watchers_keep_separate_counts():
    a, b = WatchMetrics(), WatchMetrics()
    a.event("atlan", "ENTITY_UPDATE")
    assert b"ENTITY_UPDATE" not in b.render()[0]
    with pytest.raises(ValueError, match="known"):
        a.reject("atlan", "bored")


# ---- listening ---------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.5"])
def test_loopback_needs_no_secret(host):
    check_listen(host, None, None)


@pytest.mark.parametrize("secrets", [(None, None), ("a", None), (None, "q"), ("", "q")])
def test_beyond_loopback_both_secrets_are_required(secrets):
    with pytest.raises(ListenError) as caught:
        check_listen("0.0.0.0", *secrets)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ConfigError)
    assert "QATLAN_ATLAN_WEBHOOK_SECRET and QATLAN_QUALYTICS_FLOW_SECRET or listen on 127.0.0.1" in caught.value.hint


def test_beyond_loopback_with_both_secrets_is_allowed():
    check_listen("0.0.0.0", "a", "q")


# ---- over real HTTP ----------------------------------------------------------------------

@pytest.fixture
def served():
    """The harness app under uvicorn on a free loopback port."""
    harness = Harness(max_body=1000)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(harness.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    harness.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield harness
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.mark.http
def test_over_http_secrets_limits_and_keys(served, caplog):
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=served.url) as client:
        assert client.post("/webhooks/atlan", json=COLUMN_EVENT).status_code == 401
        chunked = client.post("/webhooks/atlan", content=iter([b"{" * 600, b"[" * 600]), headers=atlan_headers())
        assert chunked.status_code == 413
        ok = client.post("/webhooks/atlan", content=json.dumps(COLUMN_EVENT), headers=atlan_headers())
        assert ok.status_code == 202
        assert client.get("/healthz").json() == {"ok": True, "queue": 0}
        assert 'qatlan_watch_rejected_total{reason="size",source="atlan"} 1.0' in client.get("/metrics").text
    assert served.calls == [("atlan", "CLASSIFICATION_ADD", (f"a:{TABLE}",))]
    assert "client=127.0.0.1" in caplog.text
    assert ATLAN_SECRET not in caplog.text
