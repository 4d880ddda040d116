"""qatlan.toml: load, validate and write the configuration.

`load_config(path)` reads the file with tomllib and validates it with pydantic models that
forbid unknown keys. Every problem becomes one line of a `ConfigError` that names the key
path as the user wrote it (`mappings[1].connection`, `sync.overwrite_tags`). Tokens never
come from the file: `Config.atlan_token()` / `Config.qualytics_token()` read the environment
variable named by `token_env` when called. `init_config(path)` writes a commented template
built from the same models, so the template, the defaults and the checks cannot drift apart.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic import field_validator, model_validator

from qatlan.errors import ConfigError

__all__ = [
    "AtlanConfig",
    "Config",
    "MappingConfig",
    "QualyticsConfig",
    "StateConfig",
    "SyncConfig",
    "init_config",
    "load_config",
    "parse_config",
    "render_template",
]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JWT = re.compile(r"^eyJ[\w-]+\.[\w-]+\.[\w-]+$")
_SECRET_KEY = re.compile(r"token|secret|passw|pwd|api_?key|credential|bearer|private_?key", re.I)


def _http_url(value: str) -> str:
    """`value` as an http(s) URL without a trailing slash; adds https:// when no scheme."""
    url = value.strip()
    if "://" not in url and url:
        url = "https://" + url
    parts = urlsplit(url)
    if "@" in parts.netloc:  # not echoed: it may hold a password
        raise ValueError("must not contain a user name or password (tokens come from env vars)")
    if parts.query or parts.fragment:  # not echoed: it may hold a token
        raise ValueError("must be a base URL, without ?query or #fragment")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{_clip(value)}' is not an http(s) URL")
    return url.rstrip("/")


def _qualytics_api_url(value: str) -> str:
    # Like qualytics-cli (adds https://, strips a trailing slash, ensures /api), except that a
    # path before /api is kept (a deployment behind a path prefix). There is no equivalent of
    # the CLI's QUALYTICS_API_PATH="" for an API served at the root.
    url = _http_url(value)
    return url if url.endswith("/api") else url + "/api"


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
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
    batch_size: int = Field(
        20, ge=1, le=100, description="entities per bulk write request (Atlan recommends 20-50)"
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
        return _http_url(value)

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

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _qualytics_api_url(value)

    @field_validator("ui_url")
    @classmethod
    def _check_ui_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

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
                return {**data, "ui_url": _qualytics_api_url(url)[: -len("/api")]}
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


class Config(BaseModel):
    """The whole qatlan.toml. Holds no token: `atlan_token()` reads the environment."""

    model_config = _STRICT
    atlan: AtlanConfig = Field(description="add [atlan] with url = your Atlan tenant")
    qualytics: QualyticsConfig = Field(description="add [qualytics] with url = your Qualytics")
    sync: SyncConfig = Field(default_factory=SyncConfig, description="what a run does")
    state: StateConfig = Field(default_factory=StateConfig, description="the SQLite state")
    mappings: tuple[MappingConfig, ...] = Field((), strict=False, description="datastore mappings")
    _path: Path | None = PrivateAttr(None)
    _env: Mapping[str, str] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> Path | None:
        """The file this configuration was loaded from."""
        return self._path

    def atlan_token(self) -> str:
        return self._token(self.atlan.token_env, "atlan", "Atlan API token")

    def qualytics_token(self) -> str:
        return self._token(self.qualytics.token_env, "qualytics", "Qualytics API token")

    def _token(self, var: str, section: str, what: str) -> str:
        value = (self._env.get(var) or "").strip()
        if not value:
            raise ConfigError(
                f"the environment variable {var} is not set; qatlan reads the {what} from it",
                hint=f"export {var}=<your token>  (or name another variable in [{section}] "
                "token_env); tokens are never read from qatlan.toml",
            )
        return value

    def __repr__(self) -> str:
        # fields only: the environment (which holds the tokens) is never shown
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in type(self).model_fields)
        return f"Config(path={str(self._path)!r}, {fields})"

    __str__ = __repr__


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] = os.environ) -> Config:
    """Read and validate `path`; raises ConfigError listing every problem, one per line."""
    path = Path(path)
    config = parse_config(_read_toml(path), source=path.name, base_dir=path.parent, env=env)
    config._path = path
    return config


def parse_config(
    data: Mapping[str, Any],
    *,
    source: str = "qatlan.toml",
    base_dir: str | os.PathLike[str] = ".",
    env: Mapping[str, str] = os.environ,
) -> Config:
    """Validate an already-parsed TOML document (`source` names it in messages; a relative
    state path is resolved against `base_dir`)."""
    raw = dict(data)
    problems = _secret_problems(raw)
    try:
        config = Config.model_validate(_without_secrets(raw))
    except ValidationError as exc:
        problems += [_describe(err) for err in exc.errors()]
    else:
        problems += _duplicate_mappings(config.mappings)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    state_path = (Path(base_dir) / config.state.path.expanduser()).resolve()
    config = config.model_copy(update={"state": StateConfig(path=state_path)})
    config._env = env
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise ConfigError(
            f"{path}: configuration {what}",
            hint="run `qatlan init` to write a commented qatlan.toml, or pass --config PATH",
        )
    try:
        with path.open("rb") as fp:
            return tomllib.load(fp)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.__class__.__name__}") from None


def _is_data_keys(path: tuple) -> bool:
    """Keys under mappings[i].tables / .columns are table and column names, not options."""
    return len(path) >= 3 and path[0] == "mappings" and path[2] in ("tables", "columns")


def _walk(value: Any, path: tuple = ()):
    """Yield (path, key or index, value) for everything in the TOML document."""
    if isinstance(value, dict):
        items: Any = value.items()
    else:
        items = enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield path, key, item
        yield from _walk(item, (*path, key))


def _secret_problems(raw: dict[str, Any]) -> list[str]:
    problems = []
    for parent, key, value in _walk(raw):
        where = _path_str((*parent, key))
        if isinstance(key, str) and key != "token_env" and _SECRET_KEY.search(key) \
                and not _is_data_keys(parent):
            problems.append(
                f"{where}: looks like a secret, and secrets must not be in qatlan.toml "
                f"(config files end up in git); delete it and set {_env_for(raw, parent)} instead"
            )
        elif isinstance(value, str) and _JWT.match(value.strip()):
            problems.append(
                f"{where}: holds what looks like a token (not shown); tokens must not be in "
                f"qatlan.toml (config files end up in git); set {_env_for(raw, parent)} instead"
            )
    return problems


def _env_for(raw: dict[str, Any], parent: tuple) -> str:
    defaults = {name: cls.model_fields["token_env"].default
                for name, cls in (("atlan", AtlanConfig), ("qualytics", QualyticsConfig))}
    if parent and parent[0] in defaults:
        section = raw.get(parent[0])
        named = section.get("token_env") if isinstance(section, dict) else None
        var = named if isinstance(named, str) and _ENV_NAME.match(named) else defaults[parent[0]]
        return f"the environment variable {var}"
    return "the environment variables {} and {}".format(*defaults.values())


def _without_secrets(raw: Any, path: tuple = ()) -> Any:
    if isinstance(raw, dict):
        return {
            k: _without_secrets(v, (*path, k))
            for k, v in raw.items()
            if _is_data_keys(path)
            or not ((k != "token_env" and _SECRET_KEY.search(str(k)))
                    or (isinstance(v, str) and _JWT.match(v.strip())))
        }
    if isinstance(raw, list):
        return [_without_secrets(v, (*path, i)) for i, v in enumerate(raw)
                if not (isinstance(v, str) and _JWT.match(v.strip()))]
    return raw


def _duplicate_mappings(mappings: tuple[MappingConfig, ...]) -> list[str]:
    seen: dict[tuple[str, Any], int] = {}
    problems = []
    for i, m in enumerate(mappings):
        if m.datastore is not None:
            ident: tuple[str, Any] = ("datastore", m.datastore)
        else:
            ident = ("datastore_id", m.datastore_id)
        if ident in seen:
            problems.append(
                f"mappings[{i}].{ident[0]}: datastore {m.datastore_ref} is already mapped "
                f"by mappings[{seen[ident]}]; map each datastore once"
            )
        seen.setdefault(ident, i)
    return problems


# --------------------------------------------------------------------------- error messages


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    typ, value = err["type"], err.get("input")
    where = _path_str(loc) or "(top level)"
    field, parent = _field_at(loc)
    if typ == "missing":
        desc = field.description if field is not None else ""
        if field is not None and _model_of(field.annotation) is not None:
            return f"{where}: section [{where}] is missing — {desc}"
        return f"{where}: field required" + (f" — {desc}" if desc else "")
    if typ == "extra_forbidden":
        return f"{where}: unknown key; " + _valid_keys(parent, str(loc[-1]))
    if typ.endswith(("_type", "_parsing")) or typ == "int_from_float":
        return f"{where}: expected {_EXPECTED.get(typ.split('_')[0], typ)}, got {_show(value)}"
    if typ in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{where}: {_show(value)} is out of range; allowed {_bounds(field)}"
    if typ == "string_too_short":
        return f"{where}: must not be empty"
    if typ == "value_error":
        return f"{where}: {err['ctx']['error']}"
    return f"{where}: {err['msg']}"


_EXPECTED = {
    "path": "a path",
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "string": "a string",
    "list": "a list",
    "tuple": "a list",
    "dict": "a table",
    "model": "a table",
}


def _path_str(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", str(part)) else json.dumps(str(part))
            out += f".{name}" if out else name
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation like `X`, `X | None` or `tuple[X, ...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _field_at(loc: tuple) -> tuple[Any, type[BaseModel] | None]:
    """The pydantic FieldInfo at `loc` and the model class holding that key (or None)."""
    model: type[BaseModel] | None = Config
    field, parent = None, Config
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:  # inside a plain table such as mappings[0].tables
            return None, None
        field = {f.alias or n: f for n, f in model.model_fields.items()}.get(str(part))
        parent = model
        if field is None:
            return None, model
        model = _model_of(field.annotation)
    return field, parent


def _valid_keys(model: type[BaseModel] | None, wrong: str) -> str:
    if model is None:
        return "this table takes no keys"
    keys = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(wrong, keys, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{hint}valid keys: {', '.join(keys)}"


def _bounds(field: Any) -> str:
    limits = {}
    for m in getattr(field, "metadata", ()):
        limits.update({k: getattr(m, k) for k in ("ge", "gt", "le", "lt") if hasattr(m, k)})
    if "gt" in limits:
        upper = f", up to {limits['le']}" if "le" in limits else ""
        return f"more than {limits['gt']}{upper}"
    return f"{limits.get('ge', '')}..{limits.get('le', '')}"


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(_clip(value), ensure_ascii=False)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# --------------------------------------------------------------------------- template


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _section(name: str, model: type[BaseModel], active: Mapping[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    for key, field in model.model_fields.items():
        key = field.alias or key
        lines.append(f"# {field.description}")
        if key in active:
            lines.append(f"{key} = {_toml(active[key])}")
        elif field.is_required() or field.default is None:
            lines.append(f"# {key} = {_toml(field.examples[0])}   # optional; an example")
        else:
            lines.append(f"# {key} = {_toml(field.get_default(call_default_factory=True))}")
    return [*lines, ""]


_HEADER = """\
# qatlan configuration. Every option is listed with its default; uncomment to change it.
# Reference: docs/configuration.md
#
# Tokens are NEVER read from this file (config files end up in git). Set them in the
# environment: ATLAN_API_TOKEN and QUALYTICS_API_TOKEN (or the names given in token_env).
"""

_MAPPINGS = """\
# One [[mappings]] table per Qualytics datastore you want to map explicitly. Without one,
# qatlan infers the mapping when exactly one Atlan connection fits.
# [[mappings]]
# datastore = "Sales warehouse"              # or: datastore_id = 12 (survives renames)
# connection = "default/snowflake/1657037873" # the Atlan connection's qualifiedName or name
# database = "SALES"                          # optional; default: the datastore's database
# schema = "PUBLIC"                           # optional; default: the datastore's schema
# [mappings.tables]                           # optional renames: container = Atlan table
# orders = "ORDERS_V2"
# [mappings.columns]                          # optional renames: "container.field" = column
# "orders.cust_id" = "CUSTOMER_ID"
"""


def render_template(atlan_url: str | None = None, qualytics_url: str | None = None) -> str:
    """The text `qatlan init` writes: every option, its default and a one-line explanation."""
    atlan = _http_url(atlan_url or "https://YOUR-TENANT.atlan.com")
    qualytics = _qualytics_api_url(qualytics_url or "https://YOUR-TENANT.qualytics.io")
    lines = [_HEADER]
    lines += _section("atlan", AtlanConfig, {"url": atlan})
    lines += _section("qualytics", QualyticsConfig, {"url": qualytics})
    lines += _section("sync", SyncConfig, {})
    lines += _section("state", StateConfig, {})
    return "\n".join(lines) + _MAPPINGS


def init_config(
    path: str | os.PathLike[str],
    *,
    atlan_url: str | None = None,
    qualytics_url: str | None = None,
    force: bool = False,
) -> Path:
    """Write the commented template to `path`; refuses to overwrite unless `force`."""
    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    try:
        text = render_template(atlan_url, qualytics_url)
    except ValueError as exc:
        raise ConfigError(f"cannot write {path.name}: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
