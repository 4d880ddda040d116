"""Sandbox servers over real HTTP on loopback, the Sandbox class and `qatlan sandbox up`."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from qatlan.sandbox import cli as sandbox_cli
from qatlan.sandbox.errors import SandboxError
from qatlan.sandbox.ops import OpsSettings
from qatlan.sandbox.server import Sandbox, build_server_app, check_loopback

PERSONAS = [
    {"name": "reader", "token": "tok-reader", "read": ["default/snowflake/1"], "update": []},
    {"name": "admin", "token": "tok-admin", "read": ["*"], "update": ["*"]},
]


class FakeWorld:
    meta: dict[str, Any] = {"spec": "fake"}

    def export(self) -> dict[str, Any]:
        return {
            "world_version": 1,
            "meta": self.meta,
            "atlan": {"personas": PERSONAS},
            "qualytics": {"tokens": [{"token": "tok-q", "user": {"id": 1, "user_name": "ada"}}]},
        }


def dummy_api(writes: list[Any]) -> Starlette:
    async def bulk(request: Request) -> Response:
        writes.append(await request.json())
        return JSONResponse({"mutatedEntities": {"UPDATE": [{"guid": "g1"}]}})

    async def ping(request: Request) -> Response:
        return JSONResponse({"pong": True})

    return Starlette(routes=[Route("/api/bulk", bulk, methods=["POST"]), Route("/api/ping", ping)])


def fake_sandbox(writes: list[Any] | None = None) -> Sandbox:
    world = FakeWorld()
    writes = [] if writes is None else writes
    apps = {
        service: build_server_app(service, world, dummy_api(writes), OpsSettings())
        for service in ("atlan", "qualytics")
    }
    return Sandbox(world, atlan_app=apps["atlan"], qualytics_app=apps["qualytics"])


# loopback only


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    check_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com"])
def test_start_refuses_a_host_that_is_not_loopback(host: str) -> None:
    with pytest.raises(SandboxError, match="only listens on loopback addresses"):
        fake_sandbox().start(host=host)


def test_urls_are_an_error_until_the_sandbox_runs() -> None:
    with pytest.raises(SandboxError, match="not running"):
        _ = fake_sandbox().atlan_url


def test_tokens_name_atlan_personas_and_qualytics_users() -> None:
    assert fake_sandbox().tokens == {
        "atlan": {"reader": "tok-reader", "admin": "tok-admin"},
        "qualytics": {"ada": "tok-q"},
    }


# over real HTTP


@pytest.mark.http
def test_both_servers_listen_on_free_loopback_ports() -> None:
    with fake_sandbox() as sandbox:
        urls = [sandbox.atlan_url, sandbox.qualytics_url]
        assert all(url.startswith("http://127.0.0.1:") and not url.endswith(":0") for url in urls)
        assert urls[0] != urls[1]
        assert httpx.get(f"{sandbox.atlan_url}/_sandbox/health").json()["service"] == "atlan"
        assert httpx.get(f"{sandbox.qualytics_url}/_sandbox/health").json()["service"] == "qualytics"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{urls[0]}/_sandbox/health")


@pytest.mark.http
def test_a_dropped_connection_is_a_transport_error_for_a_real_client() -> None:
    writes: list[Any] = []
    with fake_sandbox(writes) as sandbox, httpx.Client(base_url=sandbox.atlan_url) as client:
        client.put("/_sandbox/faults", json={"rate_drop_after": 1.0})
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/api/bulk", json={"entities": [1]})
        assert writes == [{"entities": [1]}]  # the write landed all the same
        client.put("/_sandbox/faults", json={"rate_drop": 1.0})
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/api/bulk", json={"entities": [2]})
        assert writes == [{"entities": [1]}]
        client.put("/_sandbox/faults", json={})
        assert client.get("/api/ping").json() == {"pong": True}
        assert client.get("/_sandbox/stats").json()["total"]["status"] == {"200": 1, "dropped": 2}


@pytest.mark.http
def test_a_port_in_use_is_refused_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SandboxError, match=f"cannot listen on 127.0.0.1 port {port} for the Qualytics"):
            fake_sandbox().start(qualytics_port=port)


@pytest.mark.http
def test_serve_forever_returns_when_the_sandbox_is_stopped() -> None:
    sandbox = fake_sandbox().start()
    threading.Timer(0.2, sandbox.stop).start()
    sandbox.serve_forever()
    assert not sandbox.running


@pytest.mark.http
def test_smoke_generated_world_over_http() -> None:
    generate = pytest.importorskip("qatlan.sandbox.generate")
    pytest.importorskip("qatlan.sandbox.atlan_app")
    pytest.importorskip("qatlan.sandbox.qualytics_app")
    from qatlan.sandbox.world import World

    with Sandbox(World(generate.generate_world("tables=5,seed=1"))) as sandbox:
        atlan_token = next(iter(sandbox.tokens["atlan"].values()))
        qualytics_token = next(iter(sandbox.tokens["qualytics"].values()))
        typedefs = httpx.get(
            f"{sandbox.atlan_url}/api/meta/types/typedefs", headers={"Authorization": f"Bearer {atlan_token}"}
        )
        datastores = httpx.get(
            f"{sandbox.qualytics_url}/api/datastores", headers={"Authorization": f"Bearer {qualytics_token}"}
        )
        assert (typedefs.status_code, datastores.status_code) == (200, 200)
        exported = httpx.get(f"{sandbox.qualytics_url}/_sandbox/world").json()
        assert exported["world_version"] == 1
        stats = httpx.get(f"{sandbox.atlan_url}/_sandbox/stats").json()
        assert [(e["method"], e["path"]) for e in stats["endpoints"]] == [("GET", "/api/meta/types/typedefs")]


# qatlan sandbox up


def run_cli(*args: str) -> Any:
    root = typer.Typer()
    root.add_typer(sandbox_cli.app, name="sandbox")
    return CliRunner().invoke(root, ["sandbox", "up", *args])


def test_cli_refuses_world_and_generate_together(tmp_path: Path) -> None:
    result = run_cli("--world", str(tmp_path / "w.json"), "--generate", "tables=1")
    assert result.exit_code == 1
    assert result.stderr == "Error: use either --world FILE or --generate SPEC, not both\n"


def test_cli_refuses_a_host_that_is_not_loopback() -> None:
    result = run_cli("--host", "0.0.0.0")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the sandbox only listens on loopback addresses, not '0.0.0.0'\n")
    assert len(result.stderr.splitlines()) == 2


def test_cli_refuses_a_world_file_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "world.json"
    bad.write_text("{nope", encoding="utf-8")
    result = run_cli("--world", str(bad))
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.output


def test_cli_prints_urls_and_tokens_then_serves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sandbox = fake_sandbox()
    monkeypatch.setattr(sandbox_cli, "_start", lambda *args: sandbox.start(*args[2:]))
    monkeypatch.setattr(Sandbox, "serve_forever", Sandbox.stop)
    saved = tmp_path / "saved.json"
    result = run_cli("--atlan-port", "0", "--qualytics-port", "0", "--save-world", str(saved))
    assert result.exit_code == 0, result.output
    assert "ATLAN_API_KEY=tok-admin" in result.stdout  # the persona that may do everything
    assert "QUALYTICS_TOKEN=tok-q" in result.stdout
    assert "export ATLAN_BASE_URL=http://127.0.0.1:" in result.stdout
    assert json.loads(saved.read_text(encoding="utf-8"))["meta"] == {"spec": "fake"}


def test_limits_and_changes_reach_the_real_stores_in_process() -> None:
    generate = pytest.importorskip("qatlan.sandbox.generate")
    pytest.importorskip("qatlan.sandbox.atlan_app")
    from qatlan.sandbox.world import World

    sandbox = Sandbox(World(generate.generate_world("tables=3,seed=2")))
    token = sandbox.tokens["atlan"]["admin"]
    headers = {"Authorization": f"Bearer {token}"}
    atlan = httpx.Client(transport=sandbox.atlan_transport(), base_url="http://atlan", headers=headers)
    search = {"dsl": {"from": 0, "size": 2, "query": {"match_all": {}}}}
    assert atlan.post("/api/meta/search/indexsearch", json=search).status_code == 200
    atlan.put("/_sandbox/limits", json={"max_result_window": 1})
    assert sandbox.world.atlan.max_result_window == 1
    assert atlan.post("/api/meta/search/indexsearch", json=search).status_code == 400
    guid = sandbox.world.export()["atlan"]["entities"][0]["guid"]
    change = {"side": "atlan", "op": "update", "guid": guid, "set": {"attributes": {"description": "x"}}}
    response = atlan.post("/_sandbox/world/changes", json={"changes": [change]})
    assert response.json() == {"results": [{"side": "atlan", "op": "update", "guid": guid}]}
