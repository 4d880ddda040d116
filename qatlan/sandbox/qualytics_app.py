"""The sandbox Qualytics API as a Starlette app (reference: docs/sandbox.md, world-format.md).

`create_qualytics_app(world)` serves the API routes only, under `/api`, each with and without
a trailing slash. Every request reads `world.qualytics` afresh (so `World.replace()` swaps the
contents under a running server) and runs its handler under `world.lock`. Everything except
`/api/health` and `/api/status` needs `Authorization: Bearer <token>` with a token of the
world's `qualytics.tokens`. Rate limits, faults, statistics and `/_sandbox/` admin routes are
added around this app by `qatlan.sandbox.ops` and the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.sandbox import qualytics_reads as reads
from qatlan.sandbox import qualytics_tags as tags
from qatlan.sandbox import qualytics_writes as writes
from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.qualytics_http import ApiProblem, Call, authenticate, read_json

__all__ = ["create_qualytics_app"]

Handler = Callable[[Call], Any]
PUBLIC, BODY = "public", "body"

# (method, path, handler, flags); order matters where a literal segment and a parameter overlap
_ROUTES: list[tuple[str, str, Handler, tuple[str, ...]]] = [
    ("GET", "/api/health", reads.health, (PUBLIC,)),
    ("GET", "/api/status", reads.status, (PUBLIC,)),
    ("GET", "/api/users/me", reads.me, ()),
    ("GET", "/api/datastores", reads.list_datastores, ()),
    ("GET", "/api/datastores/{id}", reads.get_datastore, ()),
    ("PUT", "/api/datastores/{id}", writes.put_datastore, (BODY,)),
    ("GET", "/api/containers", reads.list_containers, ()),
    ("PATCH", "/api/containers", writes.patch_containers, (BODY,)),
    ("GET", "/api/containers/listing", reads.container_listing, ()),
    ("GET", "/api/containers/{id}", reads.get_container, ()),
    ("GET", "/api/containers/{id}/fields", reads.container_fields, ()),
    ("GET", "/api/containers/{id}/field-profiles", reads.field_profiles, ()),
    ("GET", "/api/field-profiles", reads.list_field_profiles, ()),
    ("GET", "/api/fields", reads.list_fields, ()),
    ("PATCH", "/api/fields", writes.patch_fields, (BODY,)),
    ("GET", "/api/fields/listing", reads.field_listing, ()),
    ("GET", "/api/fields/{id}", reads.get_field, ()),
    ("PUT", "/api/fields/{id}", writes.put_field, (BODY,)),
    ("GET", "/api/quality-checks", reads.list_checks, ()),
    ("GET", "/api/quality-checks/{id}", reads.get_check, ()),
    ("GET", "/api/anomalies", reads.list_anomalies, ()),
    ("PATCH", "/api/anomalies", writes.patch_anomalies, (BODY,)),
    ("DELETE", "/api/anomalies", writes.delete_anomalies, (BODY,)),
    ("GET", "/api/anomalies/{id}", reads.get_anomaly, ()),
    ("PUT", "/api/anomalies/{id}", writes.put_anomaly, (BODY,)),
    ("DELETE", "/api/anomalies/{id}", writes.delete_anomaly, ()),
    ("GET", "/api/global-tags", tags.list_tags, ()),
    ("POST", "/api/global-tags", tags.create_tag, (BODY,)),
    ("GET", "/api/global-tags/listing", tags.tag_listing, ()),
    ("GET", "/api/global-tags/{name:path}", tags.get_tag, ()),
    ("PUT", "/api/global-tags/{name:path}", tags.update_tag, (BODY,)),
    ("DELETE", "/api/global-tags/{name:path}", tags.delete_tag, ()),
    ("GET", "/api/integrations", reads.list_integrations, ()),
    ("GET", "/api/integrations/{id}", reads.get_integration, ()),
]


def create_qualytics_app(world: Any) -> Starlette:
    """The Qualytics API over `world` (anything with `.qualytics` and `.lock`)."""
    routes = []
    for method, path, handler, flags in _ROUTES:
        endpoint = _endpoint(world, handler, public=PUBLIC in flags, body=BODY in flags)
        routes.append(Route(path, endpoint, methods=[method]))
        if not path.endswith(":path}"):  # a path parameter already takes a trailing slash
            routes.append(Route(path + "/", endpoint, methods=[method]))
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


def _endpoint(world: Any, handler: Handler, *, public: bool, body: bool) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            user = None if public else authenticate(world.qualytics, request)
            data = await read_json(request) if body else None
            with world.lock:
                result = handler(Call(world.qualytics, request, user, data))
                return result if isinstance(result, Response) else JSONResponse(result)
        except ApiProblem as problem:
            return JSONResponse({"detail": problem.detail}, status_code=problem.status, headers=problem.headers)
        except WorldError as exc:  # a write the store refused that the handler did not foresee
            return JSONResponse({"detail": str(exc)}, status_code=422)

    endpoint.__name__ = handler.__name__
    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    """Router errors (unknown path 404, wrong method 405) as FastAPI's `{"detail": ...}`."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
