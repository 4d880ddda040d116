"""The sandbox operations layer: statistics, rate limit and fault injection (in-process)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from qatlan.sandbox.ops import FaultSettings, OpsSettings
from qatlan.sandbox.server import SandboxASGITransport, build_server_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWorld:
    meta: dict[str, Any] = {}
    atlan = qualytics = None

    def export(self) -> dict[str, Any]:
        return {"world_version": 1, "meta": {}, "atlan": {}, "qualytics": {}}


def dummy_api(writes: list[Any]) -> Starlette:
    async def get_entity(request: Request) -> Response:
        return JSONResponse({"guid": request.path_params["guid"]})

    async def bulk(request: Request) -> Response:
        writes.append(await request.json())
        return JSONResponse({"mutatedEntities": {"CREATE": []}})

    async def health(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/api/meta/entity/guid/{guid}", get_entity, methods=["GET"]),
            Route("/api/meta/entity/bulk", bulk, methods=["POST"]),
            Route("/api/health", health, methods=["GET"]),
        ]
    )


class Server:
    """A dummy API app behind the ops layer, with a sync client over it."""

    def __init__(self, service: str = "atlan", **settings: Any):
        self.writes: list[Any] = []
        self.delays: list[float] = []
        self.clock = Clock()

        async def sleep(seconds: float) -> None:
            self.delays.append(seconds)

        settings.setdefault("clock", self.clock)
        settings.setdefault("sleep", sleep)
        self.app = build_server_app(service, FakeWorld(), dummy_api(self.writes), OpsSettings(**settings))
        self.client = httpx.Client(transport=SandboxASGITransport(self.app), base_url="http://sandbox")

    def stats(self) -> dict[str, Any]:
        return self.client.get("/_sandbox/stats").json()


def endpoint(stats: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return next(e for e in stats["endpoints"] if e["method"] == method and e["path"] == path)


# statistics


def test_stats_count_requests_per_path_template_and_method() -> None:
    server = Server()
    server.client.get("/api/meta/entity/guid/a")
    server.client.get("/api/meta/entity/guid/b")
    server.client.post("/api/meta/entity/bulk", json={"entities": []})
    stats = server.stats()
    assert endpoint(stats, "GET", "/api/meta/entity/guid/{guid}")["count"] == 2
    assert endpoint(stats, "POST", "/api/meta/entity/bulk")["count"] == 1
    assert stats["total"]["count"] == 3


def test_stats_count_status_codes_and_bytes_sent() -> None:
    server = Server()
    body = server.client.get("/api/meta/entity/guid/abc").content
    server.client.post("/api/meta/entity/guid/abc")  # 405: the template still names it
    stats = server.stats()
    assert endpoint(stats, "GET", "/api/meta/entity/guid/{guid}") == {
        "method": "GET", "path": "/api/meta/entity/guid/{guid}",
        "count": 1, "status": {"200": 1}, "bytes_out": len(body),
    }  # fmt: skip
    assert endpoint(stats, "POST", "/api/meta/entity/guid/{guid}")["status"] == {"405": 1}
    assert stats["total"]["status"] == {"200": 1, "405": 1}


def test_stats_put_unknown_paths_under_one_key() -> None:
    server = Server()
    server.client.get("/api/nothing/here")
    server.client.get("/elsewhere")
    assert endpoint(server.stats(), "GET", "(unmatched)")["status"] == {"404": 2}


def test_stats_name_templates_inside_mounted_routers() -> None:
    async def container(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["id"]})

    api = Starlette(routes=[Mount("/api", routes=[Route("/containers/{id:int}", container)])])
    app = build_server_app("qualytics", FakeWorld(), api)
    client = httpx.Client(transport=SandboxASGITransport(app), base_url="http://sandbox")
    assert client.get("/api/containers/12").json() == {"id": 12}
    stats = client.get("/_sandbox/stats").json()
    assert [(e["method"], e["path"]) for e in stats["endpoints"]] == [("GET", "/api/containers/{id:int}")]


def test_admin_requests_are_not_counted_limited_or_faulted() -> None:
    server = Server(requests_per_minute=1, faults=FaultSettings(rate_500=1.0))
    for _ in range(3):
        assert server.client.get("/_sandbox/health").status_code == 200
    assert server.stats()["total"]["count"] == 0
    assert server.client.get("/api/meta/entity/guid/a").status_code == 500


# rate limit


def test_rate_limit_refuses_the_request_beyond_the_limit_with_retry_after() -> None:
    server = Server(requests_per_minute=5)
    statuses = [server.client.get("/api/meta/entity/guid/a").status_code for _ in range(5)]
    refused = server.client.get("/api/meta/entity/guid/a")
    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert refused.json()["errorCode"] == "ATLAS-429-00-001"
    assert server.stats()["rate_limited"] == 1


def test_rate_limit_window_slides() -> None:
    server = Server(requests_per_minute=2)
    server.client.get("/api/meta/entity/guid/a")
    server.clock.now += 30
    server.client.get("/api/meta/entity/guid/a")
    server.clock.now += 20
    assert server.client.get("/api/meta/entity/guid/a").headers["retry-after"] == "10"
    server.clock.now += 10  # the first request leaves the window
    assert server.client.get("/api/meta/entity/guid/a").status_code == 200
    assert server.client.get("/api/meta/entity/guid/a").status_code == 429


def test_qualytics_rate_limit_answers_in_its_own_error_shape() -> None:
    server = Server("qualytics", requests_per_minute=1)
    server.client.get("/api/health")
    refused = server.client.get("/api/health")
    assert (refused.status_code, refused.json()) == (429, {"detail": "Too many requests"})
    assert refused.headers["retry-after"] == "60"


def test_zero_requests_per_minute_means_unlimited() -> None:
    server = Server(requests_per_minute=0)
    assert all(server.client.get("/api/health").status_code == 204 for _ in range(50))


# faults


@pytest.mark.parametrize(
    ("kind", "service", "retry_after", "body"),
    [
        ("429", "atlan", "1", {"errorCode": "ATLAS-429-00-001", "errorMessage": "Too many requests"}),
        ("500", "atlan", None, {"errorCode": "ATLAS-500-00-001", "errorMessage": "Internal server error"}),
        ("503", "atlan", "1", {"errorCode": "ATLAS-503-00-001", "errorMessage": "Service unavailable"}),
        ("429", "qualytics", "1", {"detail": "Too many requests"}),
        ("500", "qualytics", None, {"detail": "Internal server error"}),
        ("503", "qualytics", "1", {"detail": "Service unavailable"}),
    ],
)
def test_injected_errors_have_the_servers_shape(
    kind: str, service: str, retry_after: str | None, body: dict[str, Any]
) -> None:
    server = Server(service, faults=FaultSettings(**{f"rate_{kind}": 1.0}))
    response = server.client.get("/api/meta/entity/guid/a")
    assert response.status_code == int(kind)
    assert response.headers.get("retry-after") == retry_after
    assert response.json() == body
    assert server.stats()["faults"][kind] == 1


def test_injected_502_is_a_gateway_html_page() -> None:
    server = Server(faults=FaultSettings(rate_502=1.0))
    response = server.client.get("/api/meta/entity/guid/a")
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert "502 Bad Gateway" in response.text


def test_retry_after_of_injected_errors_is_configurable() -> None:
    server = Server(faults=FaultSettings(rate_503=1.0, retry_after=7))
    assert server.client.get("/api/health").headers["retry-after"] == "7"


def test_drop_breaks_the_connection_before_the_app_runs() -> None:
    server = Server(faults=FaultSettings(rate_drop=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        server.client.post("/api/meta/entity/bulk", json={"entities": [1]})
    assert server.writes == []
    assert endpoint(server.stats(), "POST", "/api/meta/entity/bulk")["status"] == {"dropped": 1}


def test_drop_after_lands_the_write_then_breaks_the_connection() -> None:
    server = Server(faults=FaultSettings(rate_drop_after=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        server.client.post("/api/meta/entity/bulk", json={"entities": [1]})
    assert server.writes == [{"entities": [1]}]
    assert server.stats()["faults"]["drop_after"] == 1


def test_drop_after_a_response_without_body_still_breaks_the_connection() -> None:
    server = Server(faults=FaultSettings(rate_drop_after=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        server.client.get("/api/health")


def test_latency_is_drawn_between_min_and_max() -> None:
    server = Server(faults=FaultSettings(latency_min_ms=10, latency_max_ms=30))
    for _ in range(20):
        assert server.client.get("/api/health").status_code == 204
    assert len(server.delays) == 20
    assert all(0.010 <= d <= 0.030 for d in server.delays)
    assert len(set(server.delays)) > 1
    assert server.stats()["latency_ms"] == pytest.approx(sum(server.delays) * 1000, abs=0.01)


def test_latency_really_delays_the_response() -> None:
    server = Server(faults=FaultSettings(latency_min_ms=40), sleep=asyncio.sleep)
    started = time.monotonic()
    server.client.get("/api/health")
    assert time.monotonic() - started >= 0.04


def fault_sequence(seed: int, n: int = 60) -> list[int | str]:
    server = Server(faults=FaultSettings(seed=seed, rate_500=0.2, rate_503=0.2, rate_drop=0.1))
    outcomes: list[int | str] = []
    for _ in range(n):
        try:
            outcomes.append(server.client.get("/api/health").status_code)
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    return outcomes


def test_the_same_seed_gives_the_same_faults() -> None:
    first = fault_sequence(seed=7)
    assert first == fault_sequence(seed=7)
    assert first != fault_sequence(seed=8)
    assert {204, 500, 503, "dropped"} <= set(first)


def test_setting_faults_restarts_the_sequence_from_the_seed() -> None:
    server = Server()
    faults = {"seed": 3, "rate_500": 0.5}
    runs = []
    for _ in range(2):
        server.client.put("/_sandbox/faults", json=faults)
        runs.append([server.client.get("/api/health").status_code for _ in range(20)])
    assert runs[0] == runs[1]


def test_faults_apply_only_to_the_named_methods_and_paths() -> None:
    faults = FaultSettings(rate_500=1.0, methods=("POST",), paths=("/api/meta/entity/",))
    server = Server(faults=faults)
    assert server.client.get("/api/meta/entity/guid/a").status_code == 200
    assert server.client.post("/api/meta/entity/bulk", json={}).status_code == 500
    assert server.client.get("/api/health").status_code == 204


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rate_500": 1.5}, "rate_500 must be a number from 0 to 1"),
        ({"rate_500": 0.6, "rate_drop": 0.6}, "add up to more than 1"),
        ({"latency_min_ms": 50, "latency_max_ms": 10}, "latency_min_ms is larger"),
        ({"rate_404": 0.1}, "unknown fault setting 'rate_404'"),
        ({"seed": "x"}, "seed must be a whole number"),
        ({"paths": ["api"]}, "paths must be path prefixes"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_fault_settings_are_refused_with_the_reason(doc: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSettings.from_json(doc)


def test_fault_settings_round_trip_through_json() -> None:
    faults = FaultSettings(seed=5, rate_429=0.25, latency_max_ms=5, methods=("POST",), paths=("/api",))
    assert FaultSettings.from_json(faults.to_json()) == faults


def test_the_transport_serves_async_clients_too() -> None:
    server = Server(faults=FaultSettings(rate_drop=1.0))

    async def call() -> None:
        transport = SandboxASGITransport(server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            assert (await client.get("/_sandbox/health")).status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/api/health")

    asyncio.run(call())
