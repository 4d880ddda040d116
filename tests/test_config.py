"""qatlan.toml: loading, validation messages, tokens from the environment, the template."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pydantic
import pytest

from qatlan.config import (
    AtlanConfig,
    MappingConfig,
    QualyticsConfig,
    StateConfig,
    SyncConfig,
    init_config,
    load_config,
    parse_config,
    render_template,
)
from qatlan.errors import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
MINIMAL = """
[atlan]
url = "https://acme.atlan.com"
[qualytics]
url = "https://acme.qualytics.io"
"""
SECRET = "s3cr3t-VALUE-do-not-print"


def write(tmp_path: Path, text: str, name: str = "qatlan.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    return str(info.value).splitlines()


# --------------------------------------------------------------------------- happy path


def test_minimal_config_gets_every_default(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), env={})
    assert config.atlan.url == "https://acme.atlan.com"
    assert (config.atlan.page_size, config.atlan.batch_size) == (300, 50)
    assert (config.atlan.requests_per_minute, config.atlan.concurrency) == (400, 4)
    atlan = config.atlan
    assert (atlan.timeout, atlan.verify_tls, atlan.max_retries) == (30.0, True, 5)
    assert config.atlan.custom_metadata_set == config.atlan.link_name == "Qualytics"
    assert config.atlan.token_env == "ATLAN_API_TOKEN"
    assert config.qualytics.token_env == "QUALYTICS_API_TOKEN"
    assert (config.qualytics.page_size, config.qualytics.batch_size) == (100, 50)
    assert (config.qualytics.requests_per_minute, config.qualytics.concurrency) == (0, 8)
    assert config.qualytics.integration_id is None
    assert config.sync == SyncConfig()
    assert config.sync.max_removal_share == 0.2 and config.sync.domains == ()
    assert config.mappings == ()
    assert config.path == tmp_path / "qatlan.toml"


@pytest.mark.parametrize(
    "given, api, ui",
    [
        ("https://acme.qualytics.io", "https://acme.qualytics.io/api", "https://acme.qualytics.io"),
        ("https://acme.qualytics.io/api/", "https://acme.qualytics.io/api",
         "https://acme.qualytics.io"),
        ("acme.qualytics.io/", "https://acme.qualytics.io/api", "https://acme.qualytics.io"),
        ("http://127.0.0.1:8080/q", "http://127.0.0.1:8080/q/api", "http://127.0.0.1:8080/q"),
    ],
)
def test_qualytics_url_gets_api_suffix_and_ui_url_is_the_origin(tmp_path, given, api, ui):
    text = f'[atlan]\nurl = "https://a.atlan.com/"\n[qualytics]\nurl = "{given}"\n'
    config = load_config(write(tmp_path, text), env={})
    assert (config.qualytics.url, config.qualytics.ui_url) == (api, ui)
    assert config.atlan.url == "https://a.atlan.com"


def test_ui_url_can_be_overridden(tmp_path):
    text = MINIMAL + 'ui_url = "https://ui.example.com/"\n'
    config = load_config(write(tmp_path, text), env={})
    assert config.qualytics.ui_url == "https://ui.example.com"


def test_relative_state_path_is_resolved_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path / "conf", MINIMAL), env={})
    assert config.state.path == (tmp_path / "conf" / "state" / "qatlan.db").resolve()
    text = MINIMAL + f'[state]\npath = "{tmp_path / "abs.db"}"\n'
    assert load_config(write(tmp_path, text), env={}).state.path == tmp_path / "abs.db"


def test_full_config_with_mappings_and_both_rename_forms(tmp_path):
    text = MINIMAL + """
    integration_id = 7
    [sync]
    overwrite_tags = true
    domains = ["Sales", "0b1c-guid"]
    [[mappings]]
    datastore = "Sales warehouse"
    connection = "default/snowflake/1657037873"
    database = "SALES"
    schema = "PUBLIC"
    [mappings.tables]
    orders = "ORDERS_V2"
    [mappings.columns]
    "orders.cust_id" = "CUSTOMER_ID"
    [mappings.columns."my.table"]
    a = "A"
    [[mappings]]
    datastore_id = 12
    connection = "Snowflake prod"
    [mappings.columns]
    items.sku = "SKU"
    """
    config = load_config(write(tmp_path, text), env={})
    first, second = config.mappings
    assert (first.datastore, first.database, first.schema_name) == (
        "Sales warehouse", "SALES", "PUBLIC")
    assert first.tables == {"orders": "ORDERS_V2"}
    assert first.columns == {"orders": {"cust_id": "CUSTOMER_ID"}, "my.table": {"a": "A"}}
    assert (second.datastore_id, second.connection) == (12, "Snowflake prod")
    assert second.columns == {"items": {"sku": "SKU"}}
    assert config.qualytics.integration_id == 7
    assert config.sync.overwrite_tags is True and config.sync.domains == ("Sales", "0b1c-guid")


def test_config_objects_are_frozen(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), env={})
    with pytest.raises(pydantic.ValidationError):
        config.atlan.page_size = 5


# --------------------------------------------------------------------------- errors


def test_missing_file_suggests_qatlan_init(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "qatlan.toml", env={})
    assert "not found" in str(info.value) and "qatlan init" in info.value.hint


def test_invalid_toml_names_the_line(tmp_path):
    lines = problems(tmp_path, '[atlan]\nurl = "x\n')
    assert lines[0].startswith("qatlan.toml: invalid TOML") and "line 2" in lines[0]


def test_missing_mapping_connection_names_the_key_and_explains_it(tmp_path):
    text = MINIMAL + """
    [[mappings]]
    datastore = "a"
    connection = "c"
    [[mappings]]
    datastore = "b"
    """
    assert problems(tmp_path, text) == [
        "qatlan.toml: mappings[1].connection: field required — the Atlan connection's "
        "qualifiedName (default/snowflake/1657037873) or name"
    ]


def test_missing_section_says_which_section(tmp_path):
    lines = problems(tmp_path, '[atlan]\nurl = "https://a.atlan.com"\n')
    assert lines == [
        "qatlan.toml: qualytics: section [qualytics] is missing — add [qualytics] with url = "
        "your Qualytics"
    ]


def test_non_http_url_is_refused(tmp_path):
    lines = problems(tmp_path, MINIMAL.replace("https://acme.atlan.com", "ftp://x"))
    assert lines == ["qatlan.toml: atlan.url: 'ftp://x' is not an http(s) URL"]


def test_string_for_a_boolean_is_refused_with_the_value(tmp_path):
    lines = problems(tmp_path, MINIMAL + '[sync]\noverwrite_tags = "yes"\n')
    assert lines == ['qatlan.toml: sync.overwrite_tags: expected true or false, got "yes"']


@pytest.mark.parametrize(
    "section, line, message",
    [
        ("atlan", "page_size = 0", "atlan.page_size: 0 is out of range; allowed 1..10000"),
        ("atlan", "batch_size = 101", "atlan.batch_size: 101 is out of range; allowed 1..100"),
        ("qualytics", "page_size = 500",
         "qualytics.page_size: 500 is out of range; allowed 1..100"),
        ("atlan", "timeout = 0",
         "atlan.timeout: 0 is out of range; allowed more than 0, up to 3600"),
        ("sync", "max_removal_share = 1.5",
         "sync.max_removal_share: 1.5 is out of range; allowed 0..1"),
        ("atlan", 'concurrency = "4"', 'atlan.concurrency: expected a whole number, got "4"'),
        ("atlan", "page_size = 2.5", "atlan.page_size: expected a whole number, got 2.5"),
        ("sync", 'domains = "Sales"', 'sync.domains: expected a list, got "Sales"'),
        ("sync", 'domains = [""]', "sync.domains: domain names must not be empty"),
    ],
)
def test_bad_values_name_the_key_and_the_rule(tmp_path, section, line, message):
    text = MINIMAL + ("" if section in ("atlan", "qualytics") else f"[{section}]\n")
    if section == "atlan":
        text = text.replace("[qualytics]", f"{line}\n[qualytics]")
    else:
        text += line + "\n"
    assert problems(tmp_path, text) == [f"qatlan.toml: {message}"]


def test_unknown_key_lists_the_valid_keys_and_suggests_the_closest(tmp_path):
    lines = problems(tmp_path, MINIMAL + "[sync]\noverwrite_tag = true\n")
    assert lines == [
        "qatlan.toml: sync.overwrite_tag: unknown key; did you mean overwrite_tags? valid keys: "
        "pull, push, announcements, push_tags, overwrite_tags, domains, max_removal_share, "
        "cm_edits, create_definitions"
    ]


def test_unknown_section_lists_the_sections(tmp_path):
    (line,) = problems(tmp_path, MINIMAL + "[atlas]\nurl = 1\n")
    assert line.startswith("qatlan.toml: atlas: unknown key; did you mean atlan?")
    assert line.endswith("valid keys: atlan, qualytics, sync, state, mappings, watch")


def test_mapping_needs_exactly_one_of_datastore_and_datastore_id(tmp_path):
    text = MINIMAL + '[[mappings]]\ndatastore = "a"\ndatastore_id = 3\nconnection = "c"\n'
    assert problems(tmp_path, text) == [
        "qatlan.toml: mappings[0]: give exactly one of datastore (name) or datastore_id"
    ]


def test_duplicate_datastore_mappings_are_refused(tmp_path):
    block = '[[mappings]]\ndatastore_id = 3\nconnection = "c"\n'
    assert problems(tmp_path, MINIMAL + block + block) == [
        "qatlan.toml: mappings[1].datastore_id: datastore id 3 is already mapped by mappings[0]; "
        "map each datastore once"
    ]


def test_column_rename_without_a_container_is_refused(tmp_path):
    text = MINIMAL + '[[mappings]]\ndatastore = "a"\nconnection = "c"\n'
    text += '[mappings.columns]\nx = "X"\n'
    (line,) = problems(tmp_path, text)
    assert line.startswith('qatlan.toml: mappings[0].columns: "x" must be "container.field"')


def test_every_problem_is_reported_one_per_line(tmp_path):
    text = """
    [atlan]
    url = "ftp://x"
    page_size = 0
    [qualytics]
    [sync]
    push = "no"
    """
    lines = problems(tmp_path, text)
    assert [line.split(": ")[1] for line in lines] == [
        "atlan.url", "atlan.page_size", "qualytics.url", "sync.push"
    ]


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    "where, key, var",
    [
        ("atlan", "token", "ATLAN_API_TOKEN"),
        ("atlan", "api_key", "ATLAN_API_TOKEN"),
        ("qualytics", "password", "QUALYTICS_API_TOKEN"),
        ("qualytics", "client_secret", "QUALYTICS_API_TOKEN"),
    ],
)
def test_tokens_in_the_file_are_refused_without_echoing_them(tmp_path, where, key, var):
    text = MINIMAL.replace(f"[{where}]", f'[{where}]\n{key} = "{SECRET}"')
    (line,) = problems(tmp_path, text)
    assert line.startswith(f"qatlan.toml: {where}.{key}: looks like a secret")
    assert "end up in git" in line and var in line
    assert SECRET not in line


def test_token_refusal_names_the_configured_variable(tmp_path):
    text = MINIMAL.replace("[atlan]", f'[atlan]\ntoken_env = "MY_ATLAN"\ntoken = "{SECRET}"')
    (line,) = problems(tmp_path, text)
    assert "MY_ATLAN" in line and SECRET not in line


def test_a_jwt_anywhere_is_refused_without_echoing_it(tmp_path):
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    for text in (MINIMAL + f'[sync]\ndomains = ["{jwt}"]\n',
                 MINIMAL.replace("[atlan]", f'[atlan]\ntoken_env = "{jwt}"')):
        (line,) = problems(tmp_path, text)
        assert "looks like a token" in line and jwt not in line and jwt[:10] not in line


def test_token_env_must_be_a_variable_name_and_is_not_echoed(tmp_path):
    text = MINIMAL.replace("[atlan]", f'[atlan]\ntoken_env = "{SECRET}"')
    (line,) = problems(tmp_path, text)
    assert line.startswith(
        "qatlan.toml: atlan.token_env: must be the NAME of an environment variable")
    assert SECRET not in line


def test_table_and_column_names_that_look_like_secrets_are_data(tmp_path):
    text = MINIMAL + """
    [[mappings]]
    datastore = "a"
    connection = "c"
    [mappings.tables]
    token = "TOKENS"
    [mappings.columns]
    "users.password_hash" = "PASSWORD_HASH"
    """
    config = load_config(write(tmp_path, text), env={})
    assert config.mappings[0].tables == {"token": "TOKENS"}


def test_tokens_are_read_from_the_environment_when_asked(tmp_path):
    env: dict[str, str] = {}
    config = load_config(write(tmp_path, MINIMAL), env=env)
    env.update(ATLAN_API_TOKEN=" a-token\n", QUALYTICS_API_TOKEN="q-token")
    assert config.atlan_token() == "a-token"
    assert config.qualytics_token() == "q-token"


def test_custom_token_env_is_read(tmp_path):
    text = MINIMAL.replace("[qualytics]", '[qualytics]\ntoken_env = "QT"')
    config = load_config(write(tmp_path, text), env={"QT": "x"})
    assert config.qualytics_token() == "x"


def test_missing_token_names_the_variable_and_how_to_set_it(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), env={"ATLAN_API_TOKEN": "  "})
    with pytest.raises(ConfigError) as info:
        config.atlan_token()
    assert "ATLAN_API_TOKEN is not set" in str(info.value)
    assert "export ATLAN_API_TOKEN=" in info.value.hint


def test_repr_never_shows_tokens(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), env={"ATLAN_API_TOKEN": SECRET})
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert "https://acme.atlan.com" in repr(config)


def test_load_config_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("QUALYTICS_API_TOKEN", "from-os")
    assert load_config(write(tmp_path, MINIMAL)).qualytics_token() == "from-os"


# --------------------------------------------------------------------------- init


def test_init_template_loads_back_with_every_default(tmp_path):
    path = init_config(tmp_path / "sub" / "qatlan.toml",
                       atlan_url="https://acme.atlan.com/", qualytics_url="acme.qualytics.io")
    config = load_config(path, env={})
    expected = load_config(write(tmp_path, MINIMAL), env={})
    assert config.atlan == expected.atlan and config.qualytics == expected.qualytics
    assert config.sync == expected.sync and config.mappings == ()
    assert config.state.path == tmp_path / "sub" / "state" / "qatlan.db"


def test_init_template_without_urls_still_loads(tmp_path):
    config = load_config(init_config(tmp_path / "qatlan.toml"), env={})
    assert config.atlan.url.startswith("https://")


def test_template_shows_every_option_with_its_default(tmp_path):
    text = render_template()
    for section, model in (("atlan", AtlanConfig), ("qualytics", QualyticsConfig),
                           ("sync", SyncConfig), ("state", StateConfig)):
        assert f"[{section}]" in text
        for name, field in model.model_fields.items():
            assert f"{field.alias or name} = " in text, (section, name)
    assert "# page_size = 300" in text and "# overwrite_tags = false" in text
    for name, field in MappingConfig.model_fields.items():
        assert f"{field.alias or name}" in text


def test_uncommenting_every_option_gives_a_valid_config(tmp_path):
    options = render_template().split("# One [[mappings]]")[0]
    text = re.sub(r"(?m)^# (\w+ = )", r"\1", options)
    config = load_config(write(tmp_path, text), env={})
    assert config.qualytics.integration_id == 3
    defaults = load_config(write(tmp_path, MINIMAL, "m.toml"), env={})
    assert config.atlan.model_dump(exclude={"url"}) == defaults.atlan.model_dump(exclude={"url"})
    assert config.sync == defaults.sync


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = write(tmp_path, "keep me")
    with pytest.raises(ConfigError) as info:
        init_config(path)
    assert "already exists" in str(info.value) and "--force" in info.value.hint
    assert path.read_text() == "keep me"
    init_config(path, force=True)
    assert path.read_text().startswith("# qatlan configuration")


def test_init_refuses_a_bad_url(tmp_path):
    with pytest.raises(ConfigError, match="is not an http"):
        init_config(tmp_path / "q.toml", atlan_url="ftp://x")
    assert not (tmp_path / "q.toml").exists()


# --------------------------------------------------------------------------- docs


def test_docs_describe_every_option():
    text = DOCS.read_text(encoding="utf-8")
    for section, model in (("atlan", AtlanConfig), ("qualytics", QualyticsConfig),
                           ("sync", SyncConfig), ("state", StateConfig),
                           ("mappings", MappingConfig)):
        for name, field in model.model_fields.items():
            assert f"`{section}.{field.alias or name}`" in text, (section, name)


def test_parse_config_validates_a_document_without_a_file(tmp_path):
    data = {"atlan": {"url": "https://a.atlan.com"}, "qualytics": {"url": "q.example.com"},
            "state": {"path": "s.db"}}
    config = parse_config(data, base_dir=tmp_path, env={"ATLAN_API_TOKEN": "t"})
    assert config.state.path == tmp_path.resolve() / "s.db"
    assert config.atlan_token() == "t" and config.path is None
    with pytest.raises(ConfigError, match=r"^demo: atlan.url: field required"):
        parse_config({"atlan": {}, "qualytics": {"url": "q"}}, source="demo")


@pytest.mark.parametrize(
    "url", [f"https://me:{SECRET}@a.atlan.com", f"https://a.atlan.com/?k={SECRET}"]
)
def test_urls_with_credentials_or_queries_are_refused_without_echo(tmp_path, url):
    (line,) = problems(tmp_path, MINIMAL.replace("https://acme.atlan.com", url))
    assert line.startswith("qatlan.toml: atlan.url: must") and SECRET not in line
