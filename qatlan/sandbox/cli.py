"""`qatlan sandbox ...`: run the local Atlan and Qualytics servers (see docs/sandbox.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from qatlan.sandbox.errors import SandboxError

app = typer.Typer(
    help="Local Atlan and Qualytics servers with a generated or loaded world (loopback only).",
    no_args_is_help=True,
    epilog="Example: qatlan sandbox up --atlan-port 0 --qualytics-port 0",
)

DEFAULT_SPEC = "tables=20,seed=1"
ATLAN_PORT = 8401
QUALYTICS_PORT = 8402


@app.callback()
def sandbox() -> None:
    """Local Atlan and Qualytics servers with a generated or loaded world (loopback only)."""


@app.command()
def up(
    world: Path | None = typer.Option(None, "--world", metavar="FILE", help="Load this world JSON file."),
    generate: str | None = typer.Option(
        None, "--generate", metavar="SPEC", help=f"Generate a world, e.g. {DEFAULT_SPEC} (the default)."
    ),
    atlan_port: int = typer.Option(ATLAN_PORT, metavar="N", help="Port of the Atlan server (0 = any free port)."),
    qualytics_port: int = typer.Option(
        QUALYTICS_PORT, metavar="N", help="Port of the Qualytics server (0 = any free port)."
    ),
    host: str = typer.Option("127.0.0.1", metavar="ADDR", help="Loopback address to listen on."),
    save_world: Path | None = typer.Option(
        None, "--save-world", metavar="FILE", help="Write the world here at start and again at shutdown."
    ),
) -> None:
    """Start both sandbox servers and serve until Ctrl-C.

    Example: qatlan sandbox up --generate tables=200,seed=7 --save-world world.json
    """
    if world is not None and generate is not None:
        _fail(SandboxError("use either --world FILE or --generate SPEC, not both"))
    try:
        sandbox = _start(world, generate or DEFAULT_SPEC, host, atlan_port, qualytics_port)
    except (SandboxError, ValueError) as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    doc = sandbox.world.export()
    if save_world is not None:
        _save(doc, save_world)
    typer.echo(_banner(sandbox, doc))
    try:
        sandbox.serve_forever()
    finally:
        if save_world is not None:
            _save(sandbox.world.export(), save_world)
            typer.echo(f"World saved to {save_world}")


def _start(world_file: Path | None, spec: str, host: str, atlan_port: int, qualytics_port: int) -> Any:
    from qatlan.sandbox.server import Sandbox, check_loopback
    from qatlan.sandbox.world import World

    check_loopback(host)  # before building a possibly large world
    if world_file is not None:
        world = World.from_file(world_file)
    else:
        from qatlan.sandbox.generate import generate_world

        world = World(generate_world(spec))
    return Sandbox(world).start(host, atlan_port, qualytics_port)


def _save(doc: dict[str, Any], path: Path) -> None:
    from qatlan.sandbox.world import write_world_file

    try:
        write_world_file(doc, path)
    except OSError as exc:
        typer.echo(f"Error: cannot write the world to {path}: {exc.strerror or exc}", err=True)


#: qatlan's own variables, read before the SDKs' names that the banner exports
_QATLAN_OWN = ("QATLAN_ATLAN_URL", "ATLAN_API_TOKEN", "QATLAN_QUALYTICS_URL", "QUALYTICS_API_TOKEN")


def _banner(sandbox: Any, doc: dict[str, Any]) -> str:
    from qatlan.sandbox.server import world_tokens

    personas = doc["atlan"].get("personas", [])
    atlan_token = _pick_persona(personas).get("token", "")
    qualytics_token = next(iter(world_tokens(doc)["qualytics"].values()), "")
    lines = [
        f"Atlan sandbox:     {sandbox.atlan_url}",
        f"Qualytics sandbox: {sandbox.qualytics_url}",
        "",
        "Sandbox tokens are fake. qatlan (and pyatlan, qualytics-cli) read these variables:",
        f"  export ATLAN_BASE_URL={sandbox.atlan_url} ATLAN_API_KEY={atlan_token}",
        f"  export QUALYTICS_URL={sandbox.qualytics_url} QUALYTICS_TOKEN={qualytics_token}",
        f"  unset {' '.join(_QATLAN_OWN)}   # qatlan's own names win over those",
        "  qatlan plan   # no qatlan.toml needed; one here keeps its other options, not its URLs",
        "",
        "Atlan personas:",
    ]
    names = max((len(p["name"]) for p in personas), default=0)
    tokens = max((len(p["token"]) for p in personas), default=0)
    for p in personas:
        access = f"read {_reach(p.get('read', []))}, update {_reach(p.get('update', []))}"
        lines.append(f"  {p['name']:<{names}}  {p['token']:<{tokens}}  ({access})")
    lines += ["", f"Admin API: {sandbox.atlan_url}/_sandbox/ (docs/sandbox.md). Ctrl-C stops."]
    return "\n".join(lines)


def _reach(connections: list[str]) -> str:
    if "*" in connections:
        return "all connections"
    if not connections:
        return "none"
    return f"{len(connections)} connection{'' if len(connections) == 1 else 's'}"


def _pick_persona(personas: list[dict[str, Any]]) -> dict[str, Any]:
    """The persona that can read and update everything, else the first one."""
    for persona in personas:
        if "*" in persona.get("read", []) and "*" in persona.get("update", []):
            return persona
    return personas[0] if personas else {}


def _fail(exc: Exception) -> NoReturn:
    typer.echo(f"Error: {exc}", err=True)
    hint = getattr(exc, "hint", None)
    if hint:
        typer.echo(f"Hint: {hint}", err=True)
    raise typer.Exit(1)
