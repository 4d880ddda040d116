"""The commented qatlan.toml that `qatlan init` writes, built from the models."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel

from qatlan.config.env import URL_ENV, first_set
from qatlan.config.models import AtlanConfig, QualyticsConfig, StateConfig, SyncConfig, http_url, qualytics_api_url
from qatlan.errors import ConfigError

__all__ = ["init_config", "render_template"]


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
    atlan = http_url(atlan_url or "https://YOUR-TENANT.atlan.com")
    qualytics = qualytics_api_url(qualytics_url or "https://YOUR-TENANT.qualytics.io")
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
    env: Mapping[str, str] = os.environ,
) -> Path:
    """Write the commented template to `path`; refuses to overwrite unless `force`.

    A URL not given is taken from the environment (`QATLAN_ATLAN_URL`, then `ATLAN_BASE_URL`;
    `QATLAN_QUALYTICS_URL`, then `QUALYTICS_URL`), else a placeholder is written. A URL that
    is not http(s) is a ConfigError naming where it came from (`--atlan-url` or the variable)."""
    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    checked = {}
    for service, given, check in (("atlan", atlan_url, http_url),
                                  ("qualytics", qualytics_url, qualytics_api_url)):
        # the option, else the environment (qatlan's variable, then the SDK's), else a placeholder
        source, value = (f"--{service}-url", given) if given is not None else \
            first_set(env, URL_ENV[service]) or (None, None)
        try:
            checked[service] = None if value is None else check(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}", hint=f"nothing written to {path}; give a URL "
                              f"like https://acme.{service}.{'com' if service == 'atlan' else 'io'}") from None
    text = render_template(checked["atlan"], checked["qualytics"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
