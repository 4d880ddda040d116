"""QualyticsClient: paging, endpoints, converters to model records, field counts."""

from __future__ import annotations

import json
import math

import httpx
import pytest
import respx

from qatlan.clients import HttpClient, QualyticsClient
from qatlan.clients.qualytics import (
    container_record,
    datastore_record,
    field_counts,
    field_record,
)
from qatlan.errors import ApiResponseError, NotFound
from qatlan.model import QTag, QualityScore

pytestmark = pytest.mark.anyio

BASE = "https://acme.qualytics.example/api"
TOKEN = "q-token-0123456789"


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _no_sleep(seconds: float) -> None:
    return None


def client(page_size: int = 100, **kwargs) -> QualyticsClient:
    http = HttpClient("qualytics", BASE, TOKEN, sleep=_no_sleep, **kwargs)
    return QualyticsClient(http, page_size=page_size)


def paging_server(total: int, seen_sizes: list[int]):
    """A fastapi-pagination list of `total` items; 422 above size 100, like the real API."""

    def effect(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", 1))
        size = int(request.url.params.get("size", 50))
        seen_sizes.append(size)
        if size > 100 or size < 1 or page < 1:
            return httpx.Response(422, json={"detail": [{"loc": ["query", "size"], "msg": "bad"}]})
        items = [{"id": i} for i in range((page - 1) * size, min(total, page * size))]
        pages = math.ceil(total / size)
        return httpx.Response(200, json={"items": items, "total": total, "page": page, "size": size, "pages": pages})

    return effect


# --------------------------------------------------------------------------- paging


@pytest.mark.parametrize("page_size", [100, 7])
@pytest.mark.parametrize("total", [0, 1, 100, 101, 250])
async def test_paging_makes_exactly_ceil_total_over_size_requests(total, page_size):
    sizes: list[int] = []
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/datastores").mock(side_effect=paging_server(total, sizes))
        q = client(page_size)
        items = [i async for i in q.paged("/datastores")]
    assert [i["id"] for i in items] == list(range(total))
    assert route.call_count == max(1, math.ceil(total / page_size))
    assert set(sizes) == {page_size}  # never above 100, so never a 422
    pages = sorted(int(c.request.url.params["page"]) for c in route.calls)
    assert pages == list(range(1, route.call_count + 1))


def test_page_size_above_100_is_refused_before_any_request():
    with pytest.raises(ValueError, match="page_size must be 1..100"):
        client(101)


async def test_paging_stops_at_an_empty_page_even_if_pages_says_more():
    def effect(request):
        page = int(request.url.params["page"])
        items = [{"id": page}] if page == 1 else []
        return httpx.Response(200, json={"items": items, "total": 300, "page": page, "size": 100, "pages": 3})

    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/containers").mock(side_effect=effect)
        q = client()
        q.prefetch = 1
        items = [i async for i in q.paged("/containers", {"datastore": [1]})]
    assert items == [{"id": 1}]
    assert q.http.stats.count("GET", "/containers") == 2


async def test_a_body_that_is_not_a_page_envelope_is_a_response_error():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/integrations").respond(200, json=[{"id": 1}])
        with pytest.raises(ApiResponseError, match="GET /integrations"):
            await client().atlan_integrations()


# --------------------------------------------------------------------------- endpoints


def one_page(items):
    return httpx.Response(200, json={"items": items, "total": len(items), "page": 1, "size": 100, "pages": 1})


def container_item(cid: int, datastore: int = 3, tags=()):
    return {"id": cid, "name": f"T{cid}", "container_type": "table", "datastore": {"id": datastore},
            "global_tags": [{"name": t, "type": "global"} for t in tags], "metrics": {}}


async def test_containers_filter_by_datastores_and_never_send_archived():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/containers").mock(return_value=one_page([container_item(1)]))
        found = await client().containers([3, 4])
    params = route.calls.last.request.url.params
    assert params.get_list("datastore") == ["3", "4"] and "archived" not in params
    assert [(c.id, c.datastore_id, c.name) for c in found] == [(1, 3, "T1")]


async def test_containers_without_datastores_make_no_request():
    with respx.mock(base_url=BASE, assert_all_called=True):
        assert await client().containers([]) == []


async def test_containers_by_id_list_100_ids_per_request():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/containers").mock(
            side_effect=lambda r: one_page([container_item(int(i)) for i in r.url.params.get_list("id")]))
        found = await client().containers_by_id(range(150))
    assert [len(c.request.url.params.get_list("id")) for c in route.calls] == [100, 50]
    assert sorted(c.id for c in found) == list(range(150))


async def test_field_counts_list_active_checks_and_anomalies_of_the_scope():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        checks = router.get("/quality-checks").mock(return_value=one_page([check(1, 10, ["EMAIL"])]))
        anomalies = router.get("/anomalies").mock(side_effect=lambda r: one_page([]))
        q = client()
        assert await q.field_counts(datastore_id=5) == {(10, "EMAIL"): (1, 0)}
        assert await q.field_counts(container_id=9, checks=False) == {}
    check_params = checks.calls.last.request.url.params
    assert check_params.get_list("datastore") == ["5"] and check_params["status"] == "Active"
    assert checks.call_count == 1
    last = anomalies.calls.last.request.url.params
    assert last.get_list("container") == ["9"] and last.get_list("status") == ["Active"]
    assert "archived" not in last


async def test_fields_are_a_bare_array_without_the_deleted_ones_and_take_their_counts():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/containers/7/fields").respond(200, json=[
            {"id": 1, "name": "A"}, {"id": 2, "name": "B", "deleted_at": "2026-01-01T00:00:00Z"}])
        found = await client().fields(7, {(7, "A"): (3, 1)})
    assert [(f.id, f.container_id, f.active_checks, f.active_anomalies) for f in found] == [(1, 7, 3, 1)]


async def test_missing_datastore_is_not_found_with_a_hint_naming_it():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/datastores/42").respond(404, json={"detail": "Datastore not found"})
        with pytest.raises(NotFound) as info:
            await client().datastore(42)
    assert "datastore 42" in info.value.hint and "qatlan.toml" in info.value.hint


async def test_global_tags_are_addressed_by_url_encoded_name():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.route(url__regex=r".*/global-tags/.*").respond(200, json={"name": "PII/EU"})
        q = client()
        assert (await q.tag("PII/EU")).name == "PII/EU"
        await q.make_external("PII/EU", 3)
    assert [c.request.url.raw_path for c in route.calls] == [b"/api/global-tags/PII%2FEU"] * 2
    assert route.calls.last.request.method == "PUT"
    assert json.loads(route.calls.last.request.content) == {"type": "external", "integration_id": 3}


async def test_an_unknown_tag_is_none():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/global-tags/nope").respond(404, json={"detail": "not found"})
        assert await client().tag("nope") is None


async def test_create_external_tag_body():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/global-tags").respond(
            200, json={"id": 1, "name": "PII", "type": "external", "integration": {"id": 3}})
        tag = await client().create_external_tag("PII", 3, description="from Atlan")
    body = json.loads(route.calls.last.request.content)
    assert body == {"type": "external", "name": "PII", "integration_id": 3, "description": "from Atlan"}
    assert (tag.name, tag.type, tag.integration_id) == ("PII", "external", 3)


async def test_tag_writes_send_id_and_tags_return_the_new_tags_and_skip_empty_batches():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        containers = router.patch("/containers").respond(200, json=[container_item(1, tags=["PII"])])
        fields = router.patch("/fields").respond(200, json=[{"id": 2, "name": "F", "global_tags": []}])
        q = client()
        assert await q.set_container_tags([(1, ["PII"])]) == {1: (QTag("PII", "global"),)}
        assert await q.set_field_tags([(2, [])]) == {2: ()}
        assert await q.set_field_tags([]) == {}
    assert json.loads(containers.calls.last.request.content) == [{"id": 1, "tags": ["PII"]}]
    assert fields.call_count == 1


async def test_datastore_tags_are_written_back_with_the_datastore_body_last_read():
    item = {"id": 3, "name": "wh", "store_type": "jdbc", "type": "snowflake", "connection_id": 9,
            "database": "DB", "schema": "S", "global_tags": [], "metrics": {}, "host": "ignored"}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        get = router.get("/datastores/3").respond(200, json=item)
        put = router.put("/datastores/3").respond(200, json={**item, "global_tags": [{"name": "x"}]})
        q = client()
        await q.datastore(3)
        assert await q.set_datastore_tags(3, ["x"]) == (QTag("x", "global"),)
    assert json.loads(put.calls.last.request.content) == {
        "name": "wh", "connection_id": 9, "database": "DB", "schema": "S", "tags": ["x"]}
    assert get.call_count == 1


async def test_atlan_integrations_are_the_ids_of_type_atlan():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/integrations").mock(return_value=one_page([
            {"id": 3, "type": "atlan"}, {"id": 4, "type": "alation"}]))
        assert await client().atlan_integrations() == [3]


# --------------------------------------------------------------------------- converters

SCORE = {"total": 82.1, "completeness": 98, "coverage": 85, "conformity": 92, "consistency": 95,
         "precision": 100, "timeliness": 100, "volumetrics": 100, "accuracy": 88}
INTEGRATION = {"id": 3, "type": "atlan", "category": "data_catalog"}


def test_datastore_record_reads_flat_connection_details_metrics_and_tags():
    item = {
        "id": 1, "name": "warehouse", "store_type": "jdbc", "type": "snowflake", "host": "h",
        "database": "SALES", "schema": "PUBLIC",
        "global_tags": [
            {"type": "global", "name": "Finance", "weight_modifier": 0},
            {"type": "external", "name": "PII", "weight_modifier": 0, "integration": INTEGRATION},
        ],
        "metrics": {"quality_score": SCORE, "active_checks": 8, "active_anomalies": 1},
    }
    ds = datastore_record(item)
    assert (ds.id, ds.connector, ds.database, ds.schema) == (1, "snowflake", "SALES", "PUBLIC")
    assert ds.tags == (QTag("Finance", "global"), QTag("PII", "external", 3))
    assert ds.score.total == 82.1 and ds.score.volumetrics == 100.0
    assert (ds.active_checks, ds.active_anomalies) == (8, 1)


def test_container_record_for_a_view_with_null_score():
    item = {
        "id": 10, "name": "V_ORDERS", "container_type": "table", "table_type": "view", "status": "Available",
        "datastore": {"id": 1, "name": "warehouse", "store_type": "jdbc", "type": "snowflake"},
        "global_tags": None,
        "metrics": {"quality_score": None, "last_scanned": "2026-01-02T03:04:05Z", "last_profiled": None,
                    "active_checks": None, "active_anomalies": 0},
    }
    c = container_record(item)
    assert (c.id, c.datastore_id, c.container_type, c.table_type) == (10, 1, "table", "view")
    assert c.score is None and c.tags == ()
    assert c.last_scanned == "2026-01-02T03:04:05Z" and c.active_checks is None and c.active_anomalies == 0


def test_all_null_quality_score_is_no_score():
    item = {"id": 5, "name": "EMAIL", "quality_score": {k: None for k in SCORE}, "status": "active"}
    f = field_record(item, container_id=10, active_checks=2, active_anomalies=0)
    assert f.score is None and (f.container_id, f.active_checks, f.active_anomalies, f.status) == (10, 2, 0, "active")
    assert field_record({"id": 6, "name": "X", "quality_score": SCORE}, 10).score == QualityScore.from_api(SCORE)


def test_converters_refuse_items_without_ids():
    with pytest.raises(ApiResponseError, match="container .* 'datastore.id'"):
        container_record({"id": 1, "name": "T", "metrics": {}})
    with pytest.raises(ApiResponseError, match="'id'"):
        datastore_record({"name": "x"})


def check(cid, container, fields, status="Active"):
    return {"id": cid, "status": status, "container": {"id": container},
            "fields": [{"id": 100 + i, "name": f} for i, f in enumerate(fields)]}


def anomaly(aid, container, checks, status="Active"):
    return {"id": aid, "status": status, "archived": False, "container": {"id": container},
            "failed_checks": [{"quality_check": c, "message": "m"} for c in checks]}


def test_field_counts_counts_checks_by_field_and_active_anomalies_by_failed_check_fields():
    not_null = check(1, 10, ["EMAIL"])
    pair = check(2, 10, ["EMAIL", "PHONE"])
    volumetric = check(3, 10, [])
    other = check(4, 11, ["EMAIL"])
    draft = check(5, 10, ["PHONE"], status="Draft")
    checks = [not_null, pair, volumetric, other, draft]
    anomalies = [
        anomaly(1, 10, [not_null, pair]),  # EMAIL via two checks: counted once
        anomaly(2, 10, [pair], status="Acknowledged"),  # not Active
        anomaly(3, 11, [other]),
        anomaly(4, 10, [volumetric]),  # concerns no field
    ]
    assert field_counts(checks, anomalies) == {
        (10, "EMAIL"): (2, 1),
        (10, "PHONE"): (1, 1),
        (11, "EMAIL"): (1, 1),
    }


def test_field_counts_of_nothing_is_empty():
    assert field_counts([], []) == {}
