"""Loading qatlan.toml: TOML, the secret scan, validation, one message per problem.

`load_config(path)` reads the file with tomllib and validates it with the models (which
forbid unknown keys). Every problem becomes one line of a `ConfigError` that names the key
path as the user wrote it (`mappings[1].connection`, `sync.overwrite_tags`). Keys that look
like secrets and values that look like tokens are refused (and never echoed): tokens come
from the environment only.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from qatlan.config.env import URL_ENV, first_set
from qatlan.config.messages import describe, path_str
from qatlan.config.models import (
    AtlanConfig,
    Config,
    MappingConfig,
    QualyticsConfig,
    StateConfig,
    http_url,
    is_env_name,
    qualytics_api_url,
)
from qatlan.errors import ConfigError

__all__ = ["load_config", "parse_config"]

_JWT = re.compile(r"^eyJ[\w-]+\.[\w-]+\.[\w-]+$")
_SECRET_KEY = re.compile(r"token|secret|passw|pwd|api_?key|credential|bearer|private_?key", re.I)


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] = os.environ,
                optional: bool = False) -> Config:
    """Read and validate `path`; raises ConfigError listing every problem, one per line.

    With `optional`, a missing file is not an error when both URLs are set in the environment
    (`env.URL_ENV`): every other option takes its default, and a relative state path is
    relative to the current folder."""
    path = Path(path)
    if optional and not path.exists() and all(first_set(env, URL_ENV[s]) for s in URL_ENV):
        return parse_config({}, source="the environment", base_dir=Path.cwd(), env=env)
    config = parse_config(_read_toml(path, env if optional else None), source=path.name, base_dir=path.parent, env=env)
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
    raw, sources, env_problems = _urls_from_env(raw, env)
    problems += env_problems
    try:
        config = Config.model_validate(_without_secrets(raw))
    except ValidationError as exc:
        problems += [describe(err) for err in exc.errors()]
    else:
        problems += _duplicate_mappings(config.mappings)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    state_path = (Path(base_dir) / config.state.path.expanduser()).resolve()
    config = config.model_copy(update={"state": StateConfig(path=state_path)})
    config._env = env
    config._sources = sources
    return config


_URL_CHECKS = {"atlan": http_url, "qualytics": qualytics_api_url}


def _urls_from_env(raw: dict[str, Any], env: Mapping[str, str]
                   ) -> tuple[dict[str, Any], dict[str, tuple[str, Any]], list[str]]:
    """`raw` with each service's URL taken from the environment where a variable sets it
    (`env.URL_ENV`, qatlan's name before the SDK's), {"atlan.url": (variable, the file's
    value, normalised, or None)} for those, and a problem per variable that holds no http(s) URL."""
    sources: dict[str, tuple[str, Any]] = {}
    problems: list[str] = []
    for service, check in _URL_CHECKS.items():
        found = first_set(env, URL_ENV[service])
        if found is None:
            continue
        name, value = found
        try:
            check(value)
        except ValueError as exc:
            problems.append(f"environment variable {name}: {exc}; fix or unset it "
                            f"(it overrides {service}.url)")
            continue
        section = raw.get(service)
        section = dict(section) if isinstance(section, dict) else {}
        in_file = section.get("url")
        try:
            in_file = check(in_file) if isinstance(in_file, str) else in_file
        except ValueError:
            pass  # overridden: never used, so never reported
        sources[f"{service}.url"] = (name, in_file)
        raw[service] = {**section, "url": value}
    return raw, sources, problems


def _read_toml(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The TOML document at `path`. `env`: the file is optional when the environment sets
    both URLs (the hint names the unset ones)."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        hint = "run `qatlan init` to write a commented qatlan.toml, or pass --config PATH"
        if env is not None and what == "not found":
            unset = [URL_ENV[s][-1] for s in URL_ENV if not first_set(env, URL_ENV[s])]
            hint += f", or set {' and '.join(unset)} to run without one"
        raise ConfigError(f"{path}: configuration {what}", hint=hint)
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
        where = path_str((*parent, key))
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
        var = named if isinstance(named, str) and is_env_name(named) else defaults[parent[0]]
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
