"""Per-server operations around a sandbox API app: statistics, a rate limit, fault injection.

`OpsMiddleware` wraps one API app (Atlan or Qualytics). For every request outside
`/_sandbox/` it, in this order:

1. checks the server's rate limit (a sliding 60 s window; 429 with `Retry-After` beyond it),
2. draws this request's fault from a seeded RNG (so a seed gives the same sequence of faults
   for the same sequence of requests) and adds latency,
3. answers with an injected 429/500/502/503, drops the connection before the app runs
   (`drop`), or runs the app and drops the connection before the response completes
   (`drop_after`: the write has landed, the client cannot know),
4. records the request in the per-endpoint statistics (path template and method).

A dropped connection is a partial response (a Content-Length larger than the body sent) and
then `ConnectionDropped`: uvicorn closes the socket, and `SandboxASGITransport` turns it into
`httpx.RemoteProtocolError`, so both look like a broken connection to an httpx client.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "ADMIN_PREFIX",
    "ConnectionDropped",
    "FaultSettings",
    "OpsMiddleware",
    "OpsSettings",
    "RateLimiter",
    "ServerOps",
    "Stats",
    "error_response",
    "is_admin_path",
    "route_template",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX = "/_sandbox"
UNMATCHED = "(unmatched)"
DROPPED = "dropped"


class ConnectionDropped(Exception):
    """The sandbox broke this connection on purpose (a `drop` or `drop_after` fault)."""


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


_RATES = {"rate_429": "429", "rate_500": "500", "rate_502": "502", "rate_503": "503",
          "rate_drop": "drop", "rate_drop_after": "drop_after"}  # fmt: skip


@dataclass(frozen=True)
class FaultSettings:
    """Fault injection for one server; the JSON of `GET/PUT /_sandbox/faults`.

    Each `rate_*` is the probability that a request gets that fault (their sum is at most 1).
    Latency (uniform in min..max ms) is added to every request the settings apply to.
    `methods` / `paths` (prefixes) narrow which requests they apply to; empty means all.
    """

    seed: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_drop_after: float = 0.0
    latency_min_ms: float = 0
    latency_max_ms: float = 0
    retry_after: int = 1  # seconds, sent as Retry-After on injected 429 and 503
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.latency_max_ms:  # a fixed latency needs only latency_min_ms
            object.__setattr__(self, "latency_max_ms", self.latency_min_ms)
        object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))

    @classmethod
    def from_json(cls, doc: Any) -> FaultSettings:
        """Validate a settings object; raises ValueError naming the bad key."""
        if not isinstance(doc, dict):
            raise ValueError("fault settings must be a JSON object")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(doc) - set(known))
        if unknown:
            raise ValueError(f"unknown fault setting {unknown[0]!r}; known: {', '.join(known)}")
        settings = cls(**{key: _check_fault_value(key, raw) for key, raw in doc.items()})
        if sum(getattr(settings, key) for key in _RATES) > 1 + 1e-9:
            raise ValueError("the rate_* fault settings add up to more than 1")
        if settings.latency_min_ms > settings.latency_max_ms:
            raise ValueError("latency_min_ms is larger than latency_max_ms")
        return settings

    def to_json(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**doc, "methods": list(self.methods), "paths": list(self.paths)}

    def active(self) -> bool:
        return self.latency_max_ms > 0 or any(getattr(self, key) > 0 for key in _RATES)

    def applies_to(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        return not self.paths or any(path.startswith(p) for p in self.paths)

    def pick(self, u: float) -> str | None:
        """The fault for a uniform draw `u` in [0, 1): each kind owns a slice of that size."""
        edge = 0.0
        for key, kind in _RATES.items():
            edge += getattr(self, key)
            if u < edge:
                return kind
        return None

    def latency(self, u: float) -> float:
        """Seconds of added latency for a uniform draw `u`."""
        if self.latency_max_ms <= 0:
            return 0.0
        return (self.latency_min_ms + u * (self.latency_max_ms - self.latency_min_ms)) / 1000


def _check_fault_value(key: str, raw: Any) -> Any:
    is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if key in ("seed", "retry_after"):
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
            raise ValueError(f"{key} must be a whole number >= 0")
        return raw
    if key in _RATES:
        if not is_number or not 0 <= raw <= 1:
            raise ValueError(f"{key} must be a number from 0 to 1")
        return float(raw)
    if key in ("latency_min_ms", "latency_max_ms"):
        if not is_number or raw < 0:
            raise ValueError(f"{key} must be a number of milliseconds >= 0")
        return raw
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ValueError(f"{key} must be a list of strings")
    if key == "paths" and not all(x.startswith("/") for x in raw):
        raise ValueError("paths must be path prefixes starting with '/'")
    return tuple(raw)


_REASONS = {429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}
# UNCONFIRMED: Atlan's gateway 429 body is not documented; the Atlas error shape with this code
# is our choice. 500 is Apache Atlas' INTERNAL_ERROR; 503 is in the reference (maintenance).
_ATLAN_CODES = {429: "ATLAS-429-00-001", 500: "ATLAS-500-00-001", 503: "ATLAS-503-00-001"}
# UNCONFIRMED: a 502 comes from the load balancer in front of either API, as an HTML page.
_BAD_GATEWAY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def error_response(
    service: str, status: int, message: str | None = None, retry_after: int | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of an error in the server's own shape.

    Atlan: `{"errorCode", "errorMessage"}`; Qualytics: `{"detail"}` (`{"detail": "Too many
    requests"}` for a 429, UNCONFIRMED: Qualytics documents no rate limit).
    """
    headers = [] if retry_after is None else [(b"retry-after", str(retry_after).encode())]
    reason = _REASONS.get(status, "Error")
    if status == 502:
        return status, [*headers, (b"content-type", b"text/html")], _BAD_GATEWAY
    if service == "atlan":
        doc = {"errorCode": _ATLAN_CODES.get(status, f"ATLAS-{status}-00-001"),
               "errorMessage": message or reason}  # fmt: skip
    else:
        doc = {"detail": reason}
    return status, [*headers, (b"content-type", b"application/json")], json.dumps(doc).encode()


@dataclass
class OpsSettings:
    """How one server starts out; admin endpoints change the live values later."""

    requests_per_minute: int = 0  # 0 = unlimited
    faults: FaultSettings = field(default_factory=FaultSettings)
    clock: Callable[[], float] = time.monotonic  # the rate limit's clock, injectable for tests
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # injected latency


class RateLimiter:
    """A sliding-window log: at most `requests_per_minute` admitted requests in any 60 s."""

    WINDOW = 60.0

    def __init__(self, requests_per_minute: int = 0, clock: Callable[[], float] = time.monotonic):
        self.requests_per_minute = requests_per_minute
        self._clock = clock
        self._admitted: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """Admit one request (None), or return the whole seconds until a slot frees."""
        with self._lock:
            now = self._clock()
            while self._admitted and self._admitted[0] <= now - self.WINDOW:
                self._admitted.popleft()
            if self.requests_per_minute <= 0:
                return None
            if len(self._admitted) < self.requests_per_minute:
                self._admitted.append(now)
                return None
            wait = self._admitted[0] + self.WINDOW - now
            return max(1, math.ceil(wait))

    def set_limit(self, requests_per_minute: int) -> None:
        """Change the limit and start a fresh window."""
        with self._lock:
            self.requests_per_minute = requests_per_minute
            self._admitted.clear()


class Stats:
    """Request counts per (path template, method), status-code counts and bytes sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._endpoints: dict[tuple[str, str], dict[str, Any]] = {}
            self._total = _empty_counter()
            self._rate_limited = 0
            self._faults = {kind: 0 for kind in ("429", "500", "502", "503", "drop", "drop_after")}
            self._latency_ms = 0.0

    def record(self, method: str, template: str, status: str, bytes_out: int) -> None:
        with self._lock:
            counter = self._endpoints.setdefault((template, method), _empty_counter())
            for c in (counter, self._total):
                c["count"] += 1
                c["status"][status] = c["status"].get(status, 0) + 1
                c["bytes_out"] += bytes_out

    def note_rate_limited(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def note_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def note_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency_ms += seconds * 1000

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            endpoints = [
                {"method": method, "path": path, **_copy_counter(c)}
                for (path, method), c in sorted(self._endpoints.items())
            ]
            return {
                "total": _copy_counter(self._total),
                "endpoints": endpoints,
                "rate_limited": self._rate_limited,
                "faults": dict(self._faults),
                "latency_ms": round(self._latency_ms, 3),
            }


def _empty_counter() -> dict[str, Any]:
    return {"count": 0, "status": {}, "bytes_out": 0}


def _copy_counter(c: dict[str, Any]) -> dict[str, Any]:
    return {"count": c["count"], "status": dict(sorted(c["status"].items())), "bytes_out": c["bytes_out"]}


class ServerOps:
    """The live operational state of one server: limiter, faults (with their RNG), stats."""

    def __init__(self, service: str, settings: OpsSettings | None = None):
        settings = settings or OpsSettings()
        self.service = service
        self.sleep = settings.sleep
        self.limiter = RateLimiter(settings.requests_per_minute, settings.clock)
        self.stats = Stats()
        #: called before each API request (the admin layer re-applies store limits with it)
        self.on_request: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self.set_faults(settings.faults)

    def set_faults(self, faults: FaultSettings) -> None:
        """Replace the fault settings and restart the fault sequence from their seed."""
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def draw(self, method: str, path: str) -> tuple[str | None, float]:
        """This request's fault kind (or None) and added latency in seconds."""
        with self._lock:
            faults = self.faults
            if not faults.active() or not faults.applies_to(method, path):
                return None, 0.0
            u_fault, u_latency = self._rng.random(), self._rng.random()
        return faults.pick(u_fault), faults.latency(u_latency)


def route_template(routes: list[Any], scope: Scope) -> str | None:
    """The path template of the route that serves `scope` (e.g. `/api/x/{guid}`), if any.

    A route that matches the path but not the method (405) still names the template.
    """
    from starlette.routing import Match

    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        template: str | None = getattr(route, "path", "")
        if not hasattr(route, "endpoint"):  # a Mount: look inside
            sub_routes = getattr(route, "routes", None) or []
            inner = route_template(sub_routes, {**scope, **child}) if sub_routes else "/{path:path}"
            template = f"{template}{inner}" if inner else None
        if match == Match.FULL and template:
            return template
        partial = partial or template
    return partial


class _Recorder:
    """Wraps `send` to note the status and the body bytes that went out."""

    def __init__(self, send: Send):
        self._send = send
        self.status: int | None = None
        self.bytes_out = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.bytes_out += len(message.get("body", b""))
        await self._send(message)


class _Receiver:
    """Wraps `receive` to know whether the request body has been read to the end.

    Before a drop the rest of the body is read: closing a socket with unread data makes the
    kernel send a reset, which a client may see before the partial response.
    """

    def __init__(self, receive: Receive):
        self._receive = receive
        self.body_done = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    async def drain(self) -> None:
        while not self.body_done:
            await self()


class OpsMiddleware:
    """ASGI middleware applying one server's `ServerOps` to its API app.

    Requests under `/_sandbox/` go to `admin_app` untouched: no limit, no faults, no stats.
    """

    def __init__(self, app: ASGIApp, ops: ServerOps, *, admin_app: ASGIApp | None = None):
        self.app = app
        self.ops = ops
        self.admin_app = admin_app
        self._routes = getattr(app, "routes", None) or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif is_admin_path(scope["path"]):
            await (self.admin_app or _not_found)(scope, receive, send)
        else:
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ops.on_request is not None:
            self.ops.on_request()
        method = scope["method"]
        template = route_template(self._routes, scope) or UNMATCHED
        recorder = _Recorder(send)
        status = None
        try:
            await self._serve(scope, _Receiver(receive), recorder)
        except ConnectionDropped:
            status = DROPPED
            raise
        finally:
            if status is None:
                status = str(recorder.status) if recorder.status is not None else "500"
            self.ops.stats.record(method, template, status, recorder.bytes_out)

    async def _serve(self, scope: Scope, receive: _Receiver, send: Send) -> None:
        ops = self.ops
        wait = ops.limiter.acquire()
        if wait is not None:
            ops.stats.note_rate_limited()
            limit = ops.limiter.requests_per_minute
            message = f"Rate limit exceeded: at most {limit} requests per minute"
            await _send_response(send, *error_response(ops.service, 429, message, wait))
            return
        kind, delay = ops.draw(scope["method"], scope["path"])
        if delay > 0:
            ops.stats.note_latency(delay)
            await ops.sleep(delay)
        if kind is not None:
            ops.stats.note_fault(kind)
        if kind in ("429", "500", "502", "503"):
            retry = ops.faults.retry_after if kind in ("429", "503") else None
            await _send_response(send, *error_response(ops.service, int(kind), None, retry))
        elif kind == "drop":
            await receive.drain()
            await _break_connection(send, 200, [], b"")
        elif kind == "drop_after":
            status, headers, body = await _run_buffered(self.app, scope, receive)
            await receive.drain()
            await _break_connection(send, status, headers, body)
        else:
            await self.app(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await _send_response(send, 404, [(b"content-type", b"application/json")], b'{"error": "not found"}')


async def _send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _run_buffered(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[int, list[Any], bytes]:
    """Run the app to completion, keeping its response instead of sending it."""
    start: dict[str, Any] = {"status": 500, "headers": []}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(status=message["status"], headers=list(message.get("headers", [])))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return start["status"], start["headers"], b"".join(chunks)


async def _break_connection(send: Send, status: int, headers: list[Any], body: bytes) -> None:
    """Send the head and part of the body, then raise ConnectionDropped (never returns)."""
    if status < 200 or status in (204, 304):
        status = 200  # these carry no body, and a missing body is what makes the break visible
    if len(body) < 2:
        body = b'{"detail": "this body never arrives in full"}'
    skip = (b"content-length", b"transfer-encoding")
    headers = [(k, v) for k, v in headers if k.lower() not in skip]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise ConnectionDropped("the sandbox dropped this connection (fault injection)")

