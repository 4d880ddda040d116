"""`HttpClient`: the one place where qatlan talks HTTP to Atlan and Qualytics.

It owns the Bearer header, retries (tenacity), the client-side rate limit (aiolimiter), the
concurrency bound, request counting and error mapping. Callers get parsed JSON or a
`qatlan.errors.ApiError`; they never see an httpx object.

One *request* is one HTTP attempt on the wire: a call that is retried twice counts three.
Every attempt, retries included, waits for a concurrency slot and then for the rate limiter;
a 429's Retry-After also holds the client's other requests, so they wait it out too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from qatlan import __version__
from qatlan.clients.errors import (
    display_name,
    is_dns_error,
    is_tls_error,
    response_error,
    status_error,
    transport_error,
)
from qatlan.errors import ApiConnectionError, ApiError, ApiStatusError, ConfigError

__all__ = ["RETRY_STATUSES", "HttpClient", "HttpStats", "gather", "last_call_seconds", "reset_call_seconds"]

#: how long the last HTTP attempt awaited in this task took, on the wire (no waits for the
#: rate limit or a concurrency slot, no retry backoff); for callers that adapt batch sizes
_LAST_CALL: ContextVar[float | None] = ContextVar("qatlan_last_call_seconds", default=None)


def reset_call_seconds() -> None:
    """Forget the last call's time in this task (before a call whose time you want)."""
    _LAST_CALL.set(None)


def last_call_seconds() -> float | None:
    """Seconds the last HTTP attempt awaited in this task took on the wire, or None."""
    return _LAST_CALL.get()

log = logging.getLogger("qatlan.http")

#: statuses retried for idempotent calls
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: statuses that prove the server did not act, so even a non-idempotent call is retried
_SAFE_STATUSES = frozenset({408, 429})
#: transport failures retried for idempotent calls
_RETRY_TRANSPORT = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.ConnectError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
#: transport failures before the request left, retried for any call
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: longest wait, whether from Retry-After or from backoff (pyatlan's max_backoff_wait)
MAX_WAIT = 120.0
#: seconds to wait for a connection (the read timeout is the configured `timeout`)
CONNECT_TIMEOUT = 5.0
#: until a server has answered once, give up connecting to it after about this many seconds
#: (a closed port, a host that drops packets); a name that does not resolve is not retried
UNREACHED_BUDGET = 8.0
#: while a request waits for its answer, a line every this many seconds (per client)
WAITING_LINE = 10.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class HttpStats:
    """What a client sent: attempts per (method, path template), 429s received, retries."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    rate_limited: int = 0
    retries: int = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Attempts sent, optionally only for one method and/or path template."""
        return sum(
            n for (m, p), n in self.requests.items()
            if (method is None or m == method.upper()) and (path is None or p == path)
        )


class _BearerAuth(httpx.Auth):
    """Adds `Authorization: Bearer <token>`; keeps the token out of reprs."""

    def __init__(self, token: str):
        self.__token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {self.__token}"
        yield request

    def scrub(self, text: str) -> str:
        return text.replace(self.__token, "***") if self.__token else text

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"


#: servers count requests over this many seconds (Atlan's limit is per minute)
WINDOW = 60.0
#: how much later than its turn one request may reach the server than another, in seconds
SLACK = 2.0


def paced_limiter(requests_per_minute: int, slack: float = SLACK) -> AsyncLimiter:
    """At most `requests_per_minute` requests in any 60 s, evenly paced, with a tiny bank.

    A leaky bucket that refills at the limit's rate and holds C requests lets C + the limit
    through in one 60 s window, and a server counting over a sliding minute (Atlan's
    per-tenant limit; the sandbox) answers 429 to the excess. So the bucket refills every
    `(60 + slack) / requests_per_minute` seconds (`turn`), which leaves `slack` seconds'
    worth of the limit unused in every minute, and spends that margin three ways:

    - a bank of C = `slack / 4` seconds' worth of turns (at least one request). A waiter
      wakes a little after its turn (the event loop's timers round up to the millisecond,
      then the task must be scheduled); with a bucket of one, every such delay is lost for
      good (at 2,400/min, ~1 ms of a 26 ms turn: the 93% once measured). The bank lets the
      next request go at once instead, so the pace is kept on average;
    - the same again for the next run chained after this one (`qatlan plan && qatlan
      apply`), which starts with a full bank: 2·C·turn ≤ slack / 2;
    - the other half for lateness: as long as one request reaches the server less than
      `slack / 2` seconds later than another (relative to its turn), the server sees at
      most the limit in any window.

    The cost: 60 / (60 + slack) of the limit, 96.8% with the default 2 s. At low limits
    (a turn longer than slack / 4) the bank is one request: no burst at all.
    """
    turn = (WINDOW + max(0.0, slack)) / requests_per_minute
    bank = max(1, int(max(0.0, slack) / 4 / turn))
    return AsyncLimiter(bank, bank * turn)


class HttpClient:
    """An async JSON client for one service (`atlan` or `qualytics`).

    `base_url` is the API root: the Atlan tenant (`https://x.atlan.com`) or the Qualytics
    API (`https://x.qualytics.io/api`). `requests_per_minute` 0 means no client-side limit.
    `sleep`, `jitter`, `clock` and `limiter` are seams for tests.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        verify_tls: bool = True,
        requests_per_minute: int = 0,
        concurrency: int = 8,
        max_retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        token_env: str | None = None,
        sleep: Sleep | None = None,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        limiter: Any = None,
        url_origin: str | None = None,
    ):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env or f"{service.upper()}_API_TOKEN"
        if not token:
            raise ConfigError(
                f"{self.token_env} is empty; export the {display_name(service)} API token in it"
            )
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"{service}.url must start with https:// (got {self.base_url!r}); fix it in qatlan.toml"
            )
        self.timeout = timeout
        #: where the URL was set, for messages: "atlan.url in qatlan.toml" or "$ATLAN_BASE_URL"
        self.url_origin = url_origin or f"{service}.url in qatlan.toml"
        self._reached = False  # a response below 400 came back from this server
        self._waiting_said = 0.0  # when the last "still waiting" line was written (monotonic)
        self.max_retries = max(0, max_retries)
        self.stats = HttpStats()
        self._auth = _BearerAuth(token)
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._jitter = jitter
        self._clock = clock
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        if limiter is None and requests_per_minute > 0:
            limiter = paced_limiter(requests_per_minute)
        self._limiter = limiter
        self._hold_until = 0.0  # no request before this (self._clock), after a 429's Retry-After
        self._client = _async_client(self.base_url, self._auth, timeout, verify_tls, transport, concurrency)

    def __repr__(self) -> str:
        return f"HttpClient(service={self.service!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> "HttpClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ----------------------------------------------------------------------- requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        path_params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send `method path` and return the parsed JSON body (None for 204 or an empty body).

        `path` may be a template (`/datastores/{id}`) filled from `path_params`, each value
        percent-encoded; requests are counted per template. List values in `params` repeat the
        key. `idempotent` (default: every method but POST) allows retrying after the request may
        have reached the server (5xx, read errors); other calls retry only on 408, 429 and
        failures to connect.
        """
        method = method.upper()
        url = _expand(path, path_params)
        safe = method != "POST" if idempotent is None else idempotent
        attempts = [0]
        retrying = AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(partial(_retryable, safe)),
            sleep=self._sleep,
            before_sleep=partial(self._before_sleep, method, url),
            reraise=True,
        )
        try:
            return await retrying(self._attempt, method, path, url, params, json, attempts)
        except ApiError as exc:
            if attempts[0] > 1:
                exc.args = (f"{exc.args[0]} (gave up after {attempts[0]} attempts)", *exc.args[1:])
            raise

    async def _attempt(
        self, method: str, template: str, url: str, params: Any, body: Any, attempts: list[int]
    ) -> Any:
        attempts[0] += 1
        held = self._hold_until - self._clock()
        if held > 0:
            await self._sleep(held)
        limiter = self._limiter if self._limiter is not None else contextlib.nullcontext()
        async with self._semaphore:
            async with limiter:
                self.stats.requests[(method, template)] += 1
                response = await self._send(method, url, params, body)
        if response.status_code >= 400:
            error = status_error(
                self.service, response, method, url,
                token_env=self.token_env, now=self._clock(), scrub=self._auth.scrub,
            )
            if response.status_code == 429:
                self._rate_limited(error)
            if response.status_code in (404, 405) and not self._reached:
                error.hint = self._not_the_service_hint()
            raise error
        parsed = self._parse(response, method, url)
        self._reached = True
        return parsed

    def _not_the_service_hint(self) -> str:
        svc = display_name(self.service)
        example = ("https://TENANT.atlan.com" if self.service == "atlan"
                   else "https://TENANT.qualytics.io/api")
        return (f"{self.base_url} answered, but not as the {svc} API does: check that "
                f"{self.url_origin} is your {svc} URL (like {example}), not another service's")

    def _rate_limited(self, error: ApiError) -> None:
        """Count a 429; hold every later request of this client for its Retry-After."""
        self.stats.rate_limited += 1
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            until = self._clock() + min(float(retry_after), MAX_WAIT)
            self._hold_until = max(self._hold_until, until)

    async def _send(self, method: str, url: str, params: Any, body: Any) -> httpx.Response:
        started = time.monotonic()
        try:
            response = await self._answer(method, url, params, body, started)
        except httpx.HTTPError as exc:
            _LAST_CALL.set(time.monotonic() - started)
            log.debug("%s %s %s failed: %s", self.service, method, url, type(exc).__name__)
            raise transport_error(self.service, self.base_url, exc, method, url, self.timeout,
                                  origin=self.url_origin) from exc
        _LAST_CALL.set(time.monotonic() - started)
        log.debug(
            "%s %s %s -> %d in %.0f ms",
            self.service, method, url, response.status_code, (time.monotonic() - started) * 1000,
        )
        return response

    async def _answer(self, method: str, url: str, params: Any, body: Any, started: float) -> httpx.Response:
        """The response, saying on stderr (a log warning, at most one per WAITING_LINE seconds
        for this client) while the server keeps a request waiting."""
        task = asyncio.ensure_future(self._client.request(method, url, params=params, json=body))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=WAITING_LINE)
                if done:
                    return task.result()
                now = time.monotonic()
                if now - self._waiting_said >= WAITING_LINE:
                    self._waiting_said = now
                    log.warning("%s has not answered %s %s for %.0f s; waiting up to %g s (%s.timeout)",
                                display_name(self.service), method, url, now - started,
                                self.timeout, self.service)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise

    def _parse(self, response: httpx.Response, method: str, url: str) -> Any:
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            start = response.text[:120].replace("\n", " ")
            error = response_error(
                self.service, method, url, f"a body that is not JSON ({kind}): {start!r}",
                scrub=self._auth.scrub,
            )
            if not self._reached:
                error.hint = self._not_the_service_hint()
            raise error from None

    def unexpected(self, method: str, path: str, what: str) -> ApiError:
        """An `ApiResponseError` for a JSON body of the wrong shape (for the API clients)."""
        return response_error(self.service, method, path, what, scrub=self._auth.scrub)

    # ----------------------------------------------------------------------- retry policy

    def _unreached(self, state: RetryCallState) -> bool:
        """The server never answered, and this attempt could not connect to it or got no
        answer in time (a closed port, a host that drops packets, a server that hangs)."""
        exc = state.outcome.exception() if state.outcome else None
        return not self._reached and isinstance(getattr(exc, "__cause__", None),
                                                (*_UNSENT, httpx.ReadTimeout))

    def _stop(self, state: RetryCallState) -> bool:
        """After max_retries; for a server that never answered, after UNREACHED_BUDGET
        seconds of failing to connect (or one read timeout), and at once when its name does
        not resolve."""
        if state.attempt_number >= self.max_retries + 1:
            return True
        if self._unreached(state):
            exc = state.outcome.exception() if state.outcome else None
            return is_dns_error(exc) or (state.seconds_since_start or 0.0) >= UNREACHED_BUDGET
        return False

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server sent one (capped), else capped full-jitter backoff;
        within what is left of UNREACHED_BUDGET while the server has never answered."""
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), MAX_WAIT)
        wait = min(MAX_WAIT, 2.0 ** state.attempt_number) * self._jitter()
        if self._unreached(state):
            left = UNREACHED_BUDGET - (state.seconds_since_start or 0.0)
            wait = max(0.1, min(wait, left))
        return wait

    def _before_sleep(self, method: str, url: str, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ApiStatusError):
            why = str(exc.status)
        else:
            why = type(getattr(exc, "__cause__", None)).__name__
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s %s %s: %s, retry %d of %d in %.1f s",
            display_name(self.service), method, url, why, state.attempt_number, self.max_retries, wait,
        )


def _async_client(
    base_url: str, auth: httpx.Auth, timeout: float, verify_tls: bool,
    transport: httpx.AsyncBaseTransport | None, concurrency: int,
) -> httpx.AsyncClient:
    slots = max(1, concurrency)
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        verify=_ssl_context() if verify_tls else False,
        transport=transport,
        headers={"Accept": "application/json", "User-Agent": f"qatlan/{__version__}"},
        limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots),
    )


@functools.lru_cache(maxsize=1)
def _ssl_context() -> Any:
    """One verifying SSL context per process (building one reads the CA bundle: ~60 ms)."""
    return httpx.create_ssl_context()


def _retryable(idempotent: bool, exc: BaseException) -> bool:
    if isinstance(exc, ApiStatusError):
        return exc.status in (RETRY_STATUSES if idempotent else _SAFE_STATUSES)
    if isinstance(exc, ApiConnectionError):
        cause = exc.__cause__
        if cause is None or is_tls_error(cause):
            return False
        return isinstance(cause, _UNSENT) or (idempotent and isinstance(cause, _RETRY_TRANSPORT))
    return False


def _expand(path: str, path_params: Mapping[str, Any] | None) -> str:
    if not path_params:
        return path
    return path.format(**{k: quote(str(v), safe="") for k, v in path_params.items()})


async def gather(*aws: Awaitable[Any]) -> list[Any]:
    """Run awaitables concurrently and return their results in order.

    Unlike a bare `asyncio.gather`, the first failure cancels the others before it is raised,
    so no request keeps running (or logs "exception never retrieved") behind the caller's back.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
