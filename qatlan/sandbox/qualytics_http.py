"""Request plumbing for the sandbox Qualytics API: errors, query parameters, bodies, paging.

Errors follow FastAPI (reference §1.6): `{"detail": "..."}` for 4xx, and for 422 a list of
`{"type", "loc", "msg", "input", "ctx"?}` items with pydantic's types and messages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request

from qatlan.sandbox.qualytics_store import QualyticsStore

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class ApiProblem(Exception):
    """An HTTP error answer: `{"detail": detail}` with this status."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def not_found(kind: str, key: Any) -> ApiProblem:
    # UNCONFIRMED: the exact 404 wording; modelled on "Container id: 10 has not been profiled"
    return ApiProblem(404, f"{kind} id: {key} not found")


def tag_not_found(name: str) -> ApiProblem:
    # UNCONFIRMED: wording (and status) for a write or lookup naming an unknown global tag
    return ApiProblem(404, f"Global tag '{name}' not found")


def error_item(loc: Sequence[Any], type_: str, msg: str, input_: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    item = {"type": type_, "loc": list(loc), "msg": msg, "input": input_}
    if ctx:
        item["ctx"] = ctx
    return item


def _expected(allowed: Sequence[str]) -> str:
    quoted = [f"'{a}'" for a in allowed]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def enum_error(loc: Sequence[Any], value: Any, allowed: Sequence[str]) -> dict[str, Any]:
    expected = _expected(allowed)
    return error_item(loc, "enum", f"Input should be {expected}", value, {"expected": expected})


class Query:
    """Reads query parameters, collecting FastAPI-style errors; `done()` raises them as one 422."""

    def __init__(self, request: Request):
        self._params = request.query_params
        self.errors: list[dict[str, Any]] = []

    def text(self, name: str) -> str | None:
        return self._params.get(name)

    def texts(self, name: str) -> list[str]:
        return self._params.getlist(name)

    def integer(self, name: str, default: int | None = None, *, ge: int | None = None,
                le: int | None = None) -> int | None:
        raw = self._params.get(name)
        return default if raw is None else self._parse_int(name, raw, ge, le)

    def integers(self, name: str) -> list[int]:
        values = [self._parse_int(name, raw, None, None) for raw in self._params.getlist(name)]
        return [v for v in values if v is not None]

    def _parse_int(self, name: str, raw: str, ge: int | None, le: int | None) -> int | None:
        try:
            value = int(raw.strip())
        except ValueError:
            self.errors.append(error_item(["query", name], "int_parsing",
                                          "Input should be a valid integer, unable to parse string as an integer", raw))
            return None
        if ge is not None and value < ge:
            self.errors.append(error_item(["query", name], "greater_than_equal",
                                          f"Input should be greater than or equal to {ge}", raw, {"ge": ge}))
            return None
        if le is not None and value > le:
            self.errors.append(error_item(["query", name], "less_than_equal",
                                          f"Input should be less than or equal to {le}", raw, {"le": le}))
            return None
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        raw = self._params.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.errors.append(error_item(["query", name], "bool_parsing",
                                      "Input should be a valid boolean, unable to interpret input", raw))
        return default

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> str | None:
        raw = self._params.get(name)
        if raw is None:
            return default
        if raw not in allowed:
            self.errors.append(enum_error(["query", name], raw, allowed))
            return default
        return raw

    def choices(self, name: str, allowed: Sequence[str]) -> list[str]:
        values = self._params.getlist(name)
        for raw in values:
            if raw not in allowed:
                self.errors.append(enum_error(["query", name], raw, allowed))
        return [v for v in values if v in allowed]

    def sort(self, keys: Sequence[str]) -> tuple[str, bool] | None:
        """The first `sort_<key>=asc|desc` parameter among `keys`: (key, descending)."""
        for name, raw in self._params.multi_items():
            if name.startswith("sort_") and name[5:] in keys:
                direction = self.choice(name, ("asc", "desc"))
                return (name[5:], direction == "desc") if direction else None
        return None

    def paging(self) -> tuple[int, int]:
        page = self.integer("page", 1, ge=1)
        size = self.integer("size", DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
        return page or 1, size or DEFAULT_PAGE_SIZE

    def done(self) -> None:
        if self.errors:
            raise ApiProblem(422, self.errors)


@dataclass
class Call:
    """One authenticated API request: the store (taken under the world lock), the body, the user."""

    store: QualyticsStore
    request: Request
    user: dict[str, Any] | None
    body: Any = None
    _query: Query | None = field(default=None, repr=False)

    @property
    def query(self) -> Query:
        if self._query is None:
            self._query = Query(self.request)
        return self._query

    def path_int(self, name: str = "id") -> int:
        raw = self.request.path_params[name]
        try:
            return int(raw)
        except ValueError:
            raise ApiProblem(422, [error_item(["path", name], "int_parsing",
                                              "Input should be a valid integer, unable to parse string as an integer",
                                              raw)]) from None


def authenticate(store: QualyticsStore, request: Request) -> dict[str, Any]:
    """The user behind `Authorization: Bearer <token>`, or a 401."""
    # UNCONFIRMED: the exact 401 bodies ("Not authenticated" / "Invalid token")
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiProblem(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    user = store.user_for_token(token)
    if user is None:
        raise ApiProblem(401, "Invalid token", {"WWW-Authenticate": "Bearer"})
    return user


async def read_json(request: Request) -> Any:
    """The JSON body; `...` (Ellipsis) when there is none; 422 `json_invalid` when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return ...
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        raise ApiProblem(422, [error_item(["body", pos], "json_invalid", "JSON decode error", {},
                                          {"error": getattr(exc, "msg", str(exc))})]) from None


def parse_body(adapter: TypeAdapter[Any], data: Any) -> Any:
    """Validate a body like FastAPI does (a missing body is `Field required` at `["body"]`)."""
    if data is ...:
        raise ApiProblem(422, [error_item(["body"], "missing", "Field required", None)])
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ApiProblem(422, [_fastapi_error(e) for e in exc.errors(include_url=False)]) from None


def _fastapi_error(err: Any) -> dict[str, Any]:
    ctx = err.get("ctx")
    if ctx:
        ctx = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in ctx.items()}
    return error_item(["body", *err["loc"]], err["type"], err["msg"], err.get("input"), ctx)


def sort_rows(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], descending: bool) -> list[dict[str, Any]]:
    """Sort by `key` (rows in id order stay in id order among equals); rows with no value go last."""
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    present.sort(key=key, reverse=descending)
    return present + missing


def page_of(rows: Sequence[Any], page: int, size: int, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The fastapi-pagination envelope; only the rows of the page are rendered."""
    total = len(rows)
    start = (page - 1) * size
    return {
        "items": [render(r) for r in rows[start:start + size]],
        "total": total,
        "page": page,
        "size": size,
        "pages": math.ceil(total / size) if total else 0,
    }
