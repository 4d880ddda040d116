"""HttpClient: retries, Retry-After, rate limit, concurrency, error mapping, token hygiene."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time

import httpx
import pytest
import respx

from qatlan.clients import HttpClient, gather
from qatlan.clients.http import SLACK
from qatlan.errors import (
    ApiConnectionError,
    ApiError,
    ApiResponseError,
    ApiStatusError,
    AuthenticationError,
    ConfigError,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
)

pytestmark = pytest.mark.anyio

ATLAN = "https://tenant.atlan.example"
QUALYTICS = "https://acme.qualytics.example/api"
TOKEN = "s3cr3t-T0KEN-value-1234567890"
NOW = 1_700_000_000.0


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Sleeps(list):
    """A fake `sleep` that records how long it was asked to wait, and a clock it moves."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)

    def clock(self) -> float:
        return NOW + sum(self)


@pytest.fixture
def sleeps():
    return Sleeps()


def make(sleeps: Sleeps, service: str = "atlan", **kwargs) -> HttpClient:
    base = ATLAN if service == "atlan" else QUALYTICS
    kwargs.setdefault("max_retries", 5)
    return HttpClient(service, base, TOKEN, sleep=sleeps, jitter=lambda: 1.0, clock=sleeps.clock, **kwargs)


def fail_then_ok(failure, failures: int):
    """Side effect: `failures` times `failure` (a status or an exception), then 200 {"ok": true}."""
    calls = {"n": 0}

    def effect(request):
        calls["n"] += 1
        if calls["n"] <= failures:
            if isinstance(failure, int):
                return httpx.Response(failure, json={"errorCode": "X", "errorMessage": "try again"})
            raise failure("boom", request=request)
        return httpx.Response(200, json={"ok": True})

    return effect


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("failures", [0, 2, 4])
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_status_is_retried_until_success(sleeps, status, failures):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        route = router.get("/api/x").mock(side_effect=fail_then_ok(status, failures))
        async with make(sleeps) as http:
            assert await http.request("GET", "/api/x") == {"ok": True}
    assert route.call_count == failures + 1
    assert http.stats.retries == failures
    assert http.stats.rate_limited == (failures if status == 429 else 0)
    assert sleeps == [2.0 ** n for n in range(1, failures + 1)]


@pytest.mark.parametrize("failures", [0, 2, 4])
@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout,
     httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_connection_error_is_retried_until_success(sleeps, error, failures):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        route = router.get("/api/x").mock(side_effect=fail_then_ok(error, failures))
        async with make(sleeps) as http:
            assert await http.request("GET", "/api/x") == {"ok": True}
    assert route.call_count == failures + 1
    assert http.stats.retries == failures


async def test_gives_up_after_max_retries_with_the_last_error(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        route = router.get("/api/x").respond(503, json={"errorCode": "ATLAS-503-00-001", "errorMessage": "maintenance"})
        async with make(sleeps, max_retries=2) as http:
            with pytest.raises(ServerError) as info:
                await http.request("GET", "/api/x")
    assert route.call_count == 3
    assert http.stats.retries == 2 and len(sleeps) == 2
    assert info.value.status == 503 and info.value.code == "ATLAS-503-00-001"
    assert "gave up after 3 attempts" in str(info.value)


async def test_gives_up_on_connection_errors_with_connection_error(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        route = router.get("/api/x").mock(side_effect=httpx.ConnectError)
        async with make(sleeps, max_retries=3) as http:
            with pytest.raises(ApiConnectionError):
                await http.request("GET", "/api/x")
    assert route.call_count == 4


@pytest.mark.parametrize(
    ("status", "error"), [(400, ApiStatusError), (401, AuthenticationError), (403, PermissionDenied), (404, NotFound)]
)
async def test_client_errors_are_not_retried(sleeps, status, error):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        route = router.get("/api/x").respond(status, json={"errorCode": "E", "errorMessage": "no"})
        async with make(sleeps) as http:
            with pytest.raises(error) as info:
                await http.request("GET", "/api/x")
    assert route.call_count == 1 and sleeps == []
    assert type(info.value) is error


async def test_backoff_is_full_jitter_and_capped(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/x").mock(side_effect=fail_then_ok(500, 8))
        http = HttpClient("atlan", ATLAN, TOKEN, sleep=sleeps, jitter=lambda: 0.5, max_retries=8)
        await http.request("GET", "/api/x")
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        ("600", 120.0),  # capped
        (email.utils.formatdate(NOW + 3600, usegmt=True), 120.0),
    ],
)
async def test_retry_after_is_honoured_and_capped(sleeps, header, expected):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/x").mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": header}), httpx.Response(200, json={})]
        )
        async with make(sleeps) as http:
            await http.request("GET", "/api/x")
    assert sleeps == [pytest.approx(expected)]
    assert http.stats.rate_limited == 1


async def test_rate_limited_error_carries_retry_after(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/x").respond(429, headers={"Retry-After": "3"}, json={"errorMessage": "slow down"})
        async with make(sleeps, max_retries=1) as http:
            with pytest.raises(RateLimited) as info:
                await http.request("GET", "/api/x")
    assert info.value.retry_after == 3.0 and info.value.status == 429


async def test_post_is_retried_only_when_the_server_surely_did_not_act(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        created = router.post("/api/create").respond(503)
        limited = router.post("/api/limited").mock(side_effect=fail_then_ok(429, 2))
        upsert = router.post("/api/upsert").mock(side_effect=fail_then_ok(503, 2))
        async with make(sleeps) as http:
            with pytest.raises(ServerError):
                await http.request("POST", "/api/create", json={})
            await http.request("POST", "/api/limited", json={})
            await http.request("POST", "/api/upsert", json={}, idempotent=True)
    assert (created.call_count, limited.call_count, upsert.call_count) == (1, 3, 3)


async def test_read_timeout_on_post_is_not_retried_but_connect_error_is(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        read = router.post("/api/read").mock(side_effect=httpx.ReadTimeout)
        connect = router.post("/api/connect").mock(side_effect=fail_then_ok(httpx.ConnectError, 2))
        async with make(sleeps) as http:
            with pytest.raises(ApiConnectionError, match="did not answer POST /api/read"):
                await http.request("POST", "/api/read", json={})
            await http.request("POST", "/api/connect", json={})
    assert (read.call_count, connect.call_count) == (1, 3)


# --------------------------------------------------------------------------- rate limit, concurrency


class FakeTime:
    """A clock that `sleep` moves forward: waiting takes no real time."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, deadline)


def busiest_window(arrivals: list[float], window: float) -> int:
    """The most arrivals in any (t - window, t]: what a sliding-window server counts."""
    arrivals, best, low = sorted(arrivals), 0, 0
    for high, t in enumerate(arrivals):
        while arrivals[low] <= t - window:
            low += 1
        best = max(best, high - low + 1)
    return best


async def arrival_times(requests_per_minute: int, n: int, concurrency: int = 8) -> list[float]:
    """When `n` concurrent requests of a client with this limit reach the server (real time)."""
    arrivals: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(time.monotonic())
        return httpx.Response(200, json={})

    async with HttpClient("atlan", ATLAN, TOKEN, concurrency=concurrency, requests_per_minute=requests_per_minute,
                          transport=httpx.MockTransport(handler)) as http:
        await gather(*(http.request("GET", "/api/x") for _ in range(n)))
    return arrivals


def test_zero_requests_per_minute_means_no_client_side_limit():
    assert HttpClient("atlan", ATLAN, TOKEN, requests_per_minute=0)._limiter is None


async def test_requests_are_evenly_spaced_after_a_burst_of_at_most_a_quarter_of_the_slack():
    # a bucket holding a second's worth would send the first 20 at once and, on top of the
    # rate, let 20 more than the limit through in a minute; a server counting over a sliding
    # minute answers 429 to those. The bank is a quarter of the slack the pace leaves unused.
    rpm = 1200
    limiter = HttpClient("atlan", ATLAN, TOKEN, requests_per_minute=rpm)._limiter
    bank, turn = int(limiter.max_rate), limiter.time_period / limiter.max_rate
    assert turn == pytest.approx((60 + SLACK) / rpm) and 1 <= bank <= SLACK / 4 / turn
    started = time.monotonic()
    arrivals = await arrival_times(rpm, bank + 25)
    # only lateness can shrink a gap, and it is never near a whole turn here
    assert busiest_window(arrivals, 5 * turn) <= bank + 6
    # counted from before the client existed: a late first request (a busy machine) only
    # makes this longer, while it would shorten the span from the first arrival
    assert arrivals[-1] - started >= 25 * turn * 0.95


def greedy_turns(limiter, n: int, start: float = 0.0) -> list[float]:
    """When a client that always has a request waiting gets its turns: a full bank at once, then
    one per turn (the leaky bucket's fastest schedule)."""
    bank, turn = int(limiter.max_rate), limiter.time_period / limiter.max_rate
    return [start + max(0, i - bank + 1) * turn for i in range(n)]


def test_a_limit_of_n_lets_at_most_n_requests_reach_a_sliding_window_server_in_any_minute():
    for rpm in (60, 400, 2400, 20000):
        limiter = HttpClient("atlan", ATLAN, TOKEN, requests_per_minute=rpm)._limiter
        # two runs chained one after another (`qatlan plan && qatlan apply`), each starting with
        # a full bank, each request late by up to half the slack: the worst case a server sees
        first = greedy_turns(limiter, 2 * rpm)
        turns = first + greedy_turns(limiter, 2 * rpm, start=first[-1])
        rng = random.Random(7)
        for late in ([rng.uniform(0, SLACK / 2) for _ in turns],
                     [0.999 * SLACK / 2 if i < rpm // 2 else 0.0 for i in range(len(turns))],
                     [0.0 if i < 2 * rpm else 0.999 * SLACK / 2 for i in range(len(turns))]):
            assert busiest_window([t + d for t, d in zip(turns, late)], 60.0) <= rpm, rpm
        steady = (len(turns) - 1) / (turns[-1] - turns[0]) * 60
        assert steady >= 0.95 * rpm  # and uses over 95% of the limit


async def test_turns_that_come_late_are_made_up_so_the_pace_holds():
    # the event loop wakes a waiter a little after its turn (timers round up to the millisecond);
    # with no bank at all each such delay is lost for good: at a 10 ms turn that is ~13% of the
    # limit (measured with a bucket of one). The small bank makes up for it.
    rpm, n = 6000, 300
    limiter = HttpClient("atlan", ATLAN, TOKEN, requests_per_minute=rpm)._limiter
    turn = limiter.time_period / limiter.max_rate
    arrivals = await arrival_times(rpm, n)
    fastest = greedy_turns(limiter, n)
    assert arrivals[-1] - arrivals[0] <= 1.03 * (fastest[-1] - fastest[0]) + 10 * turn


async def test_a_429_holds_the_clients_later_requests_for_its_retry_after():
    clock = FakeTime()
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        if len(sent) == 1:
            return httpx.Response(429, headers={"Retry-After": "10"}, json={})
        return httpx.Response(200, json={})

    async with HttpClient("atlan", ATLAN, TOKEN, concurrency=1, sleep=clock.sleep, clock=clock,
                          transport=httpx.MockTransport(handler)) as http:
        await gather(*(http.request("GET", "/api/x") for _ in range(4)))
    assert len(sent) == 5 and all(t >= sent[0] + 10 for t in sent[1:])


class CountingLimiter:
    def __init__(self):
        self.acquired = 0

    async def __aenter__(self):
        self.acquired += 1

    async def __aexit__(self, *exc):
        return None


async def test_rate_limiter_applies_to_every_attempt_including_retries(sleeps):
    limiter = CountingLimiter()
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/x").mock(side_effect=fail_then_ok(503, 2))
        async with make(sleeps, limiter=limiter) as http:
            await http.request("GET", "/api/x")
    assert limiter.acquired == 3


async def test_concurrency_is_bounded(sleeps):
    state = {"now": 0, "max": 0}

    async def slow(request):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return httpx.Response(200, json={})

    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/x").mock(side_effect=slow)
        async with make(sleeps, concurrency=3) as http:
            await asyncio.gather(*(http.request("GET", "/api/x") for _ in range(12)))
    assert state["max"] == 3


# --------------------------------------------------------------------------- requests and bodies


async def test_bearer_header_list_params_and_stats_per_path_template(sleeps):
    seen = []

    def effect(request):
        seen.append(request)
        return httpx.Response(200, json={"id": 1})

    with respx.mock(base_url=QUALYTICS, assert_all_called=True) as router:
        router.get(url__regex=r".*/api/datastores/\d+").mock(side_effect=effect)
        async with make(sleeps, service="qualytics") as http:
            for i in (12, 13):
                await http.request("GET", "/datastores/{id}", path_params={"id": i}, params={"tag": ["a", "b"], "x": True})
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[0].url.params.get_list("tag") == ["a", "b"] and seen[0].url.params["x"] == "true"
    assert http.stats.count("GET", "/datastores/{id}") == 2 and http.stats.total == 2


async def test_path_params_are_percent_encoded(sleeps):
    with respx.mock(base_url=QUALYTICS, assert_all_called=True) as router:
        route = router.get(url__regex=r".*/global-tags/.*").respond(200, json={})
        async with make(sleeps, service="qualytics") as http:
            await http.request("GET", "/global-tags/{name}", path_params={"name": "PII / Finance?"})
    assert route.calls.last.request.url.raw_path == b"/api/global-tags/PII%20%2F%20Finance%3F"


@pytest.mark.parametrize("response", [httpx.Response(204), httpx.Response(200, content=b"")])
async def test_no_content_returns_none(sleeps, response):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.post("/api/x").mock(return_value=response)
        async with make(sleeps) as http:
            assert await http.request("POST", "/api/x", json={"a": 1}) is None


async def test_non_json_body_is_a_response_error_naming_the_endpoint(sleeps):
    with respx.mock(base_url=QUALYTICS, assert_all_called=True) as router:
        router.get("/datastores").respond(200, text="<html>login</html>", headers={"content-type": "text/html"})
        async with make(sleeps, service="qualytics") as http:
            with pytest.raises(ApiResponseError, match=r"Qualytics answered GET /datastores with a body that is not JSON"):
                await http.request("GET", "/datastores")


# --------------------------------------------------------------------------- error mapping


async def test_connect_error_names_the_url_and_the_config_key(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/x").mock(side_effect=httpx.ConnectError("Name or service not known"))
        async with make(sleeps, max_retries=0) as http:
            with pytest.raises(ApiConnectionError) as info:
                await http.request("GET", "/api/x")
    message = str(info.value)
    assert message.startswith(f"cannot reach Atlan at {ATLAN}: Name or service not known")
    assert "check atlan.url in qatlan.toml and that the host is up" in message
    assert isinstance(info.value.__cause__, httpx.ConnectError) and info.value.service == "atlan"


async def test_tls_failure_is_not_retried_and_hints_at_verify_tls(sleeps):
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        route = router.get("/api/x").mock(
            side_effect=httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        )
        async with make(sleeps) as http:
            with pytest.raises(ApiConnectionError) as info:
                await http.request("GET", "/api/x")
    assert route.call_count == 1
    assert "TLS" in str(info.value) and "verify_tls" in info.value.hint


@pytest.mark.parametrize(("service", "env"), [("atlan", "ATLAN_API_TOKEN"), ("qualytics", "QUALYTICS_API_TOKEN")])
async def test_401_says_which_token_was_rejected(sleeps, service, env):
    base = ATLAN if service == "atlan" else QUALYTICS
    with respx.mock(base_url=base, assert_all_called=True) as router:
        router.get("/x").respond(401, json={"detail": "Invalid token"})
        async with make(sleeps, service=service) as http:
            with pytest.raises(AuthenticationError) as info:
                await http.request("GET", "/x")
    name = service.capitalize()
    assert str(info.value).startswith(f"{name} rejected the token in {env} (401); create a new")


async def test_atlan_error_body_gives_code_message_method_and_path(sleeps):
    body = {"errorCode": "ATLAS-403-00-001", "errorMessage": "jdoe is not authorized to perform update"}
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.post("/api/meta/entity/bulk").respond(403, json=body)
        async with make(sleeps) as http:
            with pytest.raises(PermissionDenied) as info:
                await http.request("POST", "/api/meta/entity/bulk", json={})
    exc = info.value
    assert (exc.status, exc.code, exc.method, exc.path) == (403, "ATLAS-403-00-001", "POST", "/api/meta/entity/bulk")
    assert "jdoe is not authorized to perform update" in str(exc)
    assert "Governance → Personas" in exc.hint


@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFound), (409, Conflict), (418, ApiStatusError), (501, ServerError)]
)
async def test_statuses_map_to_error_classes(sleeps, status, error):
    with respx.mock(base_url=QUALYTICS, assert_all_called=True) as router:
        router.get("/x").respond(status, json={"detail": "nope"})
        async with make(sleeps, service="qualytics") as http:
            with pytest.raises(error) as info:
                await http.request("GET", "/x")
    assert type(info.value) is error and info.value.code is None
    assert str(info.value).startswith(f"Qualytics answered GET /x with {status}") and "nope" in str(info.value)


async def test_qualytics_validation_detail_is_readable(sleeps):
    detail = [{"loc": ["query", "size"], "msg": "less than or equal to 100", "type": "x"}]
    with respx.mock(base_url=QUALYTICS, assert_all_called=True) as router:
        router.get("/x").respond(422, json={"detail": detail})
        async with make(sleeps, service="qualytics") as http:
            with pytest.raises(ApiStatusError, match=r"query\.size: less than or equal to 100"):
                await http.request("GET", "/x")


def test_empty_token_is_a_config_error():
    with pytest.raises(ConfigError, match="ATLAN_API_TOKEN is empty"):
        HttpClient("atlan", ATLAN, "")


async def test_token_never_appears_in_errors_reprs_or_logs(sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[ApiError] = []
    echo = {"errorMessage": f"bad header Authorization: Bearer {TOKEN}", "errorCode": "E"}
    with respx.mock(base_url=ATLAN, assert_all_called=True) as router:
        router.get("/api/401").respond(401, json=echo)
        router.get("/api/403").respond(403, json=echo)
        router.get("/api/500").respond(500, json=echo)
        router.get("/api/html").respond(200, text=f"<p>{TOKEN}</p>")
        router.get("/api/conn").mock(side_effect=httpx.ConnectError("refused"))
        router.get("/api/tls").mock(side_effect=httpx.ConnectError("[SSL] handshake"))
        async with make(sleeps, max_retries=1) as http:
            for path in ("/api/401", "/api/403", "/api/500", "/api/html", "/api/conn", "/api/tls"):
                with pytest.raises(ApiError) as info:
                    await http.request("GET", path)
                errors.append(info.value)
            texts = [repr(http), repr(http._client), repr(http._auth), repr(http.__dict__.get("_auth"))]
    for exc in errors:
        texts += [str(exc), repr(exc), str(exc.hint), repr(exc.args)]
    texts.append(caplog.text)
    assert all(TOKEN not in t for t in texts)
    assert "***" in str(errors[1])  # the echoed token was scrubbed, the rest kept


def test_url_without_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match=r"atlan.url must start with https://"):
        HttpClient("atlan", "tenant.atlan.com", TOKEN)


async def test_an_injected_transport_replaces_the_network(sleeps):
    router = respx.MockRouter(base_url=ATLAN, assert_all_called=True)
    router.get("/api/x").respond(200, json={"via": "transport"})
    async with make(sleeps, transport=httpx.MockTransport(router.async_handler)) as http:
        assert await http.request("GET", "/api/x") == {"via": "transport"}
    router.assert_all_called()


def test_public_names_are_sorted_and_importable():
    import qatlan.clients as clients

    assert clients.__all__ == sorted(clients.__all__)
    assert all(hasattr(clients, name) for name in clients.__all__)
