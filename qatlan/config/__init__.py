"""qatlan.toml: the models, loading with one message per problem, and `qatlan init`'s template.

    load_config(path)      read and validate a file (ConfigError lists every problem)
    parse_config(data)     validate an already-parsed document
    init_config(path)      write the commented template; render_template() is its text
    Config, ...            the models (models.py): every key, default and description
    URL_ENV                the variables each service's URL is read from (env.py)
"""

from qatlan.config.env import URL_ENV
from qatlan.config.load import load_config, parse_config
from qatlan.config.models import (
    AtlanConfig,
    Config,
    MappingConfig,
    QualyticsConfig,
    StateConfig,
    SyncConfig,
    WATCH_KINDS,
    WatchConfig,
)
from qatlan.config.template import init_config, render_template

__all__ = [
    "AtlanConfig",
    "Config",
    "MappingConfig",
    "QualyticsConfig",
    "StateConfig",
    "SyncConfig",
    "URL_ENV",
    "WATCH_KINDS",
    "WatchConfig",
    "init_config",
    "load_config",
    "parse_config",
    "render_template",
]
