"""The sandbox Atlan API as an ASGI app (the `/api/meta/` subset of the reference, Appendix A).

`create_atlan_app(world)` serves the API routes only; rate limits, faults, request counts and
the `/_sandbox/` admin routes are wrapped around it elsewhere (`qatlan.sandbox.server`).
Every request reads the store as `world.atlan` (the world can be replaced) and runs under
`world.lock`. Every path answers with and without a trailing slash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.sandbox.atlan_bulk import (
    BulkFlags,
    bulk_delete,
    bulk_upsert,
    partial_update_by_qualified_name,
    unique_attribute_not_found,
)
from qatlan.sandbox.atlan_search import search
from qatlan.sandbox.atlan_store import (
    AtlanStore,
    AtlasApiError,
    bad_request,
    guid_not_found,
    invalid_parameters,
    not_authorized,
)
from qatlan.sandbox.atlan_typedefs import create_typedefs, delete_typedef, get_typedef, get_typedefs, update_typedefs
from qatlan.sandbox.atlan_views import classification_views, full_entity, search_response
from qatlan.sandbox.atlan_writes import (
    add_classifications,
    delete_classification,
    resolve_display_names,
    set_business_metadata,
    update_classifications,
)

__all__ = ["create_atlan_app"]

Persona = dict[str, Any]
Handler = Callable[[Request, AtlanStore, Persona, Any], Any]
META = "/api/meta"


def _error(exc: AtlasApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _authenticate(store: AtlanStore, request: Request) -> Persona:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    persona = store.persona_for_token(token) if scheme.lower() == "bearer" and token else None
    if persona is None:
        # UNCONFIRMED: Atlan's gateway 401 body; the Atlas error shape with Apache Atlas' code
        raise AtlasApiError(401, "ATLAS-401-00-001", "Authentication required: the Bearer API token is missing or not valid")
    return persona


async def _json_body(request: Request) -> Any:
    if request.method in ("GET", "HEAD"):
        return None
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def _endpoint(world: Any, handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await _json_body(request)
            with world.lock:
                store = world.atlan
                result = handler(request, store, _authenticate(store, request), body)
        except AtlasApiError as exc:
            return _error(exc)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    return endpoint


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


def _no_content() -> Response:
    return Response(status_code=204)


def _readable(store: AtlanStore, persona: Persona, guid: str) -> dict[str, Any]:
    ent = store.get(guid)
    if ent is None:
        raise guid_not_found(guid)
    if not store.allowed(persona, "read", ent):
        raise not_authorized(store.user_of(persona), f"read entity: guid={guid}")
    return ent


def _unique_qualified_name(request: Request) -> str:
    for key in ("attr:qualifiedName", "attr_qualifiedName"):
        value = request.query_params.get(key)
        if value:
            return value
    raise invalid_parameters("the unique attribute attr:qualifiedName is required")


def _entity_response(request: Request, store: AtlanStore, ent: dict[str, Any]) -> dict[str, Any]:
    ignore = _flag(request, "ignoreRelationships")
    return {"entity": full_entity(store, ent, ignore_relationships=ignore), "referredEntities": {}}


# ---- search and typedefs -----------------------------------------------------------------

def _search(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    _, hits, count = search(store, persona, body)
    return search_response(store, body, hits, count)


def _typedefs(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    allow = _flag(request, "allowDuplicateDisplayName")
    if request.method == "POST":
        return create_typedefs(store, persona, body, allow)
    if request.method == "PUT":
        return update_typedefs(store, persona, body, allow)
    return get_typedefs(store, request.query_params.getlist("type"))


def _typedef(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    name = request.path_params["name"]
    if request.method == "DELETE":
        delete_typedef(store, persona, name)
        return _no_content()
    return get_typedef(store, name)


# ---- entities ----------------------------------------------------------------------------

def _bulk(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    guids = request.query_params.getlist("guid")
    if request.method == "POST":
        return bulk_upsert(store, persona, body, BulkFlags.from_query(request.query_params))
    if request.method == "DELETE":
        return bulk_delete(store, persona, guids, request.query_params.get("deleteType", "SOFT"))
    if not guids:
        raise invalid_parameters("guid is required")
    ignore = _flag(request, "ignoreRelationships")
    entities = [_readable(store, persona, g) for g in guids]
    return {"entities": [full_entity(store, e, ignore_relationships=ignore) for e in entities], "referredEntities": {}}


def _entity(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    return _entity_response(request, store, _readable(store, persona, request.path_params["guid"]))


def _unique(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    type_name, qn = request.path_params["typeName"], _unique_qualified_name(request)
    if request.method == "PUT":
        return partial_update_by_qualified_name(store, persona, type_name, qn, body)
    ent = store.find(type_name, qn)
    if ent is None:
        raise unique_attribute_not_found(type_name, qn)
    return _entity_response(request, store, _readable(store, persona, ent["guid"]))


def _classifications(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    guid = request.path_params["guid"]
    if request.method == "POST":
        add_classifications(store, persona, guid, body)
        return _no_content()
    if request.method == "PUT":
        update_classifications(store, persona, guid, body)
        return _no_content()
    views = classification_views(store, _readable(store, persona, guid))
    return {"list": views, "startIndex": 0, "pageSize": len(views), "totalCount": len(views), "sortType": "NONE"}


def _classification(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    params = request.path_params
    associated = request.query_params.get("associatedEntityGuid")
    delete_classification(store, persona, params["guid"], params["name"], associated)
    return _no_content()


def _business_metadata(request: Request, store: AtlanStore, persona: Persona, body: Any) -> Any:
    guid, set_name = request.path_params["guid"], request.path_params.get("setName")
    incoming = {} if body is None else body
    remove = request.method == "DELETE"
    if request.url.path.rstrip("/").endswith("/businessmetadata/displayName"):
        incoming = resolve_display_names(store, incoming)
    overwrite = _flag(request, "isOverwrite")
    set_business_metadata(store, persona, guid, incoming, overwrite=overwrite, set_name=set_name, remove=remove)
    return _no_content()


# ---- the app -----------------------------------------------------------------------------

_ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/search/indexsearch", _search, ["POST"]),
    ("/types/typedefs", _typedefs, ["GET", "POST", "PUT"]),
    ("/types/typedef/name/{name}", _typedef, ["GET", "DELETE"]),
    ("/entity/bulk", _bulk, ["GET", "POST", "DELETE"]),
    ("/entity/guid/{guid}", _entity, ["GET"]),
    ("/entity/guid/{guid}/classifications", _classifications, ["GET", "POST", "PUT"]),
    ("/entity/guid/{guid}/classification/{name}", _classification, ["DELETE"]),
    ("/entity/guid/{guid}/businessmetadata", _business_metadata, ["POST", "DELETE"]),
    ("/entity/guid/{guid}/businessmetadata/displayName", _business_metadata, ["POST"]),
    ("/entity/guid/{guid}/businessmetadata/{setName}", _business_metadata, ["POST", "DELETE"]),
    ("/entity/uniqueAttribute/type/{typeName}", _unique, ["GET", "PUT"]),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 405:
        body = AtlasApiError(
            405, "ATLAS-405-00-001",
            f"Error 405 - The request method {request.method} is inappropriate for the URL: {request.url.path}",
        )
    else:
        body = AtlasApiError(status, "ATLAS-404-00-019", f"{request.url.path} not found")
    return _error(body)


def create_atlan_app(world: Any) -> Starlette:
    """The Atlan API routes over `world.atlan` (each with and without a trailing slash)."""
    routes = []
    for path, handler, methods in _ROUTES:
        endpoint = _endpoint(world, handler)
        for variant in (META + path, META + path + "/"):
            routes.append(Route(variant, endpoint, methods=methods))
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
