"""Build the Atlan and Qualytics clients from a Config (one place for the wiring)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from qatlan.clients.atlan.client import SEARCH, AtlanClient
from qatlan.clients.http import HttpClient
from qatlan.clients.qualytics.client import QualyticsClient
from qatlan.config import Config

__all__ = ["Clients", "open_clients"]

#: POSTs that only read (they do not count as writes)
_READ_POSTS = frozenset({("atlan", SEARCH)})


@dataclass
class Clients:
    atlan: AtlanClient
    qualytics: QualyticsClient
    atlan_http: HttpClient
    qualytics_http: HttpClient

    def request_counts(self) -> dict[str, int]:
        return {"atlan": self.atlan_http.stats.total, "qualytics": self.qualytics_http.stats.total}

    def counters(self) -> dict[str, Counter[tuple[str, str]]]:
        """Requests sent so far by service and (method, path template), for `since`."""
        return {"atlan": self.atlan_http.stats.requests.copy(),
                "qualytics": self.qualytics_http.stats.requests.copy()}

    def since(self, before: dict[str, Counter[tuple[str, str]]]) -> tuple[dict[str, int], dict[str, int]]:
        """(requests by service, write requests by "service METHOD path") sent after `before`."""
        after = self.counters()
        requests: dict[str, int] = {}
        writes: dict[str, int] = {}
        for service in ("atlan", "qualytics"):
            delta = after[service] - before[service]
            requests[service] = sum(delta.values())
            for (method, path), n in sorted(delta.items()):
                if method != "GET" and (service, path) not in _READ_POSTS:
                    writes[f"{service} {method} {path}"] = n
        return requests, writes


@contextlib.asynccontextmanager
async def open_clients(
    config: Config,
    *,
    atlan_transport: httpx.AsyncBaseTransport | None = None,
    qualytics_transport: httpx.AsyncBaseTransport | None = None,
    **http_overrides: Any,
) -> AsyncIterator[Clients]:
    """Both clients, closed on exit. Transports are seams for tests and the in-process demo."""
    a, q = config.atlan, config.qualytics
    atlan_http = _http("atlan", a, config.atlan_token(), atlan_transport, http_overrides,
                       config.token_variable("atlan"), _origin(config, "atlan"))
    qualytics_http = _http("qualytics", q, config.qualytics_token(), qualytics_transport,
                           http_overrides, config.token_variable("qualytics"), _origin(config, "qualytics"))
    try:
        yield Clients(
            atlan=AtlanClient(atlan_http, page_size=a.page_size),
            qualytics=QualyticsClient(qualytics_http, page_size=q.page_size),
            atlan_http=atlan_http,
            qualytics_http=qualytics_http,
        )
    finally:
        await atlan_http.aclose()
        await qualytics_http.aclose()


def _origin(config: Config, service: str) -> str:
    """Where the service's URL was set, for messages: "$ATLAN_BASE_URL" or "atlan.url in qatlan.toml"."""
    source = config.url_sources().get(f"{service}.url")
    if source is not None:
        return f"${source[0]}"
    return f"{service}.url in {config.path.name if config.path is not None else 'qatlan.toml'}"


def _http(service: str, section: Any, token: str, transport: Any, overrides: dict[str, Any],
          token_env: str, url_origin: str) -> HttpClient:
    """One service's HttpClient from its config section ([atlan] or [qualytics])."""
    return HttpClient(
        service,
        section.url,
        token,
        timeout=section.timeout,
        verify_tls=section.verify_tls,
        requests_per_minute=section.requests_per_minute,
        concurrency=section.concurrency,
        max_retries=section.max_retries,
        transport=transport,
        token_env=token_env,
        url_origin=url_origin,
        **overrides,
    )
