"""The HTTP face of `qatlan watch`: webhook receivers, /healthz and /metrics (Starlette).

A request is checked in the order that costs an attacker the least of our time: the method,
then the shared secret (before a byte of the body is read), then the size, then the JSON.
Only then are its work keys handed to `on_keys`, which must be cheap (put them on a queue);
the reconcile happens elsewhere. Each refusal is counted in `qatlan_watch_rejected_total` and
logged once at WARNING with the source, the reason and the client address: never a header,
a secret or a body.

    POST /webhooks/atlan      header x-atlan-signing-secret (Atlan webhooks)
    POST /webhooks/qualytics  header x-qualytics-secret, or Authorization: Bearer (Flow HTTP action)
    GET  /healthz             health() as JSON; 503 when it says "ok": false
    GET  /metrics             Prometheus text format
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.errors import ConfigError
from qatlan.watch.events import EventError, parse_atlan, parse_qualytics
from qatlan.watch.metrics import WatchMetrics

__all__ = [
    "ATLAN_SECRET_ENV",
    "DEFAULT_MAX_BODY",
    "QUALYTICS_SECRET_ENV",
    "ListenError",
    "OnKeys",
    "build_app",
    "check_listen",
    "is_loopback",
]

ATLAN_SECRET_ENV = "QATLAN_ATLAN_WEBHOOK_SECRET"
QUALYTICS_SECRET_ENV = "QATLAN_QUALYTICS_FLOW_SECRET"
#: 1 MiB: an Atlan event is a few kB; a Flow message far less
DEFAULT_MAX_BODY = 1_048_576

#: on_keys(source, event_type, keys): queue the keys; may be async; raising makes the sender retry.
#: An on_keys that takes an `updates` keyword also gets, for an Atlan event, the entity's
#: (GUID, updateTime) (`((guid, ms),)`, or `()` when the event lacks them): the watcher tells
#: qatlan's own writes by them
OnKeys = Callable[..., Awaitable[None] | None]

_LOG = logging.getLogger("qatlan.watch")
_ENV = {"atlan": ATLAN_SECRET_ENV, "qualytics": QUALYTICS_SECRET_ENV}
_LABEL = {"atlan": "Atlan webhook", "qualytics": "Qualytics Flow"}
#: the webhook routes take every method so that a wrong one is counted (reason "method")
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ListenError(ConfigError, ValueError):
    """`qatlan watch` would listen beyond loopback with a webhook route left unprotected."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen(host: str, atlan_secret: str | None, qualytics_secret: str | None) -> None:
    """Refuse to listen beyond loopback unless both webhook secrets are set."""
    if is_loopback(host):
        return
    missing = [env for env, secret in ((ATLAN_SECRET_ENV, atlan_secret), (QUALYTICS_SECRET_ENV, qualytics_secret)) if not secret]
    if missing:
        raise ListenError(
            f"qatlan watch will not listen on {host} without webhook secrets ({', '.join(missing)} not set)",
            hint=f"set {ATLAN_SECRET_ENV} and {QUALYTICS_SECRET_ENV} or listen on 127.0.0.1",
        )


def build_app(
    on_keys: OnKeys,
    *,
    atlan_secret: str | None,
    qualytics_secret: str | None,
    metrics: WatchMetrics,
    health: Callable[[], dict[str, Any]],
    max_body: int = DEFAULT_MAX_BODY,
    allow_unsigned: bool = False,
    logger: logging.Logger | None = None,
) -> Starlette:
    """The watcher's ASGI app. A source whose secret is None answers 401 to everything, unless
    `allow_unsigned` (which the CLI allows only on loopback) lets unsigned requests through."""
    receiver = _Receiver(on_keys, {"atlan": atlan_secret, "qualytics": qualytics_secret},
                         metrics, max_body, allow_unsigned, logger or _LOG)
    routes = [
        Route("/webhooks/atlan", receiver.atlan, methods=_ANY_METHOD),
        Route("/webhooks/qualytics", receiver.qualytics, methods=_ANY_METHOD),
        Route("/healthz", _healthz(health), methods=["GET", "HEAD"]),
        Route("/metrics", _metrics(metrics), methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Refused(Exception):
    """A request refused with `status`; `reason` is the metrics label."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.reason, self.message, self.headers = status, reason, message, headers


class _Receiver:
    def __init__(self, on_keys: OnKeys, secrets: dict[str, str | None], metrics: WatchMetrics,
                 max_body: int, allow_unsigned: bool, logger: logging.Logger):
        self.on_keys = on_keys
        try:
            params = list(inspect.signature(on_keys).parameters.values())
        except (TypeError, ValueError):  # a callable without a signature: keys only
            params = []
        self._updates = any(p.name == "updates" or p.kind is p.VAR_KEYWORD for p in params)
        self._secrets = secrets
        self.metrics = metrics
        self.max_body = max_body
        self.allow_unsigned = allow_unsigned
        self.log = logger

    async def atlan(self, request: Request) -> Response:
        return await self._receive("atlan", request)

    async def qualytics(self, request: Request) -> Response:
        return await self._receive("qualytics", request)

    async def _receive(self, source: str, request: Request) -> Response:
        try:
            if request.method != "POST":
                raise _Refused(405, "method", f"{request.method} is not allowed here; {_LABEL[source]}s POST",
                               {"Allow": "POST"})
            self._check_secret(source, request)
            body = await self._read_body(request)
            return await self._handle(source, body)
        except _Refused as refused:
            self.metrics.reject(source, refused.reason)
            client = request.client.host if request.client else "-"
            self.log.warning("webhook refused: source=%s reason=%s client=%s", source, refused.reason, client)
            return _error(refused.status, refused.message, refused.headers)

    def _check_secret(self, source: str, request: Request) -> None:
        expected = self._secrets[source]
        if not expected:  # None or "": an empty secret would let an empty header through
            if self.allow_unsigned:
                return
            raise _Refused(401, "secret", f"the {_LABEL[source]} secret is not configured: set {_ENV[source]}")
        given = _given_secret(source, request)
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise _Refused(401, "secret", f"missing or wrong {_LABEL[source]} secret")

    async def _read_body(self, request: Request) -> bytes:
        too_big = _Refused(413, "size", f"the body is larger than {self.max_body} bytes")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise _Refused(400, "malformed", "the Content-Length header is not a number")
            if int(declared) > self.max_body:
                raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(self, source: str, body: bytes) -> Response:
        try:
            event_type, keys, note, updates = _read_event(source, body)
        except EventError as exc:
            raise _Refused(400, "malformed", str(exc)) from None
        self.metrics.event(source, event_type)
        if event_type == "validation":
            return JSONResponse({"status": "validated"})
        if not keys:
            return JSONResponse({"queued": 0, "ignored": note})
        try:
            result = (self.on_keys(source, event_type, keys, updates=updates) if self._updates
                      else self.on_keys(source, event_type, keys))
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # the queue refused: the sender should retry later
            self.log.warning("webhook not queued: source=%s error=%s", source, type(exc).__name__)
            return _error(503, "the event could not be queued; retry later", {"Retry-After": "5"})
        return JSONResponse({"queued": len(keys)}, status_code=202)


def _given_secret(source: str, request: Request) -> str | None:
    if source == "atlan":
        return request.headers.get("x-atlan-signing-secret")
    given = request.headers.get("x-qualytics-secret")
    if given is not None:
        return given
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _read_event(source: str, body: bytes) -> tuple[str, tuple[str, ...], str, tuple[tuple[str, int], ...]]:
    """(event type for metrics and on_keys, keys, why nothing is queued, the Atlan entity's
    (GUID, updateTime) when the event gives both)."""
    if source == "atlan":
        event = parse_atlan(body)
        if event.kind == "validation":
            return "validation", (), "", ()
        if event.kind == "ignored":
            return "ignored", (), event.reason, ()
        updates = ((event.guid, event.update_time),) if event.guid and event.update_time else ()
        return event.operation or "event", event.keys, "", updates
    found = parse_qualytics(body)
    return found.event_type, found.keys, "", ()


def _healthz(health: Callable[[], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            report = health()
            if inspect.isawaitable(report):
                report = await report
        except Exception as exc:
            return JSONResponse({"ok": False, "error": f"the health check failed: {type(exc).__name__}"}, status_code=503)
        status = 503 if isinstance(report, dict) and report.get("ok") is False else 200
        return JSONResponse(report, status_code=status)

    return endpoint


def _metrics(metrics: WatchMetrics) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    return endpoint
