"""The qatlan.toml models (pydantic): every key, its default, its check and its description.

They forbid unknown keys; `load.py` turns their errors into one line per problem, and
`template.py` writes `qatlan init`'s commented file from them, so the template, the
defaults and the checks cannot drift apart. `Config` holds no token: `atlan_token()` and
`qualytics_token()` read the environment variable named by `token_env` when called.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic import field_validator, model_validator

from qatlan.errors import ConfigError

__all__ = [
    "AtlanConfig",
    "Config",
    "MappingConfig",
    "QualyticsConfig",
    "StateConfig",
    "SyncConfig",
    "WATCH_KINDS",
    "WatchConfig",
    "clip",
    "duration_seconds",
    "http_url",
    "is_env_name",
    "qualytics_api_url",
]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_env_name(value: str) -> bool:
    return bool(_ENV_NAME.match(value))


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", re.I)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: Any) -> Any:
    """`"6h"`, `"90m"`, `"1d"`, `"30s"` or a number of seconds → seconds (an int); anything
    else is returned as it is for the type check to report."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is None:
            raise ValueError(f"'{clip(value)}' is not a duration; write it like \"6h\", \"90m\" or \"1d\"")
        return int(float(found.group(1)) * _UNIT_SECONDS[found.group(2).lower()])
    return value



#: a host name, an IPv4 address or a bracketed IPv6 address, and an optional :port
_HOST = re.compile(r"(?:\w(?:[\w.-]*\w)?|\[[0-9A-Fa-f:.]+\])(?::\d*)?")


def http_url(value: str) -> str:
    """`value` as an http(s) URL without a trailing slash; adds https:// when no scheme."""
    url = value.strip()
    if "://" not in url and url:
        url = "https://" + url
    parts = urlsplit(url)
    if "@" in parts.netloc:  # not echoed: it may hold a password
        raise ValueError("must not contain a user name or password (tokens come from env vars)")
    if parts.query or parts.fragment:  # not echoed: it may hold a token
        raise ValueError("must be a base URL, without ?query or #fragment")
    if parts.scheme not in ("http", "https") or not parts.netloc or not _HOST.fullmatch(parts.netloc):
        raise ValueError(f"'{clip(value)}' is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
    except ValueError:
        raise ValueError(f"'{clip(value)}' is not an http(s) URL (bad port)") from None
    return url.rstrip("/")


def qualytics_api_url(value: str) -> str:
    # Like qualytics-cli (adds https://, strips a trailing slash, ensures /api), except that a
    # path before /api is kept (a deployment behind a path prefix). There is no equivalent of
    # the CLI's QUALYTICS_API_PATH="" for an API served at the root.
    url = http_url(value)
    return url if url.endswith("/api") else url + "/api"


def _env_name(value: str) -> str:
    if not is_env_name(value):
        # never echo: people paste the token itself here
        raise ValueError(
            "must be the NAME of an environment variable (like ATLAN_API_TOKEN), not a token"
        )
    return value


def _timeout() -> Any:
    return Field(30.0, gt=0, le=3600, description="seconds to wait for one HTTP response")


def _verify_tls() -> Any:
    return Field(True, description="check the server's TLS certificate (turn off only for testing)")


def _max_retries() -> Any:
    return Field(
        5, ge=0, le=20, description="retries of 429, 5xx and connection errors, with backoff"
    )


class AtlanConfig(BaseModel):
    """`[atlan]`: where Atlan is and how hard qatlan may use it."""

    model_config = _STRICT
    url: str = Field(description="your Atlan tenant", examples=["https://acme.atlan.com"])
    token_env: str = Field(
        "ATLAN_API_TOKEN", description="environment variable that holds the Atlan API token"
    )
    page_size: int = Field(300, ge=1, le=10000, description="assets per search page")
    # Atlan's server accepts up to 10,000 entities a call (atlas.bulk.api.max.entities.allowed,
    # reference §8.2), but recommends 20-50: big calls run long and time out on busy tenants.
    # 50 is the top of that range; apply halves batches after a slow call anyway.
    batch_size: int = Field(
        50, ge=1, le=100, description="entities per bulk write request (Atlan recommends 20-50)"
    )
    requests_per_minute: int = Field(
        400, ge=0, le=100000, description="client-side request budget; 0 = no client limit"
    )
    concurrency: int = Field(4, ge=1, le=64, description="requests in flight at once")
    timeout: float = _timeout()
    verify_tls: bool = _verify_tls()
    max_retries: int = _max_retries()
    custom_metadata_set: str = Field(
        "Qualytics", min_length=1, description="name of the custom metadata set qatlan writes"
    )
    link_name: str = Field(
        "Qualytics", min_length=1, description="name of the Link resource added to each asset"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("token_env")
    @classmethod
    def _check_env(cls, value: str) -> str:
        return _env_name(value)


class QualyticsConfig(BaseModel):
    """`[qualytics]`: where Qualytics is and how hard qatlan may use it."""

    model_config = _STRICT
    url: str = Field(
        description="Qualytics API base; /api is added when missing",
        examples=["https://acme.qualytics.io/api"],
    )
    ui_url: str | None = Field(
        None,
        description="Qualytics UI used in links; default: url without /api",
        examples=["https://acme.qualytics.io"],
    )
    token_env: str = Field(
        "QUALYTICS_API_TOKEN", description="environment variable that holds the Qualytics token"
    )
    page_size: int = Field(100, ge=1, le=100, description="items per list page (API maximum 100)")
    batch_size: int = Field(50, ge=1, le=1000, description="items per bulk request")
    requests_per_minute: int = Field(
        0, ge=0, le=100000, description="client-side request budget; 0 = no client limit"
    )
    concurrency: int = Field(8, ge=1, le=64, description="requests in flight at once")
    timeout: float = _timeout()
    verify_tls: bool = _verify_tls()
    max_retries: int = _max_retries()
    integration_id: int | None = Field(
        None,
        ge=1,
        description="the Qualytics Atlan integration that qatlan's external tags belong to",
        examples=[3],
    )
    max_field_age: int = Field(
        "6h",  # type: ignore[assignment]  # validated: becomes 21600 seconds
        validate_default=True,
        ge=60,
        le=30 * 86400,
        description='re-read every container\'s fields at least this often ("6h", "90m", "1d"); '
                    "what no cheap signal shows (a check moved to another field) waits at most this long",
    )

    @field_validator("max_field_age", mode="before")
    @classmethod
    def _check_age(cls, value: Any) -> Any:
        return duration_seconds(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return qualytics_api_url(value)

    @field_validator("ui_url")
    @classmethod
    def _check_ui_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("token_env")
    @classmethod
    def _check_env(cls, value: str) -> str:
        return _env_name(value)

    @model_validator(mode="before")
    @classmethod
    def _default_ui_url(cls, data: Any) -> Any:
        url = data.get("url") if isinstance(data, dict) else None
        if isinstance(url, str) and data.get("ui_url") is None:
            try:
                return {**data, "ui_url": qualytics_api_url(url)[: -len("/api")]}
            except ValueError:
                return data  # the url check reports it
        return data


class SyncConfig(BaseModel):
    """`[sync]`: what a run does."""

    model_config = _STRICT
    pull: bool = Field(True, description="copy Atlan tags to Qualytics as external tags")
    push: bool = Field(True, description="write quality facts, tags and a Link to Atlan")
    announcements: bool = Field(True, description="warn on Atlan tables with active anomalies")
    push_tags: bool = Field(True, description="push Qualytics' own tags as Atlan tags")
    overwrite_tags: bool = Field(
        False, description="on a same-name tag conflict, Atlan wins (false: skip and report)"
    )
    domains: tuple[str, ...] = Field(
        (),
        strict=False,
        description="Atlan domains (names or GUIDs) that limit the scope; empty = everything",
        examples=[["Sales", "Finance"]],
    )
    max_removal_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="refuse plans removing more than this share of what qatlan owns",
    )
    cm_edits: Literal["restore", "keep"] = Field(
        "restore",
        description="a value in qatlan's custom metadata set edited in Atlan: restore it "
                    "(the set holds Qualytics' values) or keep it and report a conflict",
    )
    create_definitions: bool = Field(
        True,
        description="plan the Atlan tag and custom metadata definitions the values need "
                    "(the token needs admin rights); false: those values wait, and plan says so",
    )

    @field_validator("domains")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not d.strip() for d in value):
            raise ValueError("domain names must not be empty")
        return value


class StateConfig(BaseModel):
    """`[state]`: where the SQLite state lives."""

    model_config = _STRICT
    path: Path = Field(
        Path("state/qatlan.db"),
        strict=False,
        description="the SQLite state; relative paths are relative to this file's folder",
    )


class MappingConfig(BaseModel):
    """`[[mappings]]`: one Qualytics datastore and the Atlan connection/database/schema it is."""

    model_config = _STRICT
    datastore: str | None = Field(None, min_length=1, description="the Qualytics datastore name")
    datastore_id: int | None = Field(None, ge=1, description="or its id (survives renames)")
    connection: str = Field(
        min_length=1,
        description="the Atlan connection's qualifiedName (default/snowflake/1657037873) or name",
    )
    database: str | None = Field(None, description="Atlan database; default: the datastore's")
    schema_name: str | None = Field(
        None, alias="schema", description="Atlan schema; default: the datastore's"
    )
    tables: dict[str, str] = Field(
        default_factory=dict, description="renames: Qualytics container name = Atlan table name"
    )
    columns: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='renames: "container.field" = "ATLAN_COLUMN"',
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _nest_columns(cls, value: Any) -> Any:
        """Accept `"orders.cust_id" = "X"` and `[mappings.columns.orders] cust_id = "X"`."""
        if not isinstance(value, dict):
            return value
        nested: dict[str, Any] = {}
        for key, col in value.items():
            if isinstance(col, dict):
                nested.setdefault(key, {}).update(col)
            elif "." in key:
                container, field = key.split(".", 1)
                nested.setdefault(container, {})[field] = col
            else:
                raise ValueError(
                    f'"{key}" must be "container.field" = "ATLAN_COLUMN" '
                    f"(or a [mappings.columns.CONTAINER] table)"
                )
        return nested

    @model_validator(mode="after")
    def _one_datastore(self) -> "MappingConfig":
        if (self.datastore is None) == (self.datastore_id is None):
            raise ValueError("give exactly one of datastore (name) or datastore_id")
        return self

    @property
    def datastore_ref(self) -> str:
        """How the mapping names its datastore, for messages: `"name"` or `id 12`."""
        return f'"{self.datastore}"' if self.datastore is not None else f"id {self.datastore_id}"

    def table(self, container: str) -> str:
        """The Atlan table a Qualytics container maps to (its rename, else its own name)."""
        return self.tables.get(container, container)

    def column(self, container: str, field: str) -> str:
        """The Atlan column a Qualytics field maps to (its rename, else its own name)."""
        return self._flat_columns.get(f"{container}.{field}", field)

    @functools.cached_property
    def _flat_columns(self) -> dict[str, str]:
        # "container.field" keys, so a container name holding a dot matches either spelling
        return {f"{container}.{field}": column
                for container, fields in self.columns.items() for field, column in fields.items()}


#: what `qatlan watch` may apply without a person (`[watch] auto_apply`)
WATCH_KINDS = ("custom_metadata", "links", "announcements", "external_tags", "atlan_tags",
               "definitions")


class WatchConfig(BaseModel):
    """`[watch]`: the long-running reconciler (`qatlan watch`, docs/watch.md)."""

    model_config = _STRICT
    listen: str = Field("127.0.0.1:8787", description="host:port of the webhook, /healthz and /metrics "
                        "listener; a non-loopback host needs both webhook secrets")
    poll_interval: int = Field(
        "60s",  # type: ignore[assignment]  # validated: seconds
        validate_default=True, ge=5, le=86400,
        description="how often both sides are polled for changed tables (events may be lost)")
    debounce: float = Field(2.0, ge=0, le=600,
                            description="seconds a table waits after its last event before it is reconciled")
    resync_every: int = Field(
        "6h",  # type: ignore[assignment]
        validate_default=True, ge=60, le=30 * 86400,
        description="how often a full refresh, plan and apply catch whatever events and polls missed")
    auto_apply: tuple[str, ...] = Field(
        ("custom_metadata", "links", "announcements", "external_tags"),
        description="kinds of change applied without a person: " + ", ".join(WATCH_KINDS)
                    + "; others are saved as a plan file to review")
    batch_size: int = Field(50, ge=1, le=1000, description="tables reconciled together at most")
    max_body: int = Field(1_048_576, ge=1024, le=64 * 1_048_576, description="largest webhook body accepted, bytes")

    @field_validator("poll_interval", "resync_every", mode="before")
    @classmethod
    def _check_duration(cls, value: Any) -> Any:
        return duration_seconds(value)

    @field_validator("auto_apply")
    @classmethod
    def _check_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in WATCH_KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; kinds are " + ", ".join(WATCH_KINDS))
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError('must be "host:port", like "127.0.0.1:8787"')
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class Config(BaseModel):
    """The whole qatlan.toml. Holds no token: `atlan_token()` reads the environment."""

    model_config = _STRICT
    atlan: AtlanConfig = Field(description="add [atlan] with url = your Atlan tenant")
    qualytics: QualyticsConfig = Field(description="add [qualytics] with url = your Qualytics")
    sync: SyncConfig = Field(default_factory=SyncConfig, description="what a run does")
    state: StateConfig = Field(default_factory=StateConfig, description="the SQLite state")
    mappings: tuple[MappingConfig, ...] = Field((), strict=False, description="datastore mappings")
    watch: WatchConfig = Field(default_factory=WatchConfig, description="`qatlan watch`")
    _path: Path | None = PrivateAttr(None)
    _env: Mapping[str, str] = PrivateAttr(default_factory=dict)
    _sources: dict[str, tuple[str, str | None]] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> Path | None:
        """The file this configuration was loaded from."""
        return self._path

    def atlan_token(self) -> str:
        """The Atlan token: `$ATLAN_API_TOKEN` (or `[atlan] token_env`), else pyatlan's
        `$ATLAN_API_KEY`; ConfigError when neither is set."""
        return self._token("atlan", "Atlan API token")[1]

    def qualytics_token(self) -> str:
        """The Qualytics token: `$QUALYTICS_API_TOKEN` (or `[qualytics] token_env`), else
        qualytics-cli's `$QUALYTICS_TOKEN`; ConfigError when neither is set."""
        return self._token("qualytics", "Qualytics API token")[1]

    def token_variable(self, service: str) -> str:
        """The variable the token of `service` ("atlan"/"qualytics") is read from: the first
        one set, else `token_env` (for messages; never the token)."""
        try:
            return self._token(service, "")[0]
        except ConfigError:
            return getattr(self, service).token_env

    def url_sources(self) -> dict[str, tuple[str, str | None]]:
        """{"atlan.url": (variable, the file's value or None)} for each URL that an
        environment variable set (see qatlan.config.env)."""
        return dict(self._sources)

    def _token(self, section: str, what: str) -> tuple[str, str]:
        from qatlan.config.env import SDK_TOKEN_ENV, first_set

        var = getattr(self, section).token_env
        names = (var, SDK_TOKEN_ENV[section])
        found = first_set(self._env, names)
        if found is None:
            raise ConfigError(
                f"the environment variable {var} is not set (nor {names[1]}); qatlan reads "
                f"the {what} from it",
                hint=f"export {var}=<your token>  (or name another variable in [{section}] "
                "token_env); tokens are never read from qatlan.toml",
            )
        return found

    def __repr__(self) -> str:
        # fields only: the environment (which holds the tokens) is never shown
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in type(self).model_fields)
        return f"Config(path={str(self._path)!r}, {fields})"

    __str__ = __repr__
