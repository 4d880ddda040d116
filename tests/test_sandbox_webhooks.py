"""The sandbox calls out: Atlan webhooks and Qualytics Flow actions over real HTTP (issue 15)."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.sandbox.atlan_events import operations
from qatlan.sandbox.generate import generate_world
from qatlan.sandbox.outbound import Deliverer, DeliverySettings
from qatlan.sandbox.qualytics_flows import DEFAULT_TEMPLATE, render
from qatlan.sandbox.server import Sandbox
from qatlan.sandbox.world import World
from qatlan.watch.events import QUALYTICS_FLOW_TEMPLATE, parse_atlan, parse_qualytics
from qatlan.watch.metrics import WatchMetrics
from qatlan.watch.server import build_app

pytestmark = pytest.mark.http

SECRET = "sandbox-webhook-secret"
FLOW_SECRET = "sandbox-flow-secret"


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


class Receiver:
    """A loopback HTTP endpoint that records every request (headers and JSON body)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.requests: list[tuple[dict[str, str], Any]] = []

        async def record(request: Request) -> Response:
            self.requests.append((dict(request.headers), json.loads(await request.body())))
            return JSONResponse({}, status_code=self.status)

        self.url, self._server, self._thread = serve(Starlette(routes=[Route("/hook", record, methods=["POST"])]))
        self.url += "/hook"

    def bodies(self) -> list[Any]:
        return [body for _, body in self.requests]

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def doc():
    return generate_world("tables=3,seed=1")


@pytest.fixture
def sandbox(doc):
    with Sandbox(World(json.loads(json.dumps(doc)))) as sb:
        yield sb
        for url in (sb.atlan_url + "/_sandbox/webhooks", sb.qualytics_url + "/_sandbox/flows"):
            httpx.delete(url, trust_env=False)


def admin_token(sb: Sandbox) -> str:
    return sb.tokens["atlan"]["admin"]


def configure(sb: Sandbox, receiver: Receiver, **faults: Any) -> httpx.Response:
    return httpx.put(sb.atlan_url + "/_sandbox/webhooks", json={"url": receiver.url, "secret": SECRET, **faults},
                     trust_env=False, timeout=10)


def idle(url: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(url, trust_env=False).json()
        if status["stats"]["pending"] == 0:
            return status
        time.sleep(0.02)
    raise AssertionError(f"deliveries still pending: {status}")


def first(entities: list[dict], type_name: str) -> dict:
    return next(e for e in entities if e["typeName"] == type_name)


def atlan_api(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.atlan_url + "/api/meta", trust_env=False, timeout=10,
                        headers={"Authorization": f"Bearer {admin_token(sb)}"})


# ---- Atlan -------------------------------------------------------------------------------

def test_configuring_sends_the_validation_request_and_hides_the_secret(sandbox, receiver):
    response = configure(sandbox, receiver)
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["configured"] and status["secret_set"] and status["validation"] == 200
    assert SECRET not in response.text
    headers, body = receiver.requests[0]
    assert parse_atlan(body).kind == "validation"
    assert headers["x-atlan-signing-secret"] == SECRET


def test_configuring_fails_when_the_receiver_refuses_validation(sandbox):
    refusing = Receiver(status=401)
    try:
        response = configure(sandbox, refusing)
        assert response.status_code == 400 and "validation request" in response.json()["error"]
        assert httpx.get(sandbox.atlan_url + "/_sandbox/webhooks", trust_env=False).json() == {"configured": False}
    finally:
        refusing.close()


@pytest.mark.parametrize("body", [{"secret": "x"}, {"url": "ftp://x"}, {"url": "http://x", "loss": 2},
                                  {"url": "http://x", "color": 1}, [1]])
def test_bad_settings_are_400(sandbox, body):
    assert httpx.put(sandbox.atlan_url + "/_sandbox/webhooks", json=body, trust_env=False).status_code == 400


def test_an_api_tag_write_sends_one_signed_event_per_asset_with_hashed_names(sandbox, receiver, doc):
    entities = doc["atlan"]["entities"]
    column = first(entities, "Column")
    tags = {d["displayName"]: d["name"] for d in doc["atlan"]["typedefs"]["classificationDefs"]}
    tag = next(name for label, name in tags.items() if all(c["typeName"] != name for c in column.get("classifications", [])))
    assert configure(sandbox, receiver).status_code == 200
    with atlan_api(sandbox) as api:
        assert api.post(f"/entity/guid/{column['guid']}/classifications", json=[{"typeName": tag}]).status_code == 204
    idle(sandbox.atlan_url + "/_sandbox/webhooks")
    headers, body = receiver.requests[1]
    assert headers["x-atlan-signing-secret"] == SECRET
    message = body["message"]
    assert (message["operationType"], message["entity"]["guid"]) == ("CLASSIFICATION_ADD", column["guid"])
    assert tag in message["entity"]["classificationNames"]
    assert message["mutatedDetails"][0]["typeName"] == tag
    assert message["entity"]["attributes"]["tableQualifiedName"]
    assert parse_atlan(body).keys == (f"a:{column['attributes']['tableQualifiedName']}",)
    assert len(receiver.requests) == 2


def test_bulk_upserts_custom_metadata_and_deletes_send_events(sandbox, receiver, doc):
    table = first(doc["atlan"]["entities"], "Table")
    bm = doc["atlan"]["typedefs"]["businessMetadataDefs"][0]
    attr = next(a for a in bm["attributeDefs"] if a.get("typeName", "string") == "string")
    assert configure(sandbox, receiver).status_code == 200
    with atlan_api(sandbox) as api:
        upsert = {"entities": [{"typeName": "Table", "guid": table["guid"],
                                "attributes": {"qualifiedName": table["attributes"]["qualifiedName"], "name": table["attributes"]["name"],
                                               "description": "changed by a test"}}]}
        assert api.post("/entity/bulk", json=upsert).status_code == 200
        response = api.post(f"/entity/guid/{table['guid']}/businessmetadata/displayName",
                            json={bm["displayName"]: {attr["displayName"]: "from the test"}})
        assert response.status_code == 204, response.text
        assert api.delete("/entity/bulk", params={"guid": table["guid"]}).status_code == 200
    status = idle(sandbox.atlan_url + "/_sandbox/webhooks")
    ops = [body["message"]["operationType"] for body in receiver.bodies()[1:]]
    assert ops == ["ENTITY_UPDATE", "BUSINESS_ATTRIBUTE_UPDATE", "ENTITY_DELETE"]
    details = receiver.bodies()[2]["message"]["mutatedDetails"]
    assert details == {bm["displayName"]: {attr["displayName"]: "from the test"}}
    assert {parse_atlan(b).keys for b in receiver.bodies()[1:]} == {(f"a:{table['attributes']['qualifiedName']}",)}
    assert status["stats"] | {"pending": 0} == {"queued": 3, "sent": 3, "lost": 0, "duplicated": 0, "failed": 0, "pending": 0}


def test_a_new_link_names_its_table_in_both_events(sandbox, receiver, doc):
    table = first(doc["atlan"]["entities"], "Table")
    assert configure(sandbox, receiver).status_code == 200
    link = {"typeName": "Link", "guid": "-1", "attributes": {
        "qualifiedName": f"{table['guid']}/link/test", "name": "Qualytics", "link": "https://q.example/x",
        "asset": {"typeName": "Table", "guid": table["guid"]}}}
    with atlan_api(sandbox) as api:
        response = api.post("/entity/bulk", json={"entities": [link]})
        assert response.status_code == 200, response.text
    idle(sandbox.atlan_url + "/_sandbox/webhooks")
    events = [parse_atlan(b) for b in receiver.bodies()[1:]]
    assert sorted((e.type_name, e.operation) for e in events) == [("Link", "ENTITY_CREATE"), ("Table", "ENTITY_UPDATE")]
    assert {e.keys for e in events} == {(f"a:{table['attributes']['qualifiedName']}",)}


def test_an_admin_world_change_sends_an_event(sandbox, receiver, doc):
    table = first(doc["atlan"]["entities"], "Table")
    assert configure(sandbox, receiver).status_code == 200
    change = {"side": "atlan", "op": "update", "guid": table["guid"], "set": {"attributes": {"description": "drift"}}}
    assert httpx.post(sandbox.atlan_url + "/_sandbox/world/changes", json={"changes": [change]}, trust_env=False).status_code == 200
    idle(sandbox.atlan_url + "/_sandbox/webhooks")
    assert [b["message"]["operationType"] for b in receiver.bodies()[1:]] == ["ENTITY_UPDATE"]
    assert receiver.bodies()[1]["message"]["entity"]["attributes"]["description"] == "drift"


def drift(sb: Sandbox, doc: dict, n: int) -> None:
    tables = [e for e in doc["atlan"]["entities"] if e["typeName"] == "Table"][:n]
    changes = [{"side": "atlan", "op": "update", "guid": t["guid"], "set": {"attributes": {"description": f"d{i}"}}}
               for i, t in enumerate(tables)]
    assert httpx.post(sb.atlan_url + "/_sandbox/world/changes", json={"changes": changes}, trust_env=False).status_code == 200


def test_loss_1_delivers_nothing(sandbox, receiver, doc):
    assert configure(sandbox, receiver, loss=1).status_code == 200
    drift(sandbox, doc, 3)
    status = idle(sandbox.atlan_url + "/_sandbox/webhooks")
    assert len(receiver.requests) == 1  # the validation request only
    assert (status["stats"]["lost"], status["stats"]["sent"]) == (3, 0)


def test_duplicate_1_delivers_each_event_twice(sandbox, receiver, doc):
    assert configure(sandbox, receiver, duplicate=1).status_code == 200
    drift(sandbox, doc, 3)
    status = idle(sandbox.atlan_url + "/_sandbox/webhooks")
    guids = [b["message"]["entity"]["guid"] for b in receiver.bodies()[1:]]
    assert len(guids) == 6 and all(guids.count(g) == 2 for g in guids)
    assert (status["stats"]["duplicated"], status["stats"]["sent"]) == (3, 6)


def test_delay_holds_events_back_without_blocking_the_api(sandbox, receiver, doc):
    assert configure(sandbox, receiver, delay=1.0).status_code == 200
    started = time.monotonic()
    drift(sandbox, doc, 1)
    assert time.monotonic() - started < 0.9
    assert len(receiver.requests) == 1
    idle(sandbox.atlan_url + "/_sandbox/webhooks")
    assert len(receiver.requests) == 2 and time.monotonic() - started >= 1.0


def test_delete_stops_delivery_and_reports_the_counts(sandbox, receiver, doc):
    assert configure(sandbox, receiver).status_code == 200
    drift(sandbox, doc, 1)
    idle(sandbox.atlan_url + "/_sandbox/webhooks")
    final = httpx.delete(sandbox.atlan_url + "/_sandbox/webhooks", trust_env=False).json()
    assert final["stats"]["sent"] == 1
    drift(sandbox, doc, 2)
    time.sleep(0.1)
    assert len(receiver.requests) == 2
    assert httpx.get(sandbox.atlan_url + "/_sandbox/webhooks", trust_env=False).json() == {"configured": False}


def test_events_reach_a_real_watch_receiver(sandbox, doc):
    seen: list[tuple[str, str, tuple[str, ...]]] = []
    app = build_app(lambda *call: seen.append(call), atlan_secret=SECRET, qualytics_secret=FLOW_SECRET,
                    metrics=WatchMetrics(), health=lambda: {"ok": True})
    url, server, thread = serve(app)
    try:
        put = httpx.put(sandbox.atlan_url + "/_sandbox/webhooks", json={"url": url + "/webhooks/atlan", "secret": SECRET},
                        trust_env=False, timeout=10)
        assert put.status_code == 200, put.text
        drift(sandbox, doc, 2)
        flows = httpx.put(sandbox.qualytics_url + "/_sandbox/flows",
                          json={"url": url + "/webhooks/qualytics", "secret": FLOW_SECRET}, trust_env=False)
        assert flows.status_code == 200
        anomaly = doc["qualytics"]["anomalies"][0]
        change = {"side": "qualytics", "kind": "anomalies", "op": "update", "id": anomaly["id"], "set": {"status": "Resolved"}}
        assert httpx.post(sandbox.qualytics_url + "/_sandbox/world/changes", json={"changes": [change]}, trust_env=False).status_code == 200
        assert idle(sandbox.atlan_url + "/_sandbox/webhooks")["stats"]["failed"] == 0
        assert idle(sandbox.qualytics_url + "/_sandbox/flows")["stats"]["failed"] == 0
    finally:
        server.should_exit = True
        thread.join(10)
    tables = [e["attributes"]["qualifiedName"] for e in doc["atlan"]["entities"] if e["typeName"] == "Table"][:2]
    assert [call for call in seen if call[0] == "atlan"] == [("atlan", "ENTITY_UPDATE", (f"a:{t}",)) for t in tables]
    assert ("qualytics", "anomaly", (f"q:c:{anomaly['container_id']}",)) in seen


# ---- Qualytics ---------------------------------------------------------------------------

def configure_flows(sb: Sandbox, receiver: Receiver, **settings: Any) -> httpx.Response:
    return httpx.put(sb.qualytics_url + "/_sandbox/flows", json={"url": receiver.url, "secret": FLOW_SECRET, **settings},
                     trust_env=False, timeout=10)


def qualytics_change(sb: Sandbox, *changes: dict) -> None:
    response = httpx.post(sb.qualytics_url + "/_sandbox/world/changes", json={"changes": list(changes)}, trust_env=False)
    assert response.status_code == 200, response.text


def test_the_sandbox_default_template_is_the_documented_one():
    assert DEFAULT_TEMPLATE == QUALYTICS_FLOW_TEMPLATE


def test_a_recorded_scan_fires_an_operation_flow_naming_the_datastore(sandbox, receiver, doc):
    container = doc["qualytics"]["containers"][0]
    status = configure_flows(sandbox, receiver).json()
    assert status["configured"] and FLOW_SECRET not in json.dumps(status)
    qualytics_change(sandbox, {"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"],
                               "set": {"last_scanned": "2026-03-01T00:00:00+00:00"}})
    idle(sandbox.qualytics_url + "/_sandbox/flows")
    [(headers, body)] = receiver.requests
    assert headers["x-qualytics-secret"] == FLOW_SECRET
    assert body["operation_type"] == "scan" and body["operation_result"] == "success"
    assert body["container_link"] == "" and "/activity?operation_id=1" in body["target_link"]
    event = parse_qualytics(body)
    assert (event.keys, event.event_type) == ((f"q:d:{container['datastore_id']}",), "scan")


def test_a_tag_edit_fires_no_flow_but_an_anomaly_status_change_does(sandbox, receiver, doc):
    anomaly = doc["qualytics"]["anomalies"][0]
    container = doc["qualytics"]["containers"][0]
    assert configure_flows(sandbox, receiver, template={"cid": "{{container_link}}", "s": "{{anomaly_status}}"}).status_code == 200
    qualytics_change(sandbox,
                     {"side": "qualytics", "kind": "containers", "op": "update", "id": container["id"], "set": {"tags": []}},
                     {"side": "qualytics", "kind": "anomalies", "op": "update", "id": anomaly["id"], "set": {"status": "Resolved"}})
    idle(sandbox.qualytics_url + "/_sandbox/flows")
    [body] = receiver.bodies()
    assert body["s"] == "Resolved"
    assert parse_qualytics(body).keys == (f"q:c:{anomaly['container_id']}",)


def test_an_anomaly_acknowledged_through_the_api_fires_a_flow(sandbox, receiver, doc):
    anomaly = doc["qualytics"]["anomalies"][0]
    token = next(iter(sandbox.tokens["qualytics"].values()))
    assert configure_flows(sandbox, receiver).status_code == 200
    response = httpx.put(f"{sandbox.qualytics_url}/api/anomalies/{anomaly['id']}", json={"status": "Acknowledged"},
                         headers={"Authorization": f"Bearer {token}"}, trust_env=False)
    assert response.status_code == 200, response.text
    idle(sandbox.qualytics_url + "/_sandbox/flows")
    [body] = receiver.bodies()
    assert parse_qualytics(body).keys == (f"q:c:{anomaly['container_id']}",)


def test_flow_faults_loss_and_duplicate(sandbox, receiver, doc):
    containers = doc["qualytics"]["containers"][:2]
    scans = [{"side": "qualytics", "kind": "containers", "op": "update", "id": c["id"],
              "set": {"last_profiled": "2026-03-01T00:00:00+00:00"}} for c in containers]
    assert configure_flows(sandbox, receiver, loss=1).status_code == 200
    qualytics_change(sandbox, *scans)
    assert idle(sandbox.qualytics_url + "/_sandbox/flows")["stats"]["lost"] == 2 and receiver.requests == []
    assert configure_flows(sandbox, receiver, duplicate=1).status_code == 200
    for scan in scans:
        scan["set"]["last_profiled"] = "2026-03-02T00:00:00+00:00"
    qualytics_change(sandbox, *scans)
    assert idle(sandbox.qualytics_url + "/_sandbox/flows")["stats"]["duplicated"] == 2
    assert [b["operation_type"] for b in receiver.bodies()] == ["profile"] * 4


# ---- pieces ------------------------------------------------------------------------------

def test_operations_follow_the_change():
    base = {"typeName": "Table", "guid": "g", "status": "ACTIVE", "attributes": {"qualifiedName": "q", "name": "n"},
            "classifications": [], "businessAttributes": {}, "updateTime": 1}
    tagged = {**base, "classifications": [{"typeName": "T"}], "attributes": {**base["attributes"], "description": "d"}}
    assert [op for op, _ in operations(None, base)] == ["ENTITY_CREATE"]
    assert [op for op, _ in operations(base, None)] == ["ENTITY_DELETE"]
    assert [op for op, _ in operations(base, {**base, "status": "DELETED"})] == ["ENTITY_DELETE"]
    assert [op for op, _ in operations(base, tagged)] == ["CLASSIFICATION_ADD", "ENTITY_UPDATE"]
    assert [op for op, _ in operations(tagged, {**tagged, "classifications": []})] == ["CLASSIFICATION_DELETE"]
    assert operations(base, dict(base)) == []
    assert [op for op, _ in operations(base, {**base, "updateTime": 2})] == ["ENTITY_UPDATE"]


def test_render_fills_tokens_anywhere_and_blanks_unknown_ones():
    template = {"a": "{{x}}-{{ y }}", "b": ["{{nope}}", 3], "c": {"d": "{{x}}"}}
    assert render(template, {"x": "1", "y": "2"}) == {"a": "1-2", "b": ["", 3], "c": {"d": "1"}}


def test_reorder_shuffles_within_a_window(receiver):
    deliverer = Deliverer(DeliverySettings(url=receiver.url, reorder=True, seed=3), {})
    for i in range(8):
        deliverer.submit({"n": i})
    assert deliverer.wait_idle()
    order = [b["n"] for b in receiver.bodies()]
    assert sorted(order) == list(range(8)) and order != list(range(8))


def test_an_unreachable_receiver_counts_as_failed_once():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    deliverer = Deliverer(DeliverySettings(url=f"http://127.0.0.1:{port}/x"), {})
    deliverer.submit({"n": 1})
    assert deliverer.wait_idle()
    assert deliverer.stats() | {"pending": 0} == {"queued": 1, "sent": 0, "lost": 0, "duplicated": 0, "failed": 1, "pending": 0}
