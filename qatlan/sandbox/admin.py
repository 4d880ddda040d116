"""Admin routes under `/_sandbox/` on each sandbox server (documented in docs/sandbox.md).

They load, generate, change and export the world (shared by both servers), and read or set
this server's faults, limits and statistics. JSON in and out; errors are `{"error": "..."}`.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.sandbox.errors import SandboxError
from qatlan.sandbox.ops import FaultSettings, ServerOps
from qatlan.sandbox.outbound_admin import outbound_routes

__all__ = ["STORE_LIMITS", "StoreLimits", "build_admin_app"]

#: limits that live on the AtlanStore as attributes of the same names
STORE_LIMITS = ("max_result_window", "max_bulk_entities")

Generate = Callable[[str], dict[str, Any]]


class StoreLimits:
    """Atlan store limits set through the admin API, re-applied when the world is replaced.

    Limits are server settings, not world content: loading another world keeps them.
    """

    def __init__(self, world: Any):
        self.world = world
        self.values: dict[str, int] = {}
        self._store: Callable[[], Any] = lambda: None

    def update(self, values: dict[str, int]) -> None:
        self.values.update(values)
        self._store = lambda: None
        self.sync()

    def sync(self) -> None:
        """Apply the values to the current store unless they are already on it."""
        if not self.values:
            return
        store = self.world.atlan
        if self._store() is store:
            return
        for name, value in self.values.items():
            setattr(store, name, value)
        try:
            self._store = weakref.ref(store)
        except TypeError:  # a store without weakref support: keep it alive instead
            self._store = lambda: store

    def current(self) -> dict[str, Any]:
        return {name: getattr(self.world.atlan, name, None) for name in STORE_LIMITS}


def build_admin_app(
    service: str, world: Any, ops: ServerOps, *, generate: Generate | None = None
) -> Starlette:
    """The `/_sandbox/` routes of one server (`service` is `atlan` or `qualytics`)."""
    store_limits = StoreLimits(world) if service == "atlan" else None
    if store_limits is not None:
        ops.on_request = store_limits.sync
    handlers = _Handlers(service, world, ops, store_limits, generate)
    routes = [
        Route("/_sandbox/health", handlers.health, methods=["GET"]),
        Route("/_sandbox/world", handlers.get_world, methods=["GET"]),
        Route("/_sandbox/world", handlers.put_world, methods=["PUT"]),
        Route("/_sandbox/world/generate", handlers.generate_world, methods=["POST"]),
        Route("/_sandbox/world/changes", handlers.apply_changes, methods=["POST"]),
        Route("/_sandbox/faults", handlers.get_faults, methods=["GET"]),
        Route("/_sandbox/faults", handlers.put_faults, methods=["PUT"]),
        Route("/_sandbox/limits", handlers.get_limits, methods=["GET"]),
        Route("/_sandbox/limits", handlers.put_limits, methods=["PUT"]),
        Route("/_sandbox/records/{kind}/{key}", handlers.get_record, methods=["GET"]),
        Route("/_sandbox/stats", handlers.get_stats, methods=["GET"]),
        Route("/_sandbox/stats", handlers.delete_stats, methods=["DELETE"]),
        *outbound_routes(service, world),  # /_sandbox/webhooks (Atlan), /_sandbox/flows (Qualytics)
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")


class _BadRequest(Exception):
    """A request the admin API refuses with 400."""


async def _json_body(request: Request, key: str | None = None) -> Any:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if key is None:
        return body
    if not isinstance(body, dict) or key not in body:
        raise _BadRequest(f"the request body must be a JSON object with a {key!r} key")
    return body[key]


def _refusing(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad input (bad JSON, a world that does not validate, ...) into 400 {"error"}."""

    async def wrapped(self: _Handlers, request: Request) -> Response:
        try:
            return await handler(self, request)
        except (_BadRequest, SandboxError, ValueError, KeyError, TypeError) as exc:
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            return error(400, message or type(exc).__name__)

    return wrapped


class _Handlers:
    def __init__(
        self,
        service: str,
        world: Any,
        ops: ServerOps,
        store_limits: StoreLimits | None,
        generate: Generate | None,
    ):
        self.service = service
        self.world = world
        self.ops = ops
        self.store_limits = store_limits
        self._generate = generate

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": self.service})

    async def get_world(self, request: Request) -> Response:
        body = await run_in_threadpool(lambda: json.dumps(self.world.export()).encode())
        return Response(body, media_type="application/json")

    @_refusing
    async def put_world(self, request: Request) -> Response:
        doc = await _json_body(request)
        if not isinstance(doc, dict):
            raise _BadRequest("a world is a JSON object with 'atlan' and 'qualytics' keys")
        await run_in_threadpool(self.world.replace, doc)
        return self._loaded()

    @_refusing
    async def generate_world(self, request: Request) -> Response:
        spec = await _json_body(request, "spec")
        if not isinstance(spec, str):
            raise _BadRequest("spec must be a string such as 'tables=10,seed=1'")
        generate = self._generate or _default_generate()
        await run_in_threadpool(lambda: self.world.replace(generate(spec)))
        return self._loaded()

    def _loaded(self) -> Response:
        if self.store_limits is not None:
            self.store_limits.sync()
        return JSONResponse({"status": "loaded", "meta": dict(self.world.meta)})

    @_refusing
    async def apply_changes(self, request: Request) -> Response:
        changes = await _json_body(request, "changes")
        if not isinstance(changes, list):
            raise _BadRequest("changes must be a list of change objects")
        results = await run_in_threadpool(self.world.apply_changes, changes)
        return JSONResponse({"results": results})

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.ops.faults.to_json())

    @_refusing
    async def put_faults(self, request: Request) -> Response:
        self.ops.set_faults(FaultSettings.from_json(await _json_body(request)))
        return JSONResponse(self.ops.faults.to_json())

    async def get_limits(self, request: Request) -> Response:
        return JSONResponse(self._limits())

    def _limits(self) -> dict[str, Any]:
        limits: dict[str, Any] = {"requests_per_minute": self.ops.limiter.requests_per_minute}
        if self.store_limits is not None:
            limits.update(self.store_limits.current())
        return limits

    @_refusing
    async def put_limits(self, request: Request) -> Response:
        values = _check_limits(await _json_body(request), self.store_limits is not None)
        if "requests_per_minute" in values:
            self.ops.limiter.set_limit(values.pop("requests_per_minute"))
        if values and self.store_limits is not None:
            self.store_limits.update(values)
        return JSONResponse(self._limits())

    async def get_record(self, request: Request) -> Response:
        """One stored record as the world holds it (an Atlan entity by GUID: kind `entities`;
        a Qualytics object by kind and id): what a benchmark polls to see a write land,
        without the API's rate limit or a whole-world export."""
        kind, key = request.path_params["kind"], request.path_params["key"]
        if self.service == "atlan":
            found = self.world.atlan.get(key) if kind == "entities" else None
        else:
            found = self.world.qualytics.get(kind, int(key)) if key.isdigit() else None
        if found is None:
            return error(404, f"no {kind} {key} in the {self.service} world")
        return JSONResponse(found)

    async def get_stats(self, request: Request) -> Response:
        return JSONResponse(self.ops.stats.to_json())

    async def delete_stats(self, request: Request) -> Response:
        self.ops.stats.reset()
        return JSONResponse(self.ops.stats.to_json())


def _check_limits(doc: Any, has_store_limits: bool) -> dict[str, int]:
    if not isinstance(doc, dict):
        raise _BadRequest("limits must be a JSON object")
    known = ("requests_per_minute", *STORE_LIMITS) if has_store_limits else ("requests_per_minute",)
    for key, value in doc.items():
        if key not in known:
            raise _BadRequest(f"unknown limit {key!r}; known: {', '.join(known)}")
        lowest = 0 if key == "requests_per_minute" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise _BadRequest(f"{key} must be a whole number >= {lowest}")
    return dict(doc)


def _default_generate() -> Generate:
    from qatlan.sandbox.generate import generate_world

    return generate_world
