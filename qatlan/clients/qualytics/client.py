"""`QualyticsClient`: reading and writing the parts of the Qualytics API qatlan uses.

Paths are relative to the API root (`https://<deployment>.qualytics.io/api`; qatlan.toml's
`[qualytics] url` is normalised to it). List endpoints return the page envelope `{items,total,page,size,pages}`;
`paged` walks it with at most `ceil(total/size)` requests (one when the list is empty).
Methods return `qatlan.model` records (converters in records.py); callers never see
Qualytics' JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from qatlan.clients.http import HttpClient, gather
from qatlan.clients.qualytics.records import (
    FieldKey,
    container_record,
    datastore_record,
    field_counts,
    field_record,
    tag_def_record,
    tags_of,
)
from qatlan.errors import NotFound
from qatlan.model import QContainer, QDatastore, QField, QTag, QTagDef

__all__ = ["MAX_PAGE_SIZE", "QualyticsClient"]

#: the API's largest page (`size` above it is a 422)
MAX_PAGE_SIZE = 100
#: datastore keys sent back on `PUT /datastores/{id}` besides `tags`
# UNCONFIRMED: the PUT is documented as a full update; these are the CreateJdbcDatastore keys
# a GET returns (the sandbox accepts a partial body)
_DATASTORE_KEYS = ("name", "connection_id", "database", "schema", "description", "enrichment_only",
                   "enrichment_prefix", "enrichment_source_record_limit",
                   "enrichment_remediation_strategy", "high_count_rollup_threshold")


class QualyticsClient:
    """Qualytics over one `HttpClient`; `list_*` methods are async iterators of raw items."""

    def __init__(self, http: HttpClient, page_size: int = MAX_PAGE_SIZE, *, prefetch: int = 4):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.http = http
        self.page_size = page_size
        self.prefetch = max(1, prefetch)
        self._datastore_bodies: dict[int, dict[str, Any]] = {}

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

    async def datastores(self) -> list[QDatastore]:
        """Every datastore the token can see."""
        return [datastore_record(d) async for d in self.paged("/datastores")]

    async def datastore(self, datastore_id: int) -> QDatastore:
        """One datastore (NotFound when the token cannot see it); its body is kept for
        `set_datastore_tags`, which must send it back whole."""
        try:
            item = await self._object("GET", "/datastores/{id}", path_params={"id": datastore_id})
        except NotFound as exc:
            exc.hint = (
                f"Qualytics has no datastore {datastore_id} visible to this token; check the "
                f"datastore configured in qatlan.toml (ids are shown by `GET /api/datastores`)"
            )
            raise
        self._datastore_bodies[datastore_id] = item
        return datastore_record(item)

    async def containers(self, datastore_ids: Iterable[int]) -> list[QContainer]:
        """Tables, views, files and computed containers of the datastores; not archived ones.

        No datastore ids means no containers (not every container of the deployment).
        """
        ids = list(datastore_ids)
        if not ids:
            return []
        return [container_record(c) async for c in self.paged("/containers", {"datastore": ids})]

    async def containers_by_id(self, container_ids: Iterable[int]) -> list[QContainer]:
        """The containers with these ids (100 ids per listing); ids not found are left out."""
        ids = sorted(set(container_ids))
        out: list[QContainer] = []
        for i in range(0, len(ids), MAX_PAGE_SIZE):
            out += [container_record(c) async for c in self.paged("/containers", {"id": ids[i:i + MAX_PAGE_SIZE]})]
        return out

    async def fields(self, container_id: int,
                     counts: Mapping[FieldKey, tuple[int, int]] | None = None) -> list[QField]:
        """The container's fields that are not deleted; active check and anomaly counts come
        from `counts` (`field_counts`), 0 for a field it does not name."""
        items = await self._list("/containers/{id}/fields", {"id": container_id})
        counts = counts or {}
        out = []
        for item in items:
            if item.get("deleted_at"):
                continue
            n_checks, n_anomalies = counts.get((container_id, str(item.get("name"))), (0, 0))
            out.append(field_record(item, container_id, n_checks, n_anomalies))
        return out

    async def field_counts(self, *, datastore_id: int | None = None, container_id: int | None = None,
                           checks: bool = True, anomalies: bool = True) -> dict[FieldKey, tuple[int, int]]:
        """`{(container_id, field name): (active checks, active anomalies)}` of a datastore's or
        a container's fields, from its Active checks and anomalies (see `field_counts` in
        records.py). `checks` / `anomalies` False skip that listing."""
        scope = _scope(datastore_id, container_id)
        found_checks = [x async for x in self.paged("/quality-checks", {**scope, "status": "Active"})] if checks else []
        found_anomalies = [x async for x in self.paged("/anomalies", {**scope, "status": ["Active"]})] if anomalies else []
        return field_counts(found_checks, found_anomalies)

    async def tagged_fields(self, datastore_ids: Iterable[int], tag: str) -> dict[int, tuple[QTag, ...]]:
        """{field id: its tags} of the fields of these datastores that carry `tag`: the
        deployment-wide field-profile listing (`GET /field-profiles`, latest profiles only),
        pages of `page_size` across whole datastores.

        UNCONFIRMED: the listing's items carry no container id (reference §5); callers map
        field ids to containers themselves.
        """
        ids = sorted(set(datastore_ids))
        if not ids:
            return {}
        params = {"datastore": ids, "tag": [tag], "latest_only": "true"}
        out: dict[int, tuple[QTag, ...]] = {}
        async for item in self.paged("/field-profiles", params):
            field = item.get("field") if isinstance(item.get("field"), Mapping) else None
            if field is not None and isinstance(field.get("id"), int):
                out[field["id"]] = tags_of(field)
        return out

    async def global_tags(self) -> list[QTagDef]:
        """Every tag Qualytics knows (global, external, ...), attached or not."""
        return [tag_def_record(t) async for t in self.paged("/global-tags")]

    async def tag(self, name: str) -> QTagDef | None:
        """The tag called `name`, or None when Qualytics has none."""
        try:
            return tag_def_record(await self._object("GET", "/global-tags/{name}", path_params={"name": name}))
        except NotFound:
            return None

    async def atlan_integrations(self) -> list[int]:
        """The ids of the Atlan integrations (external tags belong to one)."""
        return [int(i["id"]) async for i in self.paged("/integrations") if i.get("type") == "atlan"]

    # ----------------------------------------------------------------------- writing

    async def create_external_tag(self, name: str, integration_id: int | None,
                                  description: str | None = None) -> QTagDef:
        """A new external tag of the integration (not idempotent: a repeat is a 409)."""
        body: dict[str, Any] = {"type": "external", "name": name}
        if integration_id is not None:
            # UNCONFIRMED: the create-body key linking an external tag to its integration
            body["integration_id"] = integration_id
        if description is not None:
            body["description"] = description
        return tag_def_record(await self._object("POST", "/global-tags", json=body))

    async def make_external(self, name: str, integration_id: int) -> None:
        """Turn a tag into the integration's external tag; it keeps its asset links."""
        body = {"type": "external", "integration_id": integration_id}
        await self._object("PUT", "/global-tags/{name}", json=body, path_params={"name": name})

    async def set_container_tags(self, tags: Sequence[tuple[int, Sequence[str]]]) -> dict[int, tuple[QTag, ...]]:
        """Replace the tag lists of containers (`PATCH /containers`, one request); returns the
        tags each updated container now has."""
        return await self._set_tags("/containers", tags)

    async def set_field_tags(self, tags: Sequence[tuple[int, Sequence[str]]]) -> dict[int, tuple[QTag, ...]]:
        """Replace the tag lists of fields (`PATCH /fields`, one request); returns their tags."""
        return await self._set_tags("/fields", tags)

    async def _set_tags(self, path: str, tags: Sequence[tuple[int, Sequence[str]]]) -> dict[int, tuple[QTag, ...]]:
        if not tags:
            return {}
        answer = await self.http.request("PATCH", path, json=[{"id": i, "tags": list(t)} for i, t in tags])
        return {int(o["id"]): tags_of(o) for o in answer or () if isinstance(o, Mapping) and "id" in o}

    async def set_datastore_tags(self, datastore_id: int, tags: Sequence[str]) -> tuple[QTag, ...]:
        """Replace a datastore's tag list (`PUT /datastores/{id}`, a full update: the body last
        read by `datastore()` is sent back with the new tags); returns its tags."""
        current = self._datastore_bodies.get(datastore_id)
        if current is None:
            await self.datastore(datastore_id)
            current = self._datastore_bodies[datastore_id]
        body = {k: current[k] for k in _DATASTORE_KEYS if current.get(k) is not None}
        answer = await self._object("PUT", "/datastores/{id}", json={**body, "tags": list(tags)},
                                    path_params={"id": datastore_id})
        return tags_of(answer)


def _scope(datastore_id: int | None, container_id: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if datastore_id is not None:
        params["datastore"] = [datastore_id]
    if container_id is not None:
        params["container"] = [container_id]
    return params
