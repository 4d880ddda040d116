"""Read endpoints of the sandbox Qualytics API (reference §1.3, §3-§8).

Each handler takes a `Call` (store already taken under the world lock, user authenticated)
and returns a JSON-able value or a Response. Lists start from the narrowest index (ids,
datastore, container), filter in id order, sort only when asked, and render only one page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.responses import Response

from qatlan.sandbox import qualytics_views as views
from qatlan.sandbox.qualytics_http import ApiProblem, Call, not_found, page_of, sort_rows
from qatlan.sandbox.qualytics_store import QualyticsStore, is_archived_anomaly, is_archived_check
from qatlan.sandbox.qualytics_validate import ANOMALY_STATUSES, ANOMALY_TYPES, CHECK_STATUSES, FIELD_STATUSES

Row = dict[str, Any]
Pred = Callable[[Row], bool]
ARCHIVED = ("include", "only")
CONTAINER_FILTER_TYPES = ("table", "view", "file", "computed_table", "computed_file", "computed_join")
#: UNCONFIRMED: which field statuses field-profiles lists by default (the sandbox: as /containers/{id}/fields)
DEFAULT_FIELD_STATUSES = ("active", "missing")


def health(call: Call) -> Response:
    return Response(status_code=204)


def status(call: Call) -> dict[str, str]:
    return {"database_connection": "OK", "rabbitmq_connection": "OK"}


def me(call: Call) -> dict[str, Any]:
    assert call.user is not None
    return views.user(call.user)


# ----- helpers ---------------------------------------------------------------------------


def _contains(value: Any, needle: str) -> bool:
    # UNCONFIRMED: `name` / `search` filters match case-insensitive substrings
    return isinstance(value, str) and needle.lower() in value.lower()


def _select(rows: Iterable[Row], preds: list[Pred]) -> list[Row]:
    return [r for r in rows if all(p(r) for p in preds)]


def _tagged(tags: set[str]) -> Pred:
    # UNCONFIRMED: several tag= values match assets carrying any of them (direct tags only)
    return lambda r: not tags.isdisjoint(r.get("tags") or ())


def _ordered(call: Call, rows: list[Row], keys: dict[str, Callable[[Row], Any]]) -> list[Row]:
    sort = call.query.sort(tuple(keys))
    call.query.done()
    return sort_rows(rows, keys[sort[0]], sort[1]) if sort else rows


def _under(store: QualyticsStore, kind: str, parent_ids: Iterable[int]) -> list[Row]:
    rows = [r for pid in set(parent_ids) for r in store.under(kind, pid)]
    return sorted(rows, key=lambda r: r["id"])


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _record(store: QualyticsStore, kind: str, label: str, key: Any) -> Row:
    rec = store.get(kind, key)
    if rec is None:
        raise not_found(label, key)
    return rec


# ----- datastores ------------------------------------------------------------------------


def _datastore_keys(store: QualyticsStore) -> dict[str, Callable[[Row], Any]]:
    def count(key: str) -> Callable[[Row], Any]:
        return lambda d: store.datastore_counts(d["id"])[key]

    return {"id": lambda d: d["id"], "name": lambda d: d["name"].lower(), "created": lambda d: d.get("created"),
            "datastore_type": lambda d: d["type"], "favorite": lambda d: False, "group": lambda d: None,
            "containers": count("containers"), "records": count("records"),
            "active_checks": count("active_checks"), "active_anomalies": count("active_anomalies")}


def list_datastores(call: Call) -> dict[str, Any]:
    q, store = call.query, call.store
    page, size = q.paging()
    ids, types, tags = set(q.integers("id")), set(q.texts("datastore_type")), set(q.texts("tag"))
    name, search = q.text("name"), q.text("search")
    # UNCONFIRMED: enrichment_only=false (the default) lists only datastores that are not enrichment-only
    enrichment = q.boolean("enrichment_only", False)
    preds: list[Pred] = [lambda d: bool(d.get("enrichment_only")) == enrichment]
    if ids:
        preds.append(lambda d: d["id"] in ids)
    if types:
        preds.append(lambda d: d["type"] in types)
    if tags:
        preds.append(_tagged(tags))
    if name:
        preds.append(lambda d: _contains(d["name"], name))
    if search:
        preds.append(lambda d: any(_contains(d.get(k), search) for k in ("name", "database", "schema", "host")))
    rows = _ordered(call, _select(store.all("datastores"), preds), _datastore_keys(store))
    return page_of(rows, page, size, lambda d: views.datastore(store, d))


def get_datastore(call: Call) -> dict[str, Any]:
    return views.datastore(call.store, _record(call.store, "datastores", "Datastore", call.path_int()))


# ----- containers ------------------------------------------------------------------------


def _container_kind(c: Row) -> str:
    if c["container_type"] == "table" and c.get("table_type") == "view":
        return "view"
    return c["container_type"]


def _archived_pred(archived: str | None, is_archived: Pred) -> Pred:
    if archived == "include":
        return lambda r: True
    if archived == "only":
        return is_archived
    return lambda r: not is_archived(r)


def _container_keys(store: QualyticsStore) -> dict[str, Callable[[Row], Any]]:
    def count(key: str) -> Callable[[Row], Any]:
        return lambda c: store.container_counts(c["id"])[key]

    def score(c: Row) -> Any:
        return (c.get("quality_score") or {}).get("total")

    return {"id": lambda c: c["id"], "favorite": lambda c: False, "created": lambda c: c.get("created"),
            "name": lambda c: c["name"].lower(), "records": lambda c: c.get("records"), "fields": count("fields"),
            "active_checks": count("active_checks"), "active_anomalies": count("active_anomalies"),
            "completeness": lambda c: c.get("completeness"), "container_type": _container_kind,
            "quality_score": score, "last_profiled": lambda c: c.get("last_profiled"),
            "last_scanned": lambda c: c.get("last_scanned"), "purpose": lambda c: c.get("purpose")}


def _container_rows(call: Call) -> list[Row]:
    q, store = call.query, call.store
    ids, datastores = set(q.integers("id")), set(q.integers("datastore"))
    tags, types = set(q.texts("tag")), set(q.choices("container_type", CONTAINER_FILTER_TYPES))
    name, search = q.text("name"), q.text("search")
    preds: list[Pred] = [_archived_pred(q.choice("archived", ARCHIVED), lambda c: bool(c.get("deleted_at")))]
    if ids:
        source = [c for c in (store.get("containers", i) for i in sorted(ids)) if c is not None]
    elif datastores:
        source = _under(store, "containers", datastores)
    else:
        source = store.all("containers")
    if datastores:
        preds.append(lambda c: c["datastore_id"] in datastores)
    if tags:
        preds.append(_tagged(tags))
    if types:
        preds.append(lambda c: _container_kind(c) in types)
    if name:
        preds.append(lambda c: _contains(c["name"], name))
    if search:
        preds.append(lambda c: _contains(c["name"], search) or _contains(c.get("display_name"), search))
    return _select(source, preds)


def list_containers(call: Call) -> dict[str, Any]:
    store = call.store
    page, size = call.query.paging()
    rows = _ordered(call, _container_rows(call), _container_keys(store))
    return page_of(rows, page, size, lambda c: views.container(store, c))


def container_listing(call: Call) -> list[dict[str, Any]]:
    """`GET /api/containers/listing`: bare array of light items (live containers)."""
    q, store = call.query, call.store
    datastores = set(q.integers("datastore"))
    q.done()
    rows = _under(store, "containers", datastores) if datastores else store.all("containers")
    out = []
    for c in rows:
        if c.get("deleted_at"):
            continue
        ds = store.get("datastores", c["datastore_id"]) or {}
        stub = views.container_stub(c)
        lite = {k: ds.get(k) for k in ("id", "name", "store_type", "type", "description")}
        lite["enrichment_only"] = bool(ds.get("enrichment_only"))
        out.append({**stub, "datastore": lite, "favorite": False, "was_profiled": c.get("last_profiled") is not None})
    return out


def get_container(call: Call) -> dict[str, Any]:
    c = _record(call.store, "containers", "Container", call.path_int())
    return views.container(call.store, c, detail=True)


def container_fields(call: Call) -> list[dict[str, Any]]:
    store = call.store
    c = _record(store, "containers", "Container", call.path_int())
    return [views.field(store, f) for f in store.under("fields", c["id"])
            if not f.get("deleted_at") and f.get("status", "active") in ("active", "missing")]


def _field_profile_keys(store: QualyticsStore) -> dict[str, Callable[[Row], Any]]:
    def count(i: int) -> Callable[[Row], Any]:
        return lambda f: store.field_counts(f["container_id"]).get(f["name"], (0, 0))[i]

    return {"name": lambda f: f["name"].lower(), "created": lambda f: f.get("created"),
            "type": lambda f: f.get("type"), "active_checks": count(0), "active_anomalies": count(1),
            "completeness": lambda f: f.get("completeness"),
            "quality_score": lambda f: (f.get("quality_score") or {}).get("total")}


def _field_profile_page(call: Call, source: list[Row], preds: list[Pred]) -> dict[str, Any]:
    """A page of field profiles from `source`, after the filters both field-profile routes take.

    Those are `name`, `type[]`, `tag[]`, `status[]` and the `sort_*` keys; deleted fields are
    never listed. `preds` are the caller's own filters, applied after these.
    """
    q, store = call.query, call.store
    page, size = q.paging()
    name, types, tags = q.text("name"), set(q.texts("type")), set(q.texts("tag"))
    statuses = set(q.choices("status", FIELD_STATUSES)) or set(DEFAULT_FIELD_STATUSES)
    shared: list[Pred] = [lambda f: not f.get("deleted_at") and f.get("status", "active") in statuses]
    if name:
        shared.append(lambda f: _contains(f["name"], name))
    if types:
        shared.append(lambda f: f.get("type", "Unknown") in types)
    if tags:
        shared.append(_tagged(tags))
    rows = _ordered(call, _select(source, shared + preds), _field_profile_keys(store))
    return page_of(rows, page, size, lambda f: views.field_profile(store, f))


def field_profiles(call: Call) -> dict[str, Any]:
    """`GET /api/containers/{id}/field-profiles`: the field profiles of one container."""
    c = _record(call.store, "containers", "Container", call.path_int())
    return _field_profile_page(call, call.store.under("fields", c["id"]), [])


def list_field_profiles(call: Call) -> dict[str, Any]:
    """`GET /api/field-profiles`: field profiles across the deployment, by datastore[] / container[].

    Fields of archived containers are not listed (as `GET /api/containers` hides those).
    """
    q, store = call.query, call.store
    source, preds = _scoped_rows(call, "fields")
    # accepted and validated, but ignored: sandbox fields carry no parent_field_id (served as null)
    q.integer("parent_field_id")
    # accepted and validated; every sandbox field has exactly one profile, so it changes nothing
    q.boolean("latest_only")
    preds.append(lambda f: not (store.get("containers", f["container_id"]) or {}).get("deleted_at"))
    return _field_profile_page(call, source, preds)


# ----- fields ----------------------------------------------------------------------------


def list_fields(call: Call) -> dict[str, Any]:
    q, store = call.query, call.store
    page, size = q.paging()
    container_id, name = q.integer("container_id"), q.text("name")
    q.done()
    source = store.under("fields", container_id) if container_id is not None else store.all("fields")
    preds: list[Pred] = [lambda f: not f.get("deleted_at")]
    if name:
        preds.append(lambda f: _contains(f["name"], name))
    return page_of(_select(source, preds), page, size, lambda f: views.field(store, f))


def field_listing(call: Call) -> list[dict[str, Any]]:
    q, store = call.query, call.store
    container_id, name = q.integer("container_id"), q.text("name")
    q.done()
    source = store.under("fields", container_id) if container_id is not None else store.all("fields")
    return [{"name": f["name"], "display_name": f.get("display_name")} for f in source
            if not f.get("deleted_at") and (not name or _contains(f["name"], name))]


def get_field(call: Call) -> dict[str, Any]:
    return views.field(call.store, _record(call.store, "fields", "Field", call.path_int()))


# ----- quality checks --------------------------------------------------------------------


def _scoped_rows(call: Call, kind: str) -> tuple[list[Row], list[Pred]]:
    """Checks, anomalies or fields limited by container[] / datastore[], and the matching predicates."""
    q, store = call.query, call.store
    containers, datastores = set(q.integers("container")), set(q.integers("datastore"))
    preds: list[Pred] = []
    if containers:
        source = _under(store, kind, containers)
    elif datastores:
        source = _under(store, kind, (c["id"] for d in datastores for c in store.under("containers", d)))
    else:
        source = store.all(kind)
    if containers and datastores:
        in_scope = {c["id"] for d in datastores for c in store.under("containers", d)}
        preds.append(lambda r: r["container_id"] in in_scope)
    return source, preds


def _check_keys(store: QualyticsStore) -> dict[str, Callable[[Row], Any]]:
    return {"id": lambda c: c["id"], "favorite": lambda c: False, "weight": lambda c: c.get("weight", 0),
            "created": lambda c: c.get("created"), "coverage": lambda c: c.get("coverage", 1.0),
            "active_anomalies": lambda c: store.check_anomaly_counts(c["id"])[1],
            "rule": lambda c: c["rule_type"], "last_asserted": lambda c: c.get("last_asserted")}


def list_checks(call: Call) -> dict[str, Any]:
    q, store = call.query, call.store
    page, size = q.paging()
    source, preds = _scoped_rows(call, "checks")
    ids, tags, rules = set(q.integers("id")), set(q.texts("tag")), set(q.texts("rule_type"))
    status_, search = q.choice("status", CHECK_STATUSES), q.text("search")
    # hidden unless archived=include|only: deleted_at set, or status Invalid/Discarded (reference §11.3)
    preds.append(_archived_pred(q.choice("archived", ARCHIVED), is_archived_check))
    if ids:
        preds.append(lambda c: c["id"] in ids)
    if tags:
        preds.append(_tagged(tags))
    if rules:
        preds.append(lambda c: c["rule_type"] in rules)
    if status_:
        preds.append(lambda c: c.get("status", "Active") == status_)
    if search:
        preds.append(lambda c: _contains(c.get("description"), search) or _contains(c["rule_type"], search))
    rows = _ordered(call, _select(source, preds), _check_keys(store))
    return page_of(rows, page, size, lambda c: views.check(store, c))


def get_check(call: Call) -> dict[str, Any]:
    return views.check(call.store, _record(call.store, "checks", "Quality Check", call.path_int()))


# ----- anomalies -------------------------------------------------------------------------


def anomaly_by_key(store: QualyticsStore, key: Any) -> Row | None:
    """An anomaly by integer id or uuid (bulk endpoints accept either)."""
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        return store.get("anomalies", int(key))
    found = store.anomaly_id_for_uuid(key) if isinstance(key, str) else None
    return store.get("anomalies", found) if found is not None else None


def list_anomalies(call: Call) -> dict[str, Any]:
    q, store = call.query, call.store
    page, size = q.paging()
    source, preds = _scoped_rows(call, "anomalies")
    keys = [anomaly_by_key(store, k) for k in q.texts("id")]
    statuses, tags = set(q.choices("status", ANOMALY_STATUSES)), set(q.texts("tag"))
    kind, checks, search = q.choice("anomaly_type", ANOMALY_TYPES), set(q.integers("quality_check")), q.text("search")
    # the CLI's logic (reference §6.2): archived statuses only come back with archived=only|include
    preds.append(_archived_pred(q.choice("archived", ARCHIVED), is_archived_anomaly))
    if q.texts("id"):
        wanted = {a["id"] for a in keys if a is not None}
        preds.append(lambda a: a["id"] in wanted)
    if statuses:
        preds.append(lambda a: a.get("status", "Active") in statuses)
    if tags:
        preds.append(_tagged(tags))
    if kind:
        preds.append(lambda a: a.get("type", "record") == kind)
    if checks:
        preds.append(lambda a: not checks.isdisjoint(a.get("check_ids") or ()))
    if search:
        preds.append(lambda a: any(_contains(a.get(k), search) for k in ("description", "message", "uuid")))
    sort_keys = {"id": lambda a: a["id"], "created": lambda a: a.get("created"), "weight": lambda a: a.get("weight", 0),
                 "anomalous_records_count": lambda a: a.get("anomalous_records_count")}
    rows = _ordered(call, _select(source, preds), sort_keys)
    return page_of(rows, page, size, lambda a: views.anomaly(store, a))


def get_anomaly(call: Call) -> dict[str, Any]:
    key = call.request.path_params["id"]
    found = anomaly_by_key(call.store, key)
    if found is None:
        raise not_found("Anomaly", key)
    return views.anomaly(call.store, found, detail=True)


# ----- integrations ----------------------------------------------------------------------


def _require_manager(call: Call) -> None:
    # integrations allow Admin and Manager only (reference §8.1); UNCONFIRMED: the 403 wording
    if (call.user or {}).get("role", "Member") not in ("Admin", "Manager"):
        raise ApiProblem(403, "Authorized Roles: Admin, Manager")


def list_integrations(call: Call) -> dict[str, Any]:
    _require_manager(call)
    page, size = call.query.paging()
    call.query.done()
    return page_of(call.store.all("integrations"), page, size, views.integration)


def get_integration(call: Call) -> dict[str, Any]:
    _require_manager(call)
    return views.integration(_record(call.store, "integrations", "Integration", call.path_int()))
