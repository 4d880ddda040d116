"""Turning HTTP failures into qatlan errors (one place, used by `http.HttpClient`).

Transport failures (httpx exceptions) become `ApiConnectionError`; error statuses become the
`ApiStatusError` subclass for the status; bodies that are not what the API promises become
`ApiResponseError`. Every message names the service, the call and what to do about it, and
never contains the token (callers pass `scrub` to remove it from anything the server said).
"""

from __future__ import annotations

import email.utils
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from qatlan.errors import (
    ApiConnectionError,
    ApiResponseError,
    ApiStatusError,
    AuthenticationError,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
)

#: longest server message quoted in an error
_MAX_QUOTE = 300

_STATUS_CLASSES: dict[int, type[ApiStatusError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}

ATLAN_403_HINT = (
    "the persona bound to the Atlan API token lacks a metadata policy for {what}; in Atlan → "
    "Governance → Personas, give that persona a metadata policy (read and update) on it"
)
_QUALYTICS_403_HINT = (
    "the Qualytics user behind {env} lacks the role or team permission for this; ask a "
    "Qualytics admin to grant it (Settings → Users / Teams)"
)


def display_name(service: str) -> str:
    """`atlan` → `Atlan`, `qualytics` → `Qualytics`."""
    return service[:1].upper() + service[1:]


# --------------------------------------------------------------------------- transport errors


def is_tls_error(exc: BaseException | None) -> bool:
    """True when `exc` (or anything in its cause chain) is a TLS/SSL failure."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return True
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL:" in text or "[SSL" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


#: what resolvers say when a host name does not resolve (glibc, macOS, Windows)
_DNS_MESSAGES = ("name or service not known", "nodename nor servname", "getaddrinfo failed",
                 "temporary failure in name resolution", "no address associated with hostname",
                 "name does not resolve")


def is_dns_error(exc: BaseException | None) -> bool:
    """True when `exc` (or anything in its cause chain) says a host name did not resolve."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror) or any(m in str(exc).lower() for m in _DNS_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def transport_error(
    service: str, base_url: str, exc: httpx.HTTPError, method: str, path: str, timeout: float,
    *, origin: str | None = None,
) -> ApiConnectionError:
    """The `ApiConnectionError` for an httpx exception raised while calling `method path`.
    `origin` says where the URL was set ("atlan.url in qatlan.toml", "$ATLAN_BASE_URL")."""
    svc = display_name(service)
    origin = origin or f"{service}.url in qatlan.toml"
    reason = str(exc) or type(exc).__name__
    if is_tls_error(exc):
        return ApiConnectionError(
            f"TLS handshake with {svc} at {base_url} failed: {reason}",
            service=service,
            hint=f"if the server uses a private CA, point SSL_CERT_FILE at its certificate; "
            f"only for a trusted test host, set {service}.verify_tls = false in qatlan.toml",
        )
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)):
        why = " (the host name does not resolve)" if is_dns_error(exc) else (
            " (no connection within the connect timeout)" if isinstance(exc, httpx.ConnectTimeout) else "")
        return ApiConnectionError(
            f"cannot reach {svc} at {base_url}: {reason}{why}; "
            f"check {origin} and that the host is up",
            service=service,
        )
    if isinstance(exc, httpx.TimeoutException):
        return ApiConnectionError(
            f"{svc} did not answer {method} {path} within {timeout:g} s ({type(exc).__name__})",
            service=service,
            # UNCONFIRMED: the config key for the timeout is owned by the config module
            hint=f"the server may be overloaded; retry later or raise {service}.timeout in qatlan.toml",
        )
    return ApiConnectionError(
        f"the connection to {svc} broke during {method} {path}: {reason}", service=service
    )


# --------------------------------------------------------------------------- status errors


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def _server_code_and_message(body: Any) -> tuple[str | None, str | None]:
    """Atlan `errorCode`/`errorMessage` (also `code`/`message`); Qualytics `detail`."""
    if not isinstance(body, Mapping):
        return None, None
    code = body.get("errorCode") or body.get("code")
    message = body.get("errorMessage") or body.get("message")
    detail = body.get("detail")
    if message is None and detail is not None:
        message = _detail_text(detail)
    return (str(code) if code is not None else None), (str(message) if message else None)


def _detail_text(detail: Any) -> str:
    """FastAPI's `detail`: a string, or a list of `{loc, msg}` validation errors."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = ".".join(str(p) for p in item.get("loc") or ())
                parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def _quote(text: str | None, scrub: Callable[[str], str]) -> str | None:
    if not text:
        return None
    text = scrub(" ".join(text.split()))
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…"


def status_error(
    service: str,
    response: httpx.Response,
    method: str,
    path: str,
    *,
    token_env: str,
    now: float,
    scrub: Callable[[str], str],
) -> ApiStatusError:
    """The `ApiStatusError` subclass for an error response, with a message for a person."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code, message = _server_code_and_message(body)
    if message is None and body is None:
        message = response.text
    message = _quote(message, scrub)
    code = _quote(code, scrub)
    cls = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else ApiStatusError)
    text, hint = _status_text(service, status, response.reason_phrase, method, path, code, message, token_env)
    return cls(
        text,
        service=service,
        status=status,
        code=code,
        method=method,
        path=path,
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
        hint=hint,
    )


def _status_text(
    service: str, status: int, reason: str, method: str, path: str,
    code: str | None, message: str | None, token_env: str,
) -> tuple[str, str | None]:
    svc = display_name(service)
    said = "".join([f" ({code})" if code else "", f": {message}" if message else ""])
    if status == 401:
        how = (
            "create a new API token in Atlan (Admin → API tokens), give it a persona"
            if service == "atlan"
            else "create a new token in Qualytics (Settings → Tokens)"
        )
        return (
            f"{svc} rejected the token in {token_env} (401); {how} and export it as {token_env}",
            None,
        )
    text = f"{svc} answered {method} {path} with {status} {reason}{said}"
    if status == 403:
        if service == "atlan":
            return text, ATLAN_403_HINT.format(what="the connection this asset belongs to")
        return text, _QUALYTICS_403_HINT.format(env=token_env)
    if status == 429:
        return text, (
            f"{svc} is rate limiting qatlan; lower {service}.requests_per_minute in qatlan.toml "
            f"or retry later"
        )
    if status >= 500:
        return text, f"{svc} failed on its side; retry later"
    return text, None


def response_error(
    service: str, method: str, path: str, what: str, *, scrub: Callable[[str], str] = str
) -> ApiResponseError:
    """An `ApiResponseError` naming the endpoint and what was wrong with the body."""
    return ApiResponseError(
        f"{display_name(service)} answered {method} {path} with {scrub(what)}",
        service=service,
        hint="the server may not be the API qatlan expects; check the url in qatlan.toml",
    )
