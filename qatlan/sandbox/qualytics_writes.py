"""Write endpoints of the sandbox Qualytics API: tags on assets, anomaly status, global tags.

Bodies are validated with pydantic like FastAPI does (422 lists). A write either fully applies
or changes nothing: every id and tag name is checked before the first record changes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.responses import Response

from qatlan.sandbox import qualytics_views as views
from qatlan.sandbox.qualytics_http import Call, not_found, parse_body, tag_not_found
from qatlan.sandbox.qualytics_reads import anomaly_by_key
from qatlan.sandbox.qualytics_store import QualyticsStore

OpenStatus = Literal["Active", "Acknowledged"]
ARCHIVED_STATUSES = ("Resolved", "Invalid", "Duplicate", "Discarded")
ArchivedStatus = Literal["Resolved", "Invalid", "Duplicate", "Discarded"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DatastoreUpdate(_Body):
    # deliberate simplification: the real PUT is a full update; the sandbox takes a partial body
    name: str | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=8000)
    tags: list[str] | None = None


class ContainerPatch(_Body):
    id: int | str
    tags: list[str] | None = None
    description: str | None = None
    display_name: str | None = None


class FieldUpdate(_Body):
    name: str | None = Field(None, min_length=1)
    tags: list[str] | None = None


class FieldPatch(_Body):
    id: int
    tags: list[str] | None = None


class AnomalyUpdate(_Body):
    status: OpenStatus
    description: str | None = None
    tags: list[str] | None = None
    assignee_ids: list[int] | None = None


class AnomalyPatch(_Body):
    id: int | str
    status: OpenStatus | None = None
    description: str | None = None
    tags: list[str] | None = None
    assignee_ids: list[int] | None = None


class AnomalyDelete(_Body):
    id: int | str
    archive: bool = True
    status: ArchivedStatus | None = None


_DATASTORE_UPDATE = TypeAdapter(DatastoreUpdate)
_CONTAINER_PATCH = TypeAdapter(list[ContainerPatch])
_FIELD_UPDATE = TypeAdapter(FieldUpdate)
_FIELD_PATCH = TypeAdapter(list[FieldPatch])
_ANOMALY_UPDATE = TypeAdapter(AnomalyUpdate)
_ANOMALY_PATCH = TypeAdapter(list[AnomalyPatch])
_ANOMALY_DELETE = TypeAdapter(list[AnomalyDelete])
#: UNCONFIRMED: the status an archiving DELETE without `status` sets
DEFAULT_ARCHIVE_STATUS = "Resolved"


def _tag_names(store: QualyticsStore, names: list[str] | None) -> list[str] | None:
    """Tag names deduplicated in order; 404 for the first unknown one."""
    if names is None:
        return None
    for name in names:
        if store.get("global_tags", name) is None:
            raise tag_not_found(name)
    return list(dict.fromkeys(names))


def _changes(body: BaseModel, store: QualyticsStore, keys: tuple[str, ...]) -> dict[str, Any]:
    """The keys the client sent (among `keys`), with tag names checked."""
    out = {k: getattr(body, k) for k in keys if k in body.model_fields_set}
    if "tags" in out:
        out["tags"] = _tag_names(store, out["tags"]) or []
    return out


def put_datastore(call: Call) -> dict[str, Any]:
    store = call.store
    ds_id = call.path_int()
    if store.get("datastores", ds_id) is None:
        raise not_found("Datastore", ds_id)
    body = parse_body(_DATASTORE_UPDATE, call.body)
    values = _changes(body, store, ("name", "description", "tags"))
    values = {k: v for k, v in values.items() if not (k == "name" and v is None)}
    updated = store.update("datastores", ds_id, values) if values else store.get("datastores", ds_id)
    return views.datastore(store, updated)


def patch_containers(call: Call) -> list[dict[str, Any]]:
    store = call.store
    items = parse_body(_CONTAINER_PATCH, call.body)
    planned = []
    for item in items:
        key = int(item.id) if isinstance(item.id, str) and item.id.strip().isdigit() else item.id
        if store.get("containers", key) is None:
            raise not_found("Container", item.id)
        planned.append((key, _changes(item, store, ("tags", "description", "display_name"))))
    done = [store.update("containers", key, values) if values else store.get("containers", key)
            for key, values in planned]
    return [views.container(store, c) for c in done]


def put_field(call: Call) -> dict[str, Any]:
    store = call.store
    field_id = call.path_int()
    if store.get("fields", field_id) is None:
        raise not_found("Field", field_id)
    values = _changes(parse_body(_FIELD_UPDATE, call.body), store, ("name", "tags"))
    values = {k: v for k, v in values.items() if not (k == "name" and v is None)}
    updated = store.update("fields", field_id, values) if values else store.get("fields", field_id)
    return views.field(store, updated)


def patch_fields(call: Call) -> list[dict[str, Any]]:
    store = call.store
    planned = []
    for item in parse_body(_FIELD_PATCH, call.body):
        if store.get("fields", item.id) is None:
            raise not_found("Field", item.id)
        planned.append((item.id, _changes(item, store, ("tags",))))
    done = [store.update("fields", key, values) if values else store.get("fields", key) for key, values in planned]
    return [views.field(store, f) for f in done]


def _anomaly_values(store: QualyticsStore, body: BaseModel) -> dict[str, Any]:
    values = _changes(body, store, ("status", "description", "tags", "assignee_ids"))
    values.pop("assignee_ids", None)  # the sandbox has no users to assign
    if values.get("status") is None:
        values.pop("status", None)
    return values


def put_anomaly(call: Call) -> dict[str, Any]:
    store = call.store
    key = call.request.path_params["id"]
    found = anomaly_by_key(store, key)
    if found is None:
        raise not_found("Anomaly", key)
    values = _anomaly_values(store, parse_body(_ANOMALY_UPDATE, call.body))
    # UNCONFIRMED: an archived anomaly may be reopened (set Active/Acknowledged) with PUT/PATCH
    return views.anomaly(store, store.update("anomalies", found["id"], values), detail=True)


def patch_anomalies(call: Call) -> list[dict[str, Any]]:
    store = call.store
    planned = []
    for item in parse_body(_ANOMALY_PATCH, call.body):
        found = anomaly_by_key(store, item.id)
        if found is None:
            raise not_found("Anomaly", item.id)
        planned.append((found["id"], _anomaly_values(store, item)))
    done = [store.update("anomalies", key, values) if values else store.get("anomalies", key)
            for key, values in planned]
    return [views.anomaly(store, a, detail=True) for a in done]


def _archive_or_remove(store: QualyticsStore, anomaly_id: int, archive: bool, status: str | None) -> None:
    if archive:
        store.update("anomalies", anomaly_id, {"status": status or DEFAULT_ARCHIVE_STATUS})
    else:
        store.delete("anomalies", anomaly_id)


def delete_anomaly(call: Call) -> Response:
    q, store = call.query, call.store
    key = call.request.path_params["id"]
    archive = q.boolean("archive", True)
    status = q.choice("status", ARCHIVED_STATUSES)
    q.done()
    found = anomaly_by_key(store, key)
    if found is None:
        raise not_found("Anomaly", key)
    _archive_or_remove(store, found["id"], bool(archive), status)
    return Response(status_code=204)


def delete_anomalies(call: Call) -> Response:
    store = call.store
    planned = []
    for item in parse_body(_ANOMALY_DELETE, call.body):
        found = anomaly_by_key(store, item.id)
        if found is None:
            raise not_found("Anomaly", item.id)
        planned.append((found["id"], item.archive, item.status))
    for anomaly_id, archive, status in planned:
        if store.get("anomalies", anomaly_id) is not None:
            _archive_or_remove(store, anomaly_id, archive, status)
    return Response(status_code=204)
