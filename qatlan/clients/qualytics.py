"""`QualyticsClient`: reading and writing the parts of the Qualytics API qatlan uses.

Paths are relative to the API root (`https://<deployment>.qualytics.io/api`, see
`qualytics_api_root`). List endpoints return the page envelope `{items,total,page,size,pages}`;
`paged` walks it with at most `ceil(total/size)` requests (one when the list is empty).
Converters to `qatlan.model` records live in `_qualytics_records` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from qatlan.clients._http import HttpClient, gather
from qatlan.clients._qualytics_records import (
    container_record,
    datastore_record,
    field_counts,
    field_record,
    tag_def_record,
    tags_of,
)
from qatlan.errors import NotFound

__all__ = [
    "QualyticsClient",
    "container_record",
    "datastore_record",
    "field_counts",
    "field_record",
    "qualytics_api_root",
    "tag_def_record",
    "tags_of",
]

#: the API's largest page (`size` above it is a 422)
MAX_PAGE_SIZE = 100
#: anomaly statuses that are archived: listing them needs `archived=only|include`
ARCHIVED_ANOMALY_STATUSES = frozenset({"Resolved", "Invalid", "Duplicate", "Discarded"})


def qualytics_api_root(url: str, api_path: str = "/api") -> str:
    """The API root for a deployment URL, as the Qualytics CLI builds it.

    Adds `https://` when no scheme is given and strips a trailing `/api` before adding
    `api_path` back (`""` for a local controlplane serving the API at the root).
    """
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if url.endswith("/api"):
        url = url[: -len("/api")]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}{api_path}".rstrip("/")


class QualyticsClient:
    """Qualytics over one `HttpClient`; `list_*` methods are async iterators of raw items."""

    def __init__(self, http: HttpClient, page_size: int = MAX_PAGE_SIZE, *, prefetch: int = 4):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.http = http
        self.page_size = page_size
        self.prefetch = max(1, prefetch)

    def __repr__(self) -> str:
        return f"QualyticsClient({self.http!r}, page_size={self.page_size})"

    # ----------------------------------------------------------------------- paging

    async def paged(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        path_params: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged list, in order.

        Page 1 tells how many pages there are; the rest are fetched `prefetch` at a time.
        Stops at `pages`, or at the first empty page.
        """
        base = dict(params or {})
        first = await self._page(path, base, path_params, 1)
        for item in first["items"]:
            yield item
        if not first["items"]:
            return
        page, pages = 2, first["pages"]
        while page <= pages:
            batch = range(page, min(pages, page + self.prefetch - 1) + 1)
            envelopes = await gather(*(self._page(path, base, path_params, p) for p in batch))
            for envelope in envelopes:
                if not envelope["items"]:
                    return
                for item in envelope["items"]:
                    yield item
            page = batch[-1] + 1

    async def _page(
        self, path: str, params: dict[str, Any], path_params: Mapping[str, Any] | None, page: int
    ) -> dict[str, Any]:
        data = await self.http.request(
            "GET", path, params={**params, "page": page, "size": self.page_size}, path_params=path_params
        )
        if (
            not isinstance(data, Mapping)
            or not isinstance(data.get("items"), list)
            or not isinstance(data.get("pages"), int)
        ):
            raise self.http.unexpected("GET", path, "a body that is not a page envelope {items, pages, ...}")
        return dict(data)

    async def _list(self, path: str, path_params: Mapping[str, Any] | None = None) -> list[Any]:
        data = await self.http.request("GET", path, path_params=path_params)
        if not isinstance(data, list):
            raise self.http.unexpected("GET", path, "a body that is not a JSON array")
        return data

    async def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        data = await self.http.request(method, path, **kwargs)
        if not isinstance(data, Mapping):
            raise self.http.unexpected(method, path, "a body that is not a JSON object")
        return dict(data)

    # ----------------------------------------------------------------------- reading

    async def me(self) -> dict[str, Any]:
        """The user behind the token (`GET /users/me`); a cheap token check."""
        return await self._object("GET", "/users/me")

    def list_datastores(self) -> AsyncIterator[dict[str, Any]]:
        return self.paged("/datastores")

    async def get_datastore(self, datastore_id: int) -> dict[str, Any]:
        try:
            return await self._object("GET", "/datastores/{id}", path_params={"id": datastore_id})
        except NotFound as exc:
            exc.hint = (
                f"Qualytics has no datastore {datastore_id} visible to this token; check the "
                f"datastore configured in qatlan.toml (ids are shown by `GET /api/datastores`)"
            )
            raise

    def list_containers(self, datastore_ids: Iterable[int]) -> AsyncIterator[dict[str, Any]]:
        """Tables, views, files and computed containers of the datastores; not archived ones.

        No datastore ids means no containers (not every container of the deployment).
        """
        ids = list(datastore_ids)
        if not ids:
            return _nothing()
        return self.paged("/containers", {"datastore": ids})

    async def get_container(self, container_id: int) -> dict[str, Any]:
        return await self._object("GET", "/containers/{id}", path_params={"id": container_id})

    async def container_fields(self, container_id: int) -> list[dict[str, Any]]:
        """The fields of a container (a bare array, active and missing ones)."""
        return await self._list("/containers/{id}/fields", {"id": container_id})

    def list_checks(
        self, datastore_id: int | None = None, container_id: int | None = None, status: str | None = "Active"
    ) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = _scope(datastore_id, container_id)
        if status is not None:
            params["status"] = status  # one CheckStatusType, not an array
        return self.paged("/quality-checks", params)

    def list_anomalies(
        self,
        datastore_id: int | None = None,
        container_id: int | None = None,
        statuses: Sequence[str] = ("Active",),
    ) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = _scope(datastore_id, container_id)
        if statuses:
            params["status"] = list(statuses)
            archived = {s in ARCHIVED_ANOMALY_STATUSES for s in statuses}
            if archived == {True}:
                params["archived"] = "only"
            elif archived == {True, False}:
                params["archived"] = "include"
        return self.paged("/anomalies", params)

    def list_global_tags(self) -> AsyncIterator[dict[str, Any]]:
        return self.paged("/global-tags")

    async def get_global_tag(self, name: str) -> dict[str, Any]:
        return await self._object("GET", "/global-tags/{name}", path_params={"name": name})

    def list_integrations(self) -> AsyncIterator[dict[str, Any]]:
        return self.paged("/integrations")

    # ----------------------------------------------------------------------- writing

    async def create_global_tag(
        self,
        name: str,
        type: str = "external",
        integration_id: int | None = None,
        description: str | None = None,
        color: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type, "name": name}
        if integration_id is not None:
            # UNCONFIRMED: the create-body key linking an external tag to its integration
            body["integration_id"] = integration_id
        if description is not None:
            body["description"] = description
        if color is not None:
            body["color"] = color
        return await self._object("POST", "/global-tags", json=body)

    async def update_global_tag(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._object("PUT", "/global-tags/{name}", json=dict(body), path_params={"name": name})

    async def patch_containers(self, items: Sequence[Mapping[str, Any]]) -> Any:
        """Bulk update `[{id, tags: [names]}]` (tags replace the container's tag list)."""
        return await self._bulk_patch("/containers", items)

    async def patch_fields(self, items: Sequence[Mapping[str, Any]]) -> Any:
        """Bulk update `[{id, tags: [names]}]` (tags replace the field's tag list)."""
        return await self._bulk_patch("/fields", items)

    async def _bulk_patch(self, path: str, items: Sequence[Mapping[str, Any]]) -> Any:
        if not items:
            return []
        return await self.http.request("PATCH", path, json=[dict(i) for i in items])

    async def update_datastore(self, datastore_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /datastores/{id}` (a full update: send the whole datastore body)."""
        return await self._object(
            "PUT", "/datastores/{id}", json=dict(body), path_params={"id": datastore_id}
        )


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    return
    yield  # pragma: no cover - makes this an async generator


def _scope(datastore_id: int | None, container_id: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if datastore_id is not None:
        params["datastore"] = [datastore_id]
    if container_id is not None:
        params["container"] = [container_id]
    return params
