"""Settings from the environment, as a user with pyatlan and qualytics-cli habits sets them:
qatlan's own variables, then the SDKs' names, then qatlan.toml (docs/configuration.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TOKENS_ENV, make_sandbox
from qatlan.cli import app
from qatlan.config import load_config, parse_config
from qatlan.sandbox import cli as sandbox_cli

pytestmark = pytest.mark.http
runner = CliRunner()

#: every variable qatlan reads a URL or token from; unset in each test's environment
QATLAN_VARS = ("QATLAN_ATLAN_URL", "ATLAN_BASE_URL", "ATLAN_API_TOKEN", "ATLAN_API_KEY",
               "QATLAN_QUALYTICS_URL", "QUALYTICS_URL", "QUALYTICS_API_TOKEN", "QUALYTICS_TOKEN",
               "QATLAN_STATE", "QATLAN_CONFIG")


@pytest.fixture(scope="module")
def live():
    sb = make_sandbox("tables=12,seed=4").start()
    yield sb
    sb.stop()


def _clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in QATLAN_VARS}
    return {**env, **values}


def _banner_exports(sb) -> dict[str, str]:
    """The variables `qatlan sandbox up` tells the user to export, parsed from its banner."""
    text = sandbox_cli._banner(sb, sb.world.export())
    exports = {}
    for line in text.splitlines():
        if line.strip().startswith("export "):
            for pair in line.split("#")[0].split()[1:]:
                name, _, value = pair.partition("=")
                exports[name] = value
    return exports


def test_the_sandbox_banner_exports_are_all_plan_needs_without_a_config_file(tmp_path, live):
    exports = _banner_exports(live)
    assert set(exports) == {"ATLAN_BASE_URL", "ATLAN_API_KEY", "QUALYTICS_URL", "QUALYTICS_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "qatlan", "plan", "--json"], cwd=tmp_path, capture_output=True,
        text=True, env=_clean_env(**exports), timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{") and '"summary"' in result.stdout
    assert (tmp_path / "state" / "qatlan.db").is_file()  # [state] path's default, here
    for token in (exports["ATLAN_API_KEY"], exports["QUALYTICS_TOKEN"]):
        assert token not in result.stdout + result.stderr
        assert token.encode() not in (tmp_path / "state" / "qatlan.db").read_bytes()


def test_qatlan_variables_win_over_the_sdk_names_which_win_over_the_file(tmp_path):
    doc = {"atlan": {"url": "https://file.atlan.com"}, "qualytics": {"url": "https://file.qualytics.io"}}
    sdk = {"ATLAN_BASE_URL": "https://sdk.atlan.com", "QUALYTICS_URL": "sdk.qualytics.io",
           "ATLAN_API_KEY": "sdk-a", "QUALYTICS_TOKEN": "sdk-q"}
    own = {"QATLAN_ATLAN_URL": "https://own.atlan.com", "QATLAN_QUALYTICS_URL": "https://own.qualytics.io",
           "ATLAN_API_TOKEN": "own-a", "QUALYTICS_API_TOKEN": "own-q"}

    config = parse_config(doc, env={})
    assert (config.atlan.url, config.qualytics.url) == ("https://file.atlan.com", "https://file.qualytics.io/api")

    config = parse_config(doc, env=sdk)
    assert (config.atlan.url, config.qualytics.url) == ("https://sdk.atlan.com", "https://sdk.qualytics.io/api")
    assert config.qualytics.ui_url == "https://sdk.qualytics.io"  # links follow the URL used
    assert (config.atlan_token(), config.qualytics_token()) == ("sdk-a", "sdk-q")
    assert config.token_variable("atlan") == "ATLAN_API_KEY"

    config = parse_config(doc, env={**sdk, **own})
    assert (config.atlan.url, config.qualytics.url) == ("https://own.atlan.com", "https://own.qualytics.io/api")
    assert (config.atlan_token(), config.qualytics_token()) == ("own-a", "own-q")
    assert config.token_variable("qualytics") == "QUALYTICS_API_TOKEN"
    assert "own-a" not in repr(config) and "sdk-a" not in repr(config)


def test_a_variable_that_holds_no_url_is_named(tmp_path):
    path = tmp_path / "qatlan.toml"
    path.write_text('[atlan]\nurl = "https://a.atlan.com"\n[qualytics]\nurl = "https://q.io"\n')
    result = runner.invoke(app, ["refresh", "-c", str(path)],
                           env={**dict.fromkeys(QATLAN_VARS), "QUALYTICS_URL": "not a url"})
    assert result.exit_code == 1
    assert "QUALYTICS_URL: 'not a url' is not an http(s) URL" in result.output
    assert "Traceback" not in result.output


def test_no_token_in_either_variable_names_both(tmp_path):
    config = parse_config({"atlan": {"url": "a.atlan.com"}, "qualytics": {"url": "q.io"}}, env={})
    with pytest.raises(Exception) as info:
        config.atlan_token()
    assert "ATLAN_API_TOKEN" in str(info.value) and "ATLAN_API_KEY" in str(info.value)


def test_an_overridden_file_url_is_noted_on_stderr(tmp_path, live):
    path = tmp_path / "qatlan.toml"
    path.write_text('[atlan]\nurl = "https://file.atlan.com"\n[qualytics]\nurl = "https://q.io"\n')
    env = {**dict.fromkeys(QATLAN_VARS), "ATLAN_BASE_URL": live.atlan_url}
    result = runner.invoke(app, ["history", "-c", str(path)], env=env)
    assert f"Note: atlan.url is {live.atlan_url} from $ATLAN_BASE_URL, not https://file.atlan.com" \
        in result.output


def test_without_a_config_file_and_without_url_variables_the_hint_names_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["refresh"], env={**dict.fromkeys(QATLAN_VARS), "ATLAN_BASE_URL": "https://a.atlan.com"})
    assert result.exit_code == 1
    assert "qatlan.toml: configuration not found" in result.output
    assert "set QUALYTICS_URL to run without one" in result.output
    # an explicit --config that does not exist is never replaced by the environment
    result = runner.invoke(app, ["refresh", "-c", "other.toml"],
                           env={"ATLAN_BASE_URL": "https://a.atlan.com", "QUALYTICS_URL": "https://q.io"})
    assert result.exit_code == 1 and "other.toml: configuration not found" in result.output


def test_the_state_path_is_the_flag_then_qatlan_state_then_the_file(tmp_path, live):
    path = tmp_path / "qatlan.toml"
    path.write_text(f'[atlan]\nurl = "{live.atlan_url}"\n[qualytics]\nurl = "{live.qualytics_url}"\n'
                    '[state]\npath = "from-file.db"\n')
    env = {**dict.fromkeys(QATLAN_VARS), **TOKENS_ENV}
    runner.invoke(app, ["refresh", "-c", str(path)], env=env)
    assert [p.name for p in tmp_path.glob("*.db")] == ["from-file.db"]
    runner.invoke(app, ["refresh", "-c", str(path)], env={**env, "QATLAN_STATE": str(tmp_path / "from-env.db")})
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["from-env.db", "from-file.db"]
    runner.invoke(app, ["refresh", "-c", str(path), "--state", str(tmp_path / "from-flag.db")],
                  env={**env, "QATLAN_STATE": str(tmp_path / "from-env.db")})
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["from-env.db", "from-file.db", "from-flag.db"]
    result = runner.invoke(app, ["history", "-c", str(path)],
                           env={**env, "QATLAN_STATE": str(tmp_path / "from-env.db")})
    assert result.exit_code == 0 and result.output.count("refresh") == 1


def test_init_takes_urls_from_the_environment(tmp_path):
    path = tmp_path / "qatlan.toml"
    env = {**dict.fromkeys(QATLAN_VARS), "ATLAN_BASE_URL": "https://sdk.atlan.com",
           "QATLAN_QUALYTICS_URL": "own.qualytics.io", "QUALYTICS_URL": "https://sdk.qualytics.io"}
    result = runner.invoke(app, ["init", str(path)], env=env)
    assert result.exit_code == 0, result.output
    config = load_config(path, env={})
    assert (config.atlan.url, config.qualytics.url) == ("https://sdk.atlan.com", "https://own.qualytics.io/api")
    # the flag wins over the environment
    result = runner.invoke(app, ["init", str(path), "--force", "--atlan-url", "https://flag.atlan.com"], env=env)
    assert result.exit_code == 0, result.output
    assert load_config(path, env={}).atlan.url == "https://flag.atlan.com"


@pytest.mark.parametrize("args, named", [
    (["--qualytics-url", "not a url"], "--qualytics-url: 'not a url' is not an http(s) URL"),
    (["--atlan-url", "https://acme.atlan.com:http"], "--atlan-url: "),
    (["--atlan-url", "ftp://acme.atlan.com"], "--atlan-url: 'ftp://acme.atlan.com' is not an http(s) URL"),
])
def test_init_refuses_a_url_that_is_not_one_and_writes_nothing(tmp_path, args, named):
    path = tmp_path / "qatlan.toml"
    result = runner.invoke(app, ["init", str(path), *args], env=dict.fromkeys(QATLAN_VARS))
    assert result.exit_code == 1
    assert named in result.output and "Traceback" not in result.output
    assert not path.exists()


def test_init_refuses_a_bad_url_from_the_environment_naming_the_variable(tmp_path):
    path = tmp_path / "qatlan.toml"
    result = runner.invoke(app, ["init", str(path)],
                           env={**dict.fromkeys(QATLAN_VARS), "ATLAN_BASE_URL": "acme atlan"})
    assert result.exit_code == 1
    assert "ATLAN_BASE_URL: 'acme atlan' is not an http(s) URL" in result.output
    assert not path.exists()


def test_a_url_with_a_space_in_the_file_is_refused(tmp_path):
    with pytest.raises(Exception) as info:
        parse_config({"atlan": {"url": "https://not a url"}, "qualytics": {"url": "q.io"}}, env={})
    assert "atlan.url: 'https://not a url' is not an http(s) URL" in str(info.value)
