"""Contract tests of the sandbox Atlan index search (reference §2): DSL, fields, sort, paging."""

from __future__ import annotations

import pytest

from qatlan.sandbox.atlan_search import compile_query, field_getter, parse_sort, sort_guids
from qatlan.sandbox import atlan_writes
from qatlan.sandbox.atlan_store import AtlanStore, AtlasApiError

from atlan_worlds import (
    CM_CHECKS,
    CM_SCORE,
    CM_SET,
    DOMAIN_GUID,
    FINANCE,
    PG,
    PII,
    SCHEMA,
    SNOW,
    T0,
    client,
    guid,
    guids_of,
    personas,
    search,
    small_world,
    sql,
    term,
    typedefs,
)


@pytest.fixture(scope="module")
def store() -> AtlanStore:
    return AtlanStore(small_world())


def matching(store: AtlanStore, query: dict) -> set[str]:
    pred = compile_query(query)
    return {g for g, e in store.entities.items() if pred(e)}


def gid(n: int) -> str:
    return DOMAIN_GUID if n == 12 else guid(n)


def g(*ns: int) -> set[str]:
    return {gid(n) for n in ns}


# ---- clauses -----------------------------------------------------------------------------

def test_term_matches_in_value_form_and_short_form(store):
    assert matching(store, term("__typeName.keyword", "Table")) == g(4, 5, 9, 11)
    assert matching(store, {"term": {"__typeName.keyword": "View"}}) == g(6)


def test_term_case_insensitive_only_when_asked(store):
    assert matching(store, term("name.keyword", "orders")) == set()
    assert matching(store, term("name.keyword", "orders", case_insensitive=True)) == g(4)


def test_terms_matches_any_value(store):
    assert matching(store, {"terms": {"__typeName.keyword": ["View", "Column"]}}) == g(6, 7, 8)


def test_prefix_on_qualified_name_with_and_without_case(store):
    assert matching(store, {"prefix": {"qualifiedName": {"value": f"{SCHEMA}/ORDERS"}}}) == g(4, 6, 7, 8)
    lower = {"prefix": {"qualifiedName": {"value": f"{SCHEMA}/orders_".lower(), "case_insensitive": True}}}
    assert matching(store, lower) == g(6)


def test_range_bounds_on_timestamps(store):
    assert matching(store, {"range": {"__timestamp": {"gte": T0 + 11000, "lt": T0 + 13000}}}) == g(11, 12)
    assert matching(store, {"range": {"__modificationTimestamp": {"gt": T0 + 12000}}}) == g(13)
    assert matching(store, {"range": {"__timestamp": {"lte": T0 + 1000}}}) == g(1)


def test_exists_on_attributes_and_tags(store):
    assert matching(store, {"exists": {"field": "announcementType"}}) == g(4)
    assert matching(store, {"exists": {"field": "__traitNames"}}) == g(4, 5)


def test_match_all_matches_everything(store):
    assert matching(store, {"match_all": {}}) == set(store.entities)


def test_bool_filter_must_must_not_and_should(store):
    query = {"bool": {
        "filter": [term("__state", "ACTIVE")],
        "must": [{"terms": {"__typeName.keyword": ["Table", "View"]}}],
        "must_not": [term("connectionQualifiedName", PG)],
        "should": [term("name.keyword", "ORDERS"), term("name.keyword", "ORDERS_V")],
        "minimum_should_match": 1,
    }}
    assert matching(store, query) == g(4, 6)


def test_bool_should_alone_needs_one_match_and_msm_can_ask_more(store):
    shoulds = [term("__typeName.keyword", "Table"), {"exists": {"field": "__traitNames"}}]
    assert matching(store, {"bool": {"should": shoulds}}) == g(4, 5, 9, 11)
    assert matching(store, {"bool": {"should": shoulds, "minimum_should_match": 2}}) == g(4, 5)


def test_bool_should_is_optional_next_to_a_filter(store):
    query = {"bool": {"filter": [term("__typeName.keyword", "View")], "should": [term("name.keyword", "nope")]}}
    assert matching(store, query) == g(6)


def test_nested_bool_as_pyatlan_tagged_emits(store):
    tagged = {"bool": {"should": [{"terms": {"__traitNames": [PII]}}, {"terms": {"__propagatedTraitNames": [PII]}}],
                       "minimum_should_match": 1}}
    query = {"bool": {"filter": [term("__state", "ACTIVE"), tagged]}}
    assert matching(store, query) == g(4, 7)


@pytest.mark.parametrize("query, needle", [
    ({"match": {"name": "x"}}, "unknown query [match]"),
    ({"wildcard": {"name": "x*"}}, "unknown query [wildcard]"),
    ({"bool": {"filter": [{"regexp": {"name": "x"}}]}}, "query.bool.filter[0]"),
    ({"term": {"a": 1, "b": 2}}, "exactly one field"),
    ({"range": {"__timestamp": {"from": 1}}}, "unknown field [from]"),
    ({"bool": {"filters": []}}, "unknown field [filters]"),
    ({}, "query malformed"),
])
def test_unknown_or_malformed_clauses_are_a_clear_400(query, needle):
    with pytest.raises(AtlasApiError) as info:
        compile_query(query)
    assert info.value.status == 400
    assert info.value.code == "ATLAS-400-00-503"
    assert needle in info.value.message


# ---- fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, expected", [
    ("__superTypeNames.keyword", "SQL", (2, 3, 4, 5, 6, 7, 8, 9, 11)),
    ("__superTypeNames.keyword", "Referenceable", tuple(range(1, 14))),
    ("__state", "DELETED", (9,)),
    ("__guid", guid(5), (5,)),
    ("__timestamp", T0 + 3000, (3,)),
    ("__modificationTimestamp", T0 + 3000, (3,)),
    ("qualifiedName", f"{SCHEMA}/ORDERS", (4,)),
    ("name.keyword", "Runbook", (13,)),
    ("name", "Runbook", (13,)),
    ("connectionQualifiedName", PG, (11,)),
    ("__traitNames", PII, (4,)),
    ("__propagatedTraitNames", PII, (7,)),
    ("__classificationNames", PII, (4, 7)),
    ("domainGUIDs", DOMAIN_GUID, (3,)),
    ("announcementType", "warning", (4,)),
    (f"{CM_SET}.{CM_SCORE}", 97.5, (4,)),
    (f"{CM_SET}.{CM_CHECKS}", "4", (4,)),
    ("order", 2, (8,)),
    ("order.keyword", "2", (8,)),
])
def test_index_fields_map_to_entity_data(store, field, value, expected):
    assert matching(store, term(field, value)) == g(*expected)


def test_domain_guid_in_a_world_is_searchable_by_guid(store):
    assert matching(store, term("__guid", DOMAIN_GUID)) == {DOMAIN_GUID}


def test_field_getter_returns_lists(store):
    assert field_getter("__traitNames")(store.entities[guid(5)]) == [FINANCE]
    assert field_getter("missing")(store.entities[guid(5)]) == []


# ---- sort --------------------------------------------------------------------------------

def test_sort_by_several_keys_with_directions(store):
    keys = parse_sort([{"__typeName.keyword": {"order": "desc"}}, {"name.keyword": "asc"}])
    guids = [guid(n) for n in (4, 5, 6, 9, 11)]
    sort_guids(guids, store.entities, keys)
    assert guids == [guid(6), guid(9), guid(5), guid(4), guid(11)]


def test_sort_on_timestamps_and_guid(store):
    guids = [guid(n) for n in (3, 1, 2)]
    sort_guids(guids, store.entities, parse_sort([{"__timestamp": {"order": "desc"}}]))
    assert guids == [guid(3), guid(2), guid(1)]
    sort_guids(guids, store.entities, parse_sort(["__modificationTimestamp"]))
    assert guids == [guid(1), guid(2), guid(3)]
    sort_guids(guids, store.entities, parse_sort({"__guid": {"order": "desc"}}))
    assert guids == [guid(3), guid(2), guid(1)]


def test_sort_puts_missing_values_last_both_ways(store):
    guids = [guid(n) for n in (5, 7, 8)]
    sort_guids(guids, store.entities, parse_sort([{"order": {"order": "asc"}}]))
    assert guids[-1] == guid(5)
    sort_guids(guids, store.entities, parse_sort([{"order": {"order": "desc"}}]))
    assert guids == [guid(8), guid(7), guid(5)]


def test_bad_sort_order_is_a_400():
    with pytest.raises(AtlasApiError):
        parse_sort([{"name.keyword": {"order": "up"}}])


# ---- over HTTP: shapes, paging, personas -------------------------------------------------

def test_search_response_shape_is_non_null_with_header_and_requested_attributes():
    c, _ = client()
    r = search(c, term("__guid", guid(4)), attributes=["announcementType", "description", f"{CM_SET}.{CM_SCORE}"])
    assert r.status_code == 200
    body = r.json()
    assert body["queryType"] == "INDEX" and body["approximateCount"] == 1
    hit = body["entities"][0]
    assert hit["attributes"] == {"qualifiedName": f"{SCHEMA}/ORDERS", "name": "ORDERS",
                                 "announcementType": "warning", f"{CM_SET}.{CM_SCORE}": 97.5}
    assert hit["typeName"] == "Table" and hit["status"] == "ACTIVE" and hit["displayText"] == "ORDERS"
    assert hit["classificationNames"] == [PII]
    assert hit["classifications"][0]["entityGuid"] == guid(4)
    assert hit["createTime"] == T0 + 4000 and hit["updatedBy"] == "crawler"
    assert None not in hit.values() and None not in hit["attributes"].values()


def test_search_shows_propagated_tags_with_the_source_guid():
    c, _ = client()
    hit = search(c, term("__guid", guid(7))).json()["entities"][0]
    assert hit["classificationNames"] == [PII]
    assert hit["classifications"][0]["entityGuid"] == guid(4)
    assert hit["classifications"][0]["propagate"] is True


def test_search_with_no_hits_omits_entities():
    c, _ = client()
    body = search(c, term("name.keyword", "nothing")).json()
    assert "entities" not in body and body["approximateCount"] == 0


def test_search_can_exclude_classifications_and_show_scores():
    c, _ = client()
    body = search(c, term("__guid", guid(4)), excludeClassifications=True, includeClassificationNames=True,
                  showSearchScore=True).json()
    hit = body["entities"][0]
    assert "classifications" not in hit and hit["classificationNames"] == [PII]
    assert body["searchScore"] == {guid(4): 1.0}


def test_requesting_links_returns_link_headers_and_link_asset_returns_a_reference():
    c, _ = client()
    hit = search(c, term("__guid", guid(4)), attributes=["links"], relationAttributes=["link"]).json()["entities"][0]
    assert hit["attributes"]["links"] == [{
        "typeName": "Link", "guid": guid(13), "entityStatus": "ACTIVE", "displayText": "Runbook",
        "uniqueAttributes": {"qualifiedName": "link-1"},
        "attributes": {"qualifiedName": "link-1", "name": "Runbook", "link": "https://wiki/runbook"},
    }]
    link = search(c, term("__typeName.keyword", "Link"), attributes=["asset", "link"]).json()["entities"][0]
    assert link["attributes"]["asset"]["guid"] == guid(4)
    assert link["attributes"]["asset"]["uniqueAttributes"] == {"qualifiedName": f"{SCHEMA}/ORDERS"}
    assert link["attributes"]["link"] == "https://wiki/runbook"


def test_search_sorts_and_pages_with_from_and_size():
    c, _ = client()
    query = term("__superTypeNames.keyword", "SQL")
    sort = [{"name.keyword": {"order": "asc"}}, {"__guid": {"order": "asc"}}]
    everything = guids_of(search(c, query, sort=sort))
    assert len(everything) == 9
    pages = [guids_of(search(c, query, sort=sort, from_=i, size=4)) for i in (0, 4, 8, 12)]
    assert sum(pages, []) == everything and pages[-1] == []


def test_empty_or_missing_query_is_invalid_search_query():
    c, _ = client()
    for body in ({}, {"dsl": {}}, {"attributes": ["name"]}):
        r = c.post("/api/meta/search/indexsearch", headers={"Authorization": "Bearer tok-admin"}, json=body)
        assert r.status_code == 400
        assert r.json() == {"errorCode": "ATLAS-400-00-029", "errorMessage": "Invalid search query"}


def test_dsl_without_query_matches_everything():
    c, w = client()
    r = c.post("/api/meta/search/indexsearch", headers={"Authorization": "Bearer tok-admin"},
               json={"dsl": {"size": 1, "track_total_hits": True}})
    assert r.json()["approximateCount"] == len(w.atlan.entities)


def test_unknown_clause_over_http_is_an_atlas_400():
    c, _ = client()
    r = search(c, {"match": {"name": "ORDERS"}})
    assert r.status_code == 400
    assert r.json()["errorCode"] == "ATLAS-400-00-503" and "unknown query [match]" in r.json()["errorMessage"]


def test_result_window_error_past_max_result_window():
    c, w = client()
    w.atlan.max_result_window = 10
    assert search(c, {"match_all": {}}, from_=5, size=5).status_code == 200
    r = search(c, {"match_all": {}}, from_=6, size=5)
    assert r.status_code == 400
    assert r.json()["errorCode"] == "ATLAS-400-00-503"
    assert "Result window is too large, from + size must be less than or equal to: [10] but was [11]" in r.json()["errorMessage"]


def big_world(n: int, same_time_every: int = 1) -> dict:
    tables = [sql("Table", f"{SCHEMA}/T{i:05d}", 100 + i, created=T0 + (i // same_time_every) * 1000) for i in range(n)]
    return {"personas": personas(), "typedefs": typedefs(), "entities": tables}


def test_approximate_count_caps_at_10000_unless_tracking_total_hits():
    c, _ = client(big_world(10_050))
    assert search(c, {"match_all": {}}, size=1, track_total_hits=False).json()["approximateCount"] == 10_000
    assert search(c, {"match_all": {}}, size=1, track_total_hits=True).json()["approximateCount"] == 10_050


def test_timestamp_paging_reads_past_the_result_window():
    """pyatlan's bulk paging: range __timestamp gte the last createTime, from 0, seen guids dropped."""
    c, w = client(big_world(300, same_time_every=3))
    w.atlan.max_result_window = 50
    sort = [{"__timestamp": {"order": "asc"}}, {"__guid": {"order": "asc"}}]
    base = [term("__state", "ACTIVE"), {"term": {"__superTypeNames.keyword": {"value": "Referenceable"}}}]
    seen: list[str] = []
    start, since = 0, None
    for _ in range(100):
        filters = base + ([{"range": {"__timestamp": {"gte": since}}}] if since is not None else [])
        r = search(c, {"bool": {"filter": filters}}, sort=sort, from_=start, size=20)
        assert r.status_code == 200, r.json()
        hits = r.json().get("entities", [])
        new = [h for h in hits if h["guid"] not in set(seen)]
        if not new:
            break
        seen += [h["guid"] for h in new]
        if since is None and start == 0:
            start = 20  # pyatlan's second page is offset-based
        else:
            start, since = 0, hits[-1]["createTime"]
    assert len(seen) == 300 == len(set(seen))
    assert seen == sorted(seen, key=lambda x: (w.atlan.entities[x]["createTime"], x))


def test_search_results_follow_writes():
    c, w = client()
    before = guids_of(search(c, term("__typeName.keyword", "View")))
    c.post("/api/meta/entity/bulk", headers={"Authorization": "Bearer tok-admin"}, json={"entities": [
        {"typeName": "View", "guid": "-1", "attributes": {"qualifiedName": f"{SCHEMA}/NEW_V", "name": "NEW_V",
                                                          "connectionQualifiedName": SNOW}}]})
    after = guids_of(search(c, term("__typeName.keyword", "View")))
    assert len(after) == len(before) + 1


def test_search_silently_omits_what_the_persona_cannot_read():
    c, _ = client()
    everything = {"match_all": {}}
    reader = set(guids_of(search(c, everything, who="reader")))
    outsider = set(guids_of(search(c, everything, who="outsider")))
    assert reader == g(*range(1, 10), 12, 13)
    assert outsider == g(10, 11, 12)
    assert search(c, term("__guid", guid(11)), who="reader").json()["approximateCount"] == 0


def test_later_pages_reuse_the_cached_result_until_a_write(monkeypatch):
    from qatlan.sandbox import atlan_search

    calls = []
    real = atlan_search._filter_sorted
    monkeypatch.setattr(atlan_search, "_filter_sorted", lambda *a: calls.append(1) or real(*a))
    c, w = client(big_world(50, same_time_every=2))
    sort = [{"__timestamp": {"order": "asc"}}, {"__guid": {"order": "asc"}}]
    query = {"bool": {"filter": [term("__state", "ACTIVE")]}}
    for start in (0, 10, 20):
        search(c, query, sort=sort, from_=start, size=10)
    ranged = {"bool": {"filter": [term("__state", "ACTIVE"), {"range": {"__timestamp": {"gte": T0 + 10_000}}}]}}
    assert len(guids_of(search(c, ranged, sort=sort, size=100))) == 30
    assert len(calls) == 1  # the timestamp range is applied to the cached list
    atlan_writes.apply_change(w.atlan, {"side": "atlan", "op": "update", "guid": guid(100), "set": {"status": "DELETED"}})
    assert len(guids_of(search(c, query, sort=sort, size=100))) == 49 and len(calls) == 2


def test_post_filter_and_numeric_track_total_hits():
    c, _ = client()
    body = search(c, term("__typeName.keyword", "Table"), post_filter=term("__state", "ACTIVE"), track_total_hits=2).json()
    assert body["approximateCount"] == 2 and set(guids_of_body(body)) == g(4, 5, 11)


def guids_of_body(body: dict) -> list[str]:
    return [e["guid"] for e in body.get("entities", [])]


def test_aggregations_are_refused_clearly():
    c, _ = client()
    r = c.post("/api/meta/search/indexsearch", headers={"Authorization": "Bearer tok-admin"},
               json={"dsl": {"query": {"match_all": {}}, "aggregations": {"t": {"terms": {"field": "__typeName.keyword"}}}}})
    assert r.status_code == 400 and "aggregations are not supported" in r.json()["errorMessage"]
