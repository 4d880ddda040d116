"""AtlanClient.search: offset paging, timestamp paging past the result window, request counts."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import respx

from qatlan.clients import AtlanClient, HttpClient
from qatlan.clients.atlan import SearchPager, with_filter

pytestmark = pytest.mark.anyio

BASE = "https://tenant.atlan.example"
SEARCH = "/api/meta/search/indexsearch"
TABLES = {"bool": {"filter": [{"term": {"__typeName.keyword": {"value": "Table"}}}]}}


@pytest.fixture
def anyio_backend():
    return "asyncio"


def table(i: int, ts: int) -> dict:
    return {
        "typeName": "Table", "guid": f"g{i:03d}", "status": "ACTIVE", "createTime": ts,
        "attributes": {"name": f"T{i:03d}", "qualifiedName": f"default/snowflake/1/DB/SCH/T{i:03d}"},
    }


def _value(entity: dict, field: str):
    special = {"__typeName.keyword": "typeName", "__state": "status", "__guid": "guid",
               "__timestamp": "createTime", "__modificationTimestamp": "updateTime"}
    if field in special:
        return entity.get(special[field])
    return entity["attributes"].get(field.removesuffix(".keyword"))


def _matches(entity: dict, clause: dict) -> bool:
    (kind, spec), = clause.items()
    if kind == "bool":
        return all(_matches(entity, c) for c in spec.get("filter", []))
    (field, arg), = spec.items()
    value = _value(entity, field)
    if kind == "term":
        return value == arg["value"]
    if kind == "terms":
        return value in arg
    if kind == "range":
        return value is not None and value >= arg["gte"]
    raise AssertionError(f"fake index does not know {kind}")


class FakeIndex:
    """Atlan's index search over a list of entities, refusing pages past the result window."""

    def __init__(self, entities: list[dict], window: int, after_first: Callable[[], None] | None = None):
        self.entities = entities
        self.window = window
        self.after_first = after_first
        self.dsls: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        dsl = json.loads(request.content)["dsl"]
        self.dsls.append(dsl)
        if dsl["from"] + dsl["size"] > self.window:
            return httpx.Response(400, json={"errorCode": "ATLAS-400-00-103", "errorMessage": "Result window is too large"})
        hits = [e for e in self.entities if _matches(e, dsl["query"])]
        for spec in reversed(dsl.get("sort", [])):
            (field, how), = spec.items()
            hits.sort(key=lambda e: _value(e, field), reverse=how["order"] == "desc")
        page = hits[dsl["from"] : dsl["from"] + dsl["size"]]
        body: dict = {"queryType": "INDEX", "approximateCount": len(hits)}
        if page:
            body["entities"] = page
        if self.after_first and len(self.dsls) == 1:
            self.after_first()
        return httpx.Response(200, json=body)


async def _no_sleep(seconds: float) -> None:
    return None


async def run_search(index: FakeIndex, *, page_size=10, window=30, **kwargs) -> tuple[list[dict], AtlanClient]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(SEARCH).mock(side_effect=index)
        http = HttpClient("atlan", BASE, "atlan-token", sleep=_no_sleep, max_retries=0)
        atlan = AtlanClient(http, page_size=page_size, max_result_window=window)
        hits = [h async for h in atlan.search(TABLES, **kwargs)]
    return hits, atlan


def guids(hits: list[dict]) -> list[str]:
    return [h["guid"] for h in hits]


# --------------------------------------------------------------------------- offset paging


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (5, 1), (20, 2), (25, 3)])
async def test_offset_paging_within_the_window_makes_the_minimum_requests(total, requests):
    index = FakeIndex([table(i, 1000 + i) for i in range(total)], window=100)
    hits, atlan = await run_search(index, window=100)
    assert guids(hits) == [f"g{i:03d}" for i in range(total)]
    assert atlan.http.stats.count("POST", SEARCH) == requests
    assert [d["from"] for d in index.dsls] == [10 * n for n in range(requests)]


async def test_search_request_asks_for_exact_totals_and_a_guid_tiebreak():
    index = FakeIndex([table(1, 1000)], window=100)
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).mock(side_effect=index)
        atlan = AtlanClient(HttpClient("atlan", BASE, "t"), page_size=10)
        [h async for h in atlan.search(TABLES, attributes=["name"], relation_attributes=["qualifiedName"],
                                       sort=[{"name.keyword": {"order": "asc"}}])]
    body = json.loads(route.calls.last.request.content)
    assert body["dsl"]["track_total_hits"] is True and body["dsl"]["size"] == 10
    assert body["dsl"]["sort"] == [{"name.keyword": {"order": "asc"}}, {"__guid": {"order": "asc"}}]
    assert body["attributes"] == ["name"] and body["relationAttributes"] == ["qualifiedName"]
    assert body["excludeClassifications"] is False


async def test_missing_entities_ends_the_search():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).respond(200, json={"approximateCount": 0})
        atlan = AtlanClient(HttpClient("atlan", BASE, "t"))
        assert [h async for h in atlan.search(TABLES)] == []
    assert route.call_count == 1


# --------------------------------------------------------------------------- past the window


async def test_result_larger_than_the_window_uses_timestamp_paging_up_front():
    index = FakeIndex([table(i, 1000 + 10 * i) for i in range(57)], window=30)
    hits, atlan = await run_search(index)
    assert sorted(guids(hits)) == [f"g{i:03d}" for i in range(57)]
    assert len(hits) == 57  # each once
    assert all(d["from"] + d["size"] <= 30 for d in index.dsls)
    assert index.dsls[0]["sort"] == [{"__timestamp": {"order": "asc"}}, {"__guid": {"order": "asc"}}]
    assert index.dsls[1]["from"] == 0
    assert index.dsls[1]["query"]["bool"]["filter"][-1] == {"range": {"__timestamp": {"gte": 1090}}}
    # 10 new hits, then 9 new per page (the last one of each page comes back): 7 requests
    assert atlan.http.stats.count("POST", SEARCH) == 7


async def test_duplicate_create_times_fall_back_to_offsets_and_lose_nothing():
    # the first 12 share one createTime, the rest come in pairs
    times = [1000] * 12 + [2000 + 10 * ((i - 12) // 2) for i in range(12, 57)]
    index = FakeIndex([table(i, t) for i, t in enumerate(times)], window=30)
    hits, _ = await run_search(index)
    assert sorted(guids(hits)) == [f"g{i:03d}" for i in range(57)] and len(hits) == 57
    second = index.dsls[1]
    assert second["from"] == 10 and second["query"] == TABLES  # a page of equal times: offset, no range
    assert all(d["from"] + d["size"] <= 30 for d in index.dsls)


async def test_offset_paging_switches_to_timestamps_when_the_result_grows_past_the_window():
    entities = [table(i, 1000 + 10 * i) for i in range(25)]
    index = FakeIndex(entities, window=30, after_first=lambda: entities.extend(table(i, 1000 + 10 * i) for i in range(25, 45)))
    hits, _ = await run_search(index)
    assert sorted(guids(hits)) == [f"g{i:03d}" for i in range(45)] and len(hits) == 45
    assert [d["from"] for d in index.dsls[:3]] == [0, 10, 20]
    assert "range" in json.dumps(index.dsls[3])


async def test_caller_sort_past_the_window_restarts_in_timestamp_order_without_duplicates():
    index = FakeIndex([table(i, 1000 + 10 * i) for i in range(45)], window=30)
    hits, _ = await run_search(index, sort=[{"name.keyword": {"order": "desc"}}])
    assert guids(hits)[:10] == [f"g{i:03d}" for i in range(44, 34, -1)]
    assert sorted(guids(hits)) == [f"g{i:03d}" for i in range(45)] and len(hits) == 45


def test_pager_falls_back_to_the_seen_count_when_a_page_has_one_create_time():
    pager = SearchPager(TABLES, page_size=3, window=6)
    pager.dsl()
    pager.take({"approximateCount": 50, "entities": [table(i, 5) for i in range(3)]})
    dsl = pager.dsl()
    assert (dsl["from"], dsl["query"]) == (3, TABLES)
    pager.take({"approximateCount": 50, "entities": [table(i, 5 + i) for i in range(3, 6)]})
    dsl = pager.dsl()
    assert dsl["from"] == 0 and dsl["query"]["bool"]["filter"][-1] == {"range": {"__timestamp": {"gte": 10}}}


def test_with_filter_appends_to_a_bool_filter_or_wraps_other_queries():
    assert with_filter({"bool": {"filter": {"term": 1}}}, {"r": 2}) == {"bool": {"filter": [{"term": 1}, {"r": 2}]}}
    assert with_filter({"term": 1}, {"r": 2}) == {"bool": {"filter": [{"term": 1}, {"r": 2}]}}


async def test_counting_active_assets_asks_for_one_hit_and_returns_the_total():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).respond(200, json={"approximateCount": 12345, "entities": [table(1, 1)]})
        atlan = AtlanClient(HttpClient("atlan", BASE, "t"))
        assert await atlan.count_active_assets(["default/snowflake/1"], ["Table"]) == 12345
    dsl = json.loads(route.calls.last.request.content)["dsl"]
    assert dsl["size"] == 1 and dsl["track_total_hits"] is True
    filters = dsl["query"]["bool"]["filter"]
    assert {"terms": {"connectionQualifiedName": ["default/snowflake/1"]}} in filters
    assert {"term": {"__state": {"value": "ACTIVE"}}} in filters
