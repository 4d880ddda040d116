"""Settings read from the environment: qatlan's own variables first, then the SDKs' names.

Precedence, for each setting: a command-line flag > qatlan's variable > the SDK's variable
(pyatlan, qualytics-cli) > qatlan.toml > the default.

    setting          qatlan variable          SDK fall-back          qatlan.toml
    Atlan URL        QATLAN_ATLAN_URL         ATLAN_BASE_URL         atlan.url
    Atlan token      ATLAN_API_TOKEN (1)      ATLAN_API_KEY          never
    Qualytics URL    QATLAN_QUALYTICS_URL     QUALYTICS_URL          qualytics.url
    Qualytics token  QUALYTICS_API_TOKEN (1)  QUALYTICS_TOKEN        never
    state path       QATLAN_STATE (2)         -                      state.path

(1) or the variable named by `token_env`. (2) read by the CLI's --state option.
An empty variable counts as unset.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SDK_TOKEN_ENV", "STATE_ENV", "URL_ENV", "env_value", "first_set"]

#: the variables that hold each service's URL, in precedence order
URL_ENV: dict[str, tuple[str, ...]] = {
    "atlan": ("QATLAN_ATLAN_URL", "ATLAN_BASE_URL"),
    "qualytics": ("QATLAN_QUALYTICS_URL", "QUALYTICS_URL"),
}
#: the SDKs' token variables, read when qatlan's own (`token_env`) is unset
SDK_TOKEN_ENV: dict[str, str] = {"atlan": "ATLAN_API_KEY", "qualytics": "QUALYTICS_TOKEN"}
#: the state database's path (after --state, before `[state] path`)
STATE_ENV = "QATLAN_STATE"


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """`env[name]` stripped, or None when it is unset or blank."""
    value = (env.get(name) or "").strip()
    return value or None


def first_set(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    """(name, value) of the first of `names` that is set and not blank, else None."""
    for name in names:
        value = env_value(env, name)
        if value is not None:
            return name, value
    return None
