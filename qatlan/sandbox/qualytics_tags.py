"""The `/api/global-tags` endpoints of the sandbox Qualytics API (reference §7).

Tags are addressed by name (URL-encoded in the path). Two sandbox choices stand in for what
the reference does not say (both UNCONFIRMED):

- `POST /api/global-tags` with `{"type": "external", "integration_id": N, ...}` creates an
  external tag owned by integration N, as a catalog pull would.
- `PUT /api/global-tags/{name}` with `{"type": "external", "integration_id": N}` on a global
  tag converts it into an external tag of integration N and keeps its asset links: the
  "Overwrite Tags" rule of a pull (reference §8.3). Colour, description, category and weight
  may be sent along.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.responses import JSONResponse, Response

from qatlan.sandbox import qualytics_views as views
from qatlan.sandbox.qualytics_http import ApiProblem, Call, error_item, not_found, page_of, parse_body, tag_not_found

TagType = Literal["global", "entity", "lineage", "external"]
_DESCRIPTIVE = ("color", "description", "category", "weight_modifier")


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: TagType = "global"
    name: str = Field(min_length=1)
    color: str | None = None
    description: str | None = None
    category: str | None = None
    weight_modifier: int = Field(0, ge=-10, le=10)
    integration_id: int | None = None


class TagUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: TagType
    name: str | None = Field(None, min_length=1)
    color: str | None = None
    description: str | None = None
    category: str | None = None
    weight_modifier: int | None = Field(None, ge=-10, le=10)
    integration_id: int | None = None


_CREATE = TypeAdapter(TagCreate)
_UPDATE = TypeAdapter(TagUpdate)


def tag_name(call: Call) -> str:
    """The tag name from the URL, decoded once (so `%2F` in a name survives routing)."""
    raw = call.request.scope.get("raw_path")
    marker = "/global-tags/"
    if raw:
        text = raw.decode("latin-1")
        if marker in text:
            return unquote(text.split(marker, 1)[1].rstrip("/"), encoding="utf-8")
    return str(call.request.path_params["name"]).rstrip("/")


def existing_tag(call: Call) -> dict[str, Any]:
    name = tag_name(call)
    tag = call.store.get("global_tags", name)
    if tag is None:
        raise tag_not_found(name)
    return tag


def list_tags(call: Call) -> dict[str, Any]:
    page, size = call.query.paging()
    call.query.done()
    return page_of(call.store.all("global_tags"), page, size, lambda t: views.full_tag(call.store, t))


def tag_listing(call: Call) -> list[dict[str, Any]]:
    return [views.full_tag(call.store, t) for t in call.store.all("global_tags")]


def get_tag(call: Call) -> dict[str, Any]:
    return views.full_tag(call.store, existing_tag(call))


def _missing(key: str) -> ApiProblem:
    return ApiProblem(422, [error_item(["body", key], "missing", "Field required", None)])


def _conflict(name: str) -> ApiProblem:
    # UNCONFIRMED: the 409 wording for a duplicate tag name
    return ApiProblem(409, f"Global tag '{name}' already exists")


def _integration_id(call: Call, body: BaseModel) -> int:
    integration_id = getattr(body, "integration_id", None)
    if integration_id is None:
        raise _missing("integration_id")
    if call.store.get("integrations", integration_id) is None:
        raise not_found("Integration", integration_id)
    return integration_id


def create_tag(call: Call) -> JSONResponse:
    store = call.store
    body = parse_body(_CREATE, call.body)
    integration_id = _integration_id(call, body) if body.type == "external" else None
    if store.get("global_tags", body.name) is not None:
        raise _conflict(body.name)
    record = {"name": body.name, "type": body.type, "integration_id": integration_id,
              **{key: getattr(body, key) for key in _DESCRIPTIVE}}
    created = store.add("global_tags", record)
    # UNCONFIRMED: 200 (FastAPI's default) rather than 201 for a created tag
    return JSONResponse(views.full_tag(store, created))


def _sent(body: BaseModel, keys: tuple[str, ...]) -> dict[str, Any]:
    values = {k: getattr(body, k) for k in keys if k in body.model_fields_set}
    if values.get("weight_modifier", 0) is None:
        values["weight_modifier"] = 0
    return values


def _update_values(call: Call, tag: dict[str, Any], body: TagUpdate) -> dict[str, Any]:
    if tag["type"] == "external":
        if body.type != "external":
            raise ApiProblem(422, [error_item(["body", "type"], "literal_error", "Input should be 'external'",
                                              body.type, {"expected": "'external'"})])
        return _sent(body, ("category", "weight_modifier"))  # UpdateExternalTag allows only these
    if body.type == "external":
        return {"type": "external", "integration_id": _integration_id(call, body), **_sent(body, _DESCRIPTIVE)}
    if body.name is None:
        raise _missing("name")
    if body.name != tag["name"] and call.store.get("global_tags", body.name) is not None:
        raise _conflict(body.name)
    return {"type": body.type, "name": body.name, **_sent(body, _DESCRIPTIVE)}


def update_tag(call: Call) -> dict[str, Any]:
    """PUT: omitted optional keys stay as they are (sandbox choice for a PUT)."""
    tag = existing_tag(call)
    values = _update_values(call, tag, parse_body(_UPDATE, call.body))
    updated = call.store.update("global_tags", tag["name"], values) if values else tag
    return views.full_tag(call.store, updated)


def delete_tag(call: Call) -> Response:
    """DELETE: the tag goes, and is detached from every asset that carried it."""
    tag = existing_tag(call)
    call.store.delete("global_tags", tag["name"])
    return Response(status_code=204)
