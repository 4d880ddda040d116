"""One error tree for qatlan. Only the CLI turns these into messages and exit codes.

    QatlanError
    ├── ConfigError                 bad or missing qatlan.toml values, tokens in the file
    ├── ApiError                    anything that went wrong talking to Atlan or Qualytics
    │   ├── ApiConnectionError      host down, DNS, TLS, timeouts, dropped connections
    │   ├── ApiResponseError        malformed JSON or an unexpected shape
    │   └── ApiStatusError          an HTTP error status (has .status, .service, .code)
    │       ├── AuthenticationError 401
    │       ├── PermissionDenied    403
    │       ├── NotFound            404
    │       ├── Conflict            409
    │       ├── RateLimited         429
    │       └── ServerError         5xx
    ├── StateError                  the SQLite state is unusable
    │   ├── StaleStateError         a saved plan's lineage/serial no longer matches
    │   └── LockError               another run holds the state lock
    ├── PlanFileError               a saved plan that is unreadable, edited or of an unknown version
    ├── PlanRefused                 a plan that safety rules refuse (mass removal, ...)
    └── ApplyError                  apply finished with failed changes

(The sandbox, which is not part of the product, has its own: `qatlan.sandbox.errors`.)

Every message is meant for a person: it names what was wrong and how to fix it.
Messages never contain token values.
"""

from __future__ import annotations

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiResponseError",
    "ApiStatusError",
    "ApplyError",
    "AuthenticationError",
    "ConfigError",
    "Conflict",
    "LockError",
    "NotFound",
    "PermissionDenied",
    "PlanFileError",
    "PlanRefused",
    "QatlanError",
    "RateLimited",
    "ServerError",
    "StaleStateError",
    "StateError",
]


class QatlanError(Exception):
    """Base class of every error qatlan reports to a user."""

    #: one line on how to fix it, printed after the message when set
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(QatlanError):
    """qatlan.toml (or the environment) is missing something or holds a bad value."""


class ApiError(QatlanError):
    """Talking to Atlan or Qualytics failed."""

    def __init__(self, message: str, *, service: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.service = service


class ApiConnectionError(ApiError):
    """The server could not be reached, or the connection broke (DNS, refused, TLS, timeout)."""


class ApiResponseError(ApiError):
    """The server answered with something that is not what the API promises."""


class ApiStatusError(ApiError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        status: int = 0,
        code: str | None = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, service=service, hint=hint)
        self.status = status
        self.code = code
        self.method = method
        self.path = path
        self.retry_after = retry_after


class AuthenticationError(ApiStatusError):
    """401: the token is missing, wrong or expired."""


class PermissionDenied(ApiStatusError):
    """403: the token may not read or change this (Atlan: persona policies)."""


class NotFound(ApiStatusError):
    """404: the thing asked for does not exist."""


class Conflict(ApiStatusError):
    """409: the request conflicts with the current state."""


class RateLimited(ApiStatusError):
    """429: too many requests; retry after the given delay."""


class ServerError(ApiStatusError):
    """5xx: the server failed."""


class StateError(QatlanError):
    """The state database cannot be used."""


class StaleStateError(StateError):
    """A saved plan was made against a different state, or the state changed since."""


class LockError(StateError):
    """Another qatlan run holds the state lock."""


class PlanFileError(QatlanError):
    """A saved plan file is unreadable, was edited, or has an unknown format version."""


class PlanRefused(QatlanError):
    """The plan breaks a safety rule (for example it removes too much of what qatlan owns)."""


class ApplyError(QatlanError):
    """Apply finished, but some changes failed."""
