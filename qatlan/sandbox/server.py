"""Sandbox servers: the API apps with their operations layer and admin routes, run over real
HTTP on loopback (`Sandbox.start`) or in-process for tests (`Sandbox.atlan_transport()`).

    with Sandbox(World(doc)) as sandbox:          # both servers on free loopback ports
        httpx.get(sandbox.atlan_url + "/_sandbox/health")

    sandbox = Sandbox(World(doc))                 # no sockets at all
    client = httpx.Client(transport=sandbox.atlan_transport(), base_url="http://atlan.sandbox")
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any

import httpx

from qatlan.sandbox.admin import Generate, build_admin_app
from qatlan.sandbox.errors import SandboxError
from qatlan.sandbox.ops import ASGIApp, ConnectionDropped, OpsMiddleware, OpsSettings, ServerOps

__all__ = [
    "ATLAN_REQUESTS_PER_MINUTE",
    "Sandbox",
    "SandboxASGITransport",
    "build_atlan_server_app",
    "build_qualytics_server_app",
    "build_server_app",
    "check_loopback",
    "world_tokens",
]

#: Atlan's published limit for the whole instance (docs.atlan.com "API limits and automation")
ATLAN_REQUESTS_PER_MINUTE = 400
#: UNCONFIRMED: Qualytics documents no rate limit, so its sandbox is unlimited by default
QUALYTICS_REQUESTS_PER_MINUTE = 0
_START_TIMEOUT = 10.0


def build_server_app(
    service: str,
    world: Any,
    api_app: ASGIApp,
    ops_settings: OpsSettings | None = None,
    *,
    generate: Generate | None = None,
) -> OpsMiddleware:
    """`api_app` wrapped in the operations layer, with the `/_sandbox/` admin routes.

    The returned app's `.ops` is the server's live `ServerOps` (faults, limiter, stats).
    """
    ops = ServerOps(service, ops_settings)
    admin_app = build_admin_app(service, world, ops, generate=generate)
    return OpsMiddleware(api_app, ops, admin_app=admin_app)


def build_atlan_server_app(world: Any, ops_settings: OpsSettings | None = None) -> OpsMiddleware:
    from qatlan.sandbox.atlan_app import create_atlan_app

    settings = ops_settings or OpsSettings(requests_per_minute=ATLAN_REQUESTS_PER_MINUTE)
    return build_server_app("atlan", world, create_atlan_app(world), settings)


def build_qualytics_server_app(world: Any, ops_settings: OpsSettings | None = None) -> OpsMiddleware:
    from qatlan.sandbox.qualytics_app import create_qualytics_app

    settings = ops_settings or OpsSettings(requests_per_minute=QUALYTICS_REQUESTS_PER_MINUTE)
    return build_server_app("qualytics", world, create_qualytics_app(world), settings)


class SandboxASGITransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An httpx transport over a sandbox ASGI app, for `httpx.Client` and `httpx.AsyncClient`.

    A connection the sandbox drops raises `httpx.RemoteProtocolError`, as over real HTTP.
    Sync requests run on one shared background event loop.
    """

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)):
        self.app = app
        self._asgi = httpx.ASGITransport(app=app, client=client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body becomes a stream that works from the background loop
        return _run_in_background_loop(self._handle_for_sync(request))

    async def _handle_for_sync(self, request: httpx.Request) -> httpx.Response:
        response = await self.handle_async_request(request)
        content = b"".join([chunk async for chunk in response.aiter_raw()])
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )


_background: dict[str, Any] = {}
_background_lock = threading.Lock()


def _run_in_background_loop(coro: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
    with _background_lock:
        loop = _background.get("loop")
        if loop is None:
            loop = asyncio.new_event_loop()
            name = "qatlan-sandbox-inprocess"
            threading.Thread(target=loop.run_forever, name=name, daemon=True).start()
            _background["loop"] = loop
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def check_loopback(host: str) -> None:
    """Refuse anything but a loopback address: the sandbox has fake, printed tokens."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SandboxError(
            f"the sandbox only listens on loopback addresses, not {host!r}",
            hint="use --host 127.0.0.1 (or ::1, localhost); its tokens are fake and public",
        )


def _bind(host: str, port: int, name: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets of a listening
    # socket it knows is TCP; without it every response waits ~40 ms for delayed ACKs
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise SandboxError(
            f"cannot listen on {host} port {port} for the {name} sandbox: {exc.strerror or exc}",
            hint="pick another port (0 picks a free one)",
        ) from exc
    return sock


class _QuietDrops(logging.Filter):
    """Hide uvicorn's 'Exception in ASGI application' log for deliberate drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def _quiet_drop_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def world_tokens(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The tokens of a world document, by Atlan persona name and by Qualytics user name."""
    atlan = {p["name"]: p["token"] for p in doc["atlan"].get("personas", [])}
    qualytics = {}
    for entry in doc["qualytics"].get("tokens", []):
        user = entry.get("user") or {}
        name = user.get("user_name") or user.get("name") or user.get("email") or str(user.get("id"))
        qualytics[name] = entry["token"]
    return {"atlan": atlan, "qualytics": qualytics}


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_server(app: ASGIApp) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    return uvicorn.Server(config)


class Sandbox:
    """A world and its two servers (Atlan and Qualytics), over HTTP or in-process.

    `atlan_app` / `qualytics_app` replace the built server apps (e.g. `build_server_app` around
    a test double); `atlan_ops` / `qualytics_ops` set how the built ones start out.
    """

    def __init__(
        self,
        world: Any,
        *,
        atlan_ops: OpsSettings | None = None,
        qualytics_ops: OpsSettings | None = None,
        atlan_app: OpsMiddleware | None = None,
        qualytics_app: OpsMiddleware | None = None,
    ):
        self.world = world
        self.atlan_app = atlan_app or build_atlan_server_app(world, atlan_ops)
        self.qualytics_app = qualytics_app or build_qualytics_server_app(world, qualytics_ops)
        self._servers: list[Any] = []
        self._thread: threading.Thread | None = None
        self._urls: dict[str, str] = {}

    # in-process

    def atlan_transport(self) -> SandboxASGITransport:
        return SandboxASGITransport(self.atlan_app)

    def qualytics_transport(self) -> SandboxASGITransport:
        return SandboxASGITransport(self.qualytics_app)

    @property
    def tokens(self) -> dict[str, dict[str, str]]:
        """`{"atlan": {persona name: token}, "qualytics": {user name: token}}` (all fake)."""
        return world_tokens(self.world.export())

    # over HTTP

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def atlan_url(self) -> str:
        return self._url("atlan")

    @property
    def qualytics_url(self) -> str:
        return self._url("qualytics")

    def _url(self, name: str) -> str:
        if name not in self._urls:
            raise SandboxError("the sandbox is not running", hint="call Sandbox.start() first")
        return self._urls[name]

    def start(self, host: str = "127.0.0.1", atlan_port: int = 0, qualytics_port: int = 0) -> Sandbox:
        """Serve both apps on `host` (loopback only) and return once both are listening.

        Port 0 picks a free port; `atlan_url` / `qualytics_url` give the real ones.
        """
        if self.running:
            raise SandboxError("this sandbox is already running")
        check_loopback(host)
        bind_host = "127.0.0.1" if host == "localhost" else host
        atlan_sock = _bind(bind_host, atlan_port, "Atlan")
        try:
            qualytics_sock = _bind(bind_host, qualytics_port, "Qualytics")
        except SandboxError:
            atlan_sock.close()
            raise
        socks = [atlan_sock, qualytics_sock]
        self._urls = {
            name: _url(bind_host, sock.getsockname()[1])
            for name, sock in zip(("atlan", "qualytics"), socks, strict=True)
        }
        _quiet_drop_logs()
        self._servers = [_uvicorn_server(app) for app in (self.atlan_app, self.qualytics_app)]
        self._thread = threading.Thread(target=self._run, args=(socks,), name="qatlan-sandbox", daemon=True)
        self._thread.start()
        self._wait_started()
        return self

    def _run(self, socks: list[socket.socket]) -> None:
        async def serve_all() -> None:
            pairs = zip(self._servers, socks, strict=True)
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in pairs))

        try:
            asyncio.run(serve_all())
        finally:
            for sock in socks:
                sock.close()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        thread = self._thread
        while not all(server.started for server in self._servers):
            if thread is None or not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SandboxError("the sandbox servers did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut both servers down (open connections get a short grace period)."""
        thread, servers = self._thread, self._servers
        for server in servers:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=_START_TIMEOUT)
        self._thread, self._servers, self._urls = None, [], {}

    def serve_forever(self) -> None:
        """Serve until Ctrl-C or SIGTERM (or `stop()` from another thread), then shut down."""
        if not self.running:
            self.start()
        thread = self._thread
        try:
            with _sigterm_as_interrupt():
                while thread is not None and thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _sigterm_as_interrupt:
    """In the main thread, turn SIGTERM into KeyboardInterrupt for a clean shutdown."""

    def __enter__(self) -> None:
        import signal

        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)

    def __exit__(self, *exc_info: object) -> None:
        import signal

        if self._installed:
            signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
