"""`qatlan init` as a user runs it."""

from __future__ import annotations

from typer.testing import CliRunner

from qatlan.cli import app
from qatlan.config import load_config

runner = CliRunner()
ENV = {"ATLAN_API_TOKEN": "t1", "QUALYTICS_API_TOKEN": "t2"}


def test_init_writes_a_config_that_loads_back(tmp_path):
    path = tmp_path / "qatlan.toml"
    result = runner.invoke(app, ["init", str(path), "--atlan-url", "https://acme.atlan.com",
                                 "--qualytics-url", "https://acme.qualytics.io"])
    assert result.exit_code == 0, result.output
    config = load_config(path, env=ENV)
    assert config.atlan.url.startswith("https://acme.atlan.com")
    assert config.qualytics.url.endswith("/api")


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "qatlan.toml"
    path.write_text("# mine\n")
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert path.read_text() == "# mine\n"
    assert runner.invoke(app, ["init", str(path), "--force"]).exit_code == 0
    assert path.read_text() != "# mine\n"
