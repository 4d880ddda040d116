"""The indexed sandbox Atlan search answers exactly as a scan of every entity, also after writes."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest

from qatlan.sandbox.atlan_index import EntityIndex, TimeIndex, plan
from qatlan.sandbox.atlan_search import compile_query, parse_request, search, sort_guids, total_hits
from qatlan.sandbox.atlan_store import AtlanStore, copy_entity
from qatlan.sandbox.generate import generate_world

ASSET_TYPES = ["Schema", "Table", "View", "MaterialisedView", "Column"]
TS_SORT = [{"__timestamp": {"order": "asc"}}, {"__guid": {"order": "asc"}}]
SORTS = [None, TS_SORT, [{"name.keyword": "desc"}, {"__guid": "asc"}], [{"__modificationTimestamp": {"order": "asc"}}]]
NOW_MS = 1_800_000_000_000


@cache
def _doc() -> dict[str, Any]:
    return generate_world("tables=30,seed=3")["atlan"]


class Clock:
    def __init__(self) -> None:
        self.now = NOW_MS / 1000

    def __call__(self) -> float:
        return self.now


def new_store() -> AtlanStore:
    return AtlanStore(_doc(), clock=Clock())


def term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {field: {"value": value}}}


def scan(store: AtlanStore, persona: dict[str, Any], body: dict[str, Any]) -> tuple[list[str], int]:
    """The answer without index or cache: the compiled query on every entity, sorted, paged."""
    req = parse_request(body, store.max_result_window)
    pred, readable = compile_query(req.query), store.read_filter(persona)
    ents = store.entities
    guids = [g for g, e in ents.items() if (readable is None or readable(e)) and pred(e)]
    sort_guids(guids, ents, req.sort)
    return guids[req.start: req.start + req.size], total_hits(len(guids), req.track_total_hits)


def indexed(store: AtlanStore, persona: dict[str, Any], body: dict[str, Any]) -> tuple[list[str], int]:
    _, hits, count = search(store, persona, body)
    return [e["guid"] for e in hits], count


# ---- random queries of the shapes qatlan sends -------------------------------------------

def _values(store: AtlanStore, rng: random.Random, type_name: str | None, attr: str, k: int) -> list[Any]:
    pool = [e["attributes"].get(attr) for e in store.entities.values() if type_name in (None, e["typeName"])]
    pool = [v for v in pool if isinstance(v, str)] or ["none"]
    return rng.sample(pool, min(k, len(pool))) + [f"missing-{rng.random()}"]


def _conns(store: AtlanStore, rng: random.Random) -> list[str]:
    conns = [e["attributes"]["qualifiedName"] for e in store.entities.values() if e["typeName"] == "Connection"]
    return rng.sample(conns, rng.randint(1, len(conns)))


def _times(store: AtlanStore, rng: random.Random) -> int:
    return rng.choice([e["updateTime"] for e in store.entities.values()]) + rng.choice([-1, 0, 1])


def random_query(store: AtlanStore, rng: random.Random) -> dict[str, Any]:
    shape = rng.randrange(10)
    active = term("__state", "ACTIVE")
    if shape == 0:  # assets (refresh)
        return {"bool": {"filter": [{"terms": {"__typeName.keyword": rng.sample(ASSET_TYPES, rng.randint(1, 5))}},
                                    {"terms": {"connectionQualifiedName": _conns(store, rng)}}, active]}}
    if shape == 1:  # assets changed since (incremental refresh)
        return {"bool": {"filter": [{"terms": {"__typeName.keyword": ASSET_TYPES}},
                                    {"terms": {"connectionQualifiedName": _conns(store, rng)}},
                                    {"terms": {"__state": ["ACTIVE", "DELETED"]}},
                                    {"range": {"__modificationTimestamp": {rng.choice(["gte", "gt"]): _times(store, rng)}}},
                                    ]}}
    if shape == 2:  # Links by qualifiedName (find_links), with other types' names mixed in
        qns = _values(store, rng, "Link", "qualifiedName", 5) + _values(store, rng, None, "qualifiedName", 5)
        return {"bool": {"filter": [term("__typeName.keyword", "Link"), {"terms": {"qualifiedName": qns}}, active]}}
    if shape == 3:  # Links by name
        name = rng.choice(["Qualytics", "Runbook"])
        return {"bool": {"filter": [term("__typeName.keyword", "Link"), active, term("name.keyword", name)]}}
    if shape == 4:  # by guid, alone or in a bool
        guids = rng.sample(list(store.entities), 3) + ["no-such-guid"]
        return rng.choice([term("__guid", guids[0]), {"bool": {"must": [{"terms": {"__guid": guids}}]}}])
    if shape == 5:  # counts of connections / domains, `__typeName` without .keyword
        return {"bool": {"filter": [term(rng.choice(["__typeName", "__typeName.keyword"]),
                                         rng.choice(["Connection", "DataDomain", "Table"])), active]}}
    if shape == 6:  # a qualifiedName term, exact or case-insensitive, next to should and must_not
        qn = _values(store, rng, None, "qualifiedName", 1)[0]
        qn_term = {"term": {"qualifiedName.keyword": {"value": qn.upper(), "case_insensitive": True}}}
        return {"bool": {"filter": [rng.choice([term("qualifiedName", qn), qn_term])],
                         "should": [term("__typeName.keyword", "Table")], "must_not": [term("__state", "DELETED")]}}
    if shape == 7:  # nested bools, match_none, timestamp ranges both ways
        since = _times(store, rng)
        inner = {"bool": {"filter": [{"terms": {"__typeName.keyword": ["Table", "View"]}}],
                          "must": [{"range": {"__timestamp": {"lte": since}}}]}}
        return {"bool": {"filter": [inner, rng.choice([{"match_all": {}}, {"match_none": {}}])],
                         "must": [{"range": {"__modificationTimestamp": {"gt": since - 10**9, "lt": since + 10**9}}}]}}
    if shape == 8:  # changed since, paged past the result window by a moving __timestamp range
        return {"bool": {"filter": [{"terms": {"__typeName.keyword": ASSET_TYPES}},
                                    {"range": {"__modificationTimestamp": {"gte": _times(store, rng)}}},
                                    {"range": {"__timestamp": {"gte": _times(store, rng)}}}]}}
    return {"bool": {"filter": [active, {"range": {"__timestamp": {"gte": _times(store, rng)}}}]}}  # pyatlan paging


def random_body(store: AtlanStore, rng: random.Random) -> dict[str, Any]:
    dsl: dict[str, Any] = {"from": rng.choice([0, 0, 3, 20]), "size": rng.choice([1, 5, 300]),
                           "track_total_hits": rng.choice([True, False, 2]), "query": random_query(store, rng)}
    sort = rng.choice(SORTS)
    if sort is not None:
        dsl["sort"] = sort
    return {"dsl": dsl}


# ---- random writes -----------------------------------------------------------------------

def random_write(store: AtlanStore, rng: random.Random) -> None:
    """One write through the store's own put/remove, as the API's writers make them."""
    store.bump()
    store._clock.now += rng.choice([0, 1, 5])  # type: ignore[attr-defined]  # writes share a millisecond sometimes
    guid = rng.choice(list(store.entities))
    ent = copy_entity(store.entities[guid])
    ent["updateTime"] = store.now_ms()
    kind = rng.randrange(9)
    if kind == 0:
        store.remove(guid)
        return
    if kind == 1:
        ent["status"] = "DELETED" if ent["status"] == "ACTIVE" else "ACTIVE"
    elif kind == 2:
        ent["classifications"] = [] if ent["classifications"] else [{"typeName": "aTag", "propagate": True}]
    elif kind == 3 and store.guid_for("View", ent["attributes"]["qualifiedName"]) is None:
        ent["typeName"] = "View"
    elif kind == 4:
        ent["attributes"]["qualifiedName"] += "/moved"
    elif kind == 5:
        ent["updateTime"] -= rng.randint(1, 10**12)  # back in time
    elif kind == 6:
        ent["attributes"]["connectionQualifiedName"] = rng.choice([None, "default/other/1", 5])
    elif kind == 7:
        store.remove(guid)
        ent = _new_link(store, rng, ent)
    if ent["attributes"].get("connectionQualifiedName") is None:
        ent["attributes"].pop("connectionQualifiedName", None)
    if store.guid_for(ent["typeName"], ent["attributes"]["qualifiedName"]) in (None, ent["guid"]):
        store.put(ent)


def _new_link(store: AtlanStore, rng: random.Random, asset: dict[str, Any]) -> dict[str, Any]:
    guid = store.new_guid()
    return {"typeName": "Link", "guid": guid, "status": "ACTIVE",
            "attributes": {"qualifiedName": f"link-{guid}", "name": rng.choice(["Qualytics", "Other"]),
                           "asset": {"typeName": asset["typeName"], "guid": asset["guid"]}},
            "classifications": [], "businessAttributes": {}, "createTime": store.now_ms(), "updateTime": store.now_ms()}


# ---- tests -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_indexed_search_answers_as_a_full_scan_through_writes(seed):
    rng, store = random.Random(seed), new_store()
    personas = store.personas
    for _ in range(25):
        for _ in range(rng.randint(1, 6)):
            random_write(store, rng)
        for _ in range(8):
            body, persona = random_body(store, rng), rng.choice(personas)
            expected = scan(store, persona, body)
            assert indexed(store, persona, body) == expected, body
            assert indexed(store, persona, body) == expected, body  # from the cache


def test_pages_of_a_changed_since_search_match_the_scan_between_writes():
    store, rng = new_store(), random.Random(7)
    persona = next(p for p in store.personas if p["name"] == "qualytics-sync")
    since = store.now_ms()
    for _ in range(40):
        random_write(store, rng)
    query = {"bool": {"filter": [{"terms": {"__typeName.keyword": ASSET_TYPES}},
                                 {"terms": {"connectionQualifiedName": persona["read"]}},
                                 {"terms": {"__state": ["ACTIVE", "DELETED"]}},
                                 {"range": {"__modificationTimestamp": {"gte": since}}}]}}
    for start in range(0, 40, 3):
        body = {"dsl": {"from": start, "size": 3, "track_total_hits": True, "query": query, "sort": TS_SORT}}
        assert indexed(store, persona, body) == scan(store, persona, body)


def test_removed_and_added_again_entities_come_last_in_unsorted_hits():
    store = new_store()
    tables = [g for g, e in store.entities.items() if e["typeName"] == "Table"]
    store.put(store.remove(tables[0]))
    store.bump()
    body = {"dsl": {"size": 300, "query": term("__typeName.keyword", "Table")}}
    assert indexed(store, {"read": ["*"]}, body)[0] == tables[1:] + tables[:1]


def test_a_qualified_name_search_tests_only_the_named_entities():
    store = new_store()
    links = [g for g, e in store.entities.items() if e["typeName"] == "Link"]
    qns = [store.entities[g]["attributes"]["qualifiedName"] for g in links] + ["missing"]
    query = {"bool": {"filter": [term("__typeName.keyword", "Link"), {"terms": {"qualifiedName": qns}}]}}
    assert plan(store.index, store.entities, query, []).guids == links


def test_a_recent_time_range_tests_only_the_recently_written_entities():
    store, rng = new_store(), random.Random(3)
    since = store.now_ms() + 1
    store._clock.now += 1  # type: ignore[attr-defined]
    written = [g for g in rng.sample(list(store.entities), 5)]
    for g in written:
        ent = store.copy(g)
        ent["updateTime"] = store.now_ms()
        store.put(ent)
    ranges = [("__modificationTimestamp", "updateTime", [("gte", since)])]
    found = plan(store.index, store.entities, {"terms": {"__typeName.keyword": ASSET_TYPES}}, ranges)
    assert found.ranged and found.guids == [g for g in store.entities if g in written]


def test_time_index_skips_stale_pairs_and_keeps_odd_values_as_candidates():
    entities: dict[str, dict[str, Any]] = {f"g{i}": {"updateTime": i * 10} for i in range(3000)}
    times = TimeIndex("updateTime")
    assert times.guids([("gte", 29_980)], entities) == {"g2998", "g2999"}
    for i in range(2000):  # more stale pairs than live ones: the list is rebuilt
        times.drop(f"g{i}", entities[f"g{i}"]["updateTime"])
        entities[f"g{i}"] = {"updateTime": 50_000 - i}
        times.add(f"g{i}", entities[f"g{i}"]["updateTime"])
    times.drop("g5", entities["g5"]["updateTime"])
    entities["g5"] = {"updateTime": "48000"}
    times.add("g5", "48000")
    assert times.guids([("gte", 48_000), ("lt", 48_003)], entities) == {"g1999", "g1998", "g5"}
    assert times.guids([("lte", 0)], entities) == {"g5"}  # g0 moved on; odd values are always candidates


def test_entity_index_follows_type_and_keyword_changes():
    index = EntityIndex()
    a = {"guid": "a", "typeName": "Table", "attributes": {"qualifiedName": "q", "connectionQualifiedName": 5},
         "createTime": 1, "updateTime": 1}
    index.replace(None, a)
    b = {**a, "typeName": "View", "attributes": {"qualifiedName": "q", "connectionQualifiedName": ["c", 5.0]}}
    index.replace(a, b)
    assert index.by_type == {"View": "a"} and index.by_attr["connectionQualifiedName"] == {"5": "a", "c": "a"}
    index.remove(b)
    assert index.by_type == {} and index.by_attr == {"qualifiedName": {}, "connectionQualifiedName": {}}


def test_odd_timestamp_values_still_match_a_range_as_the_scan_does():
    store = new_store()
    guid = next(iter(store.entities))
    ent = store.copy(guid)
    ent["updateTime"] = str(NOW_MS + 5)
    store.put(ent)
    store.bump()
    ranged = {"bool": {"filter": [{"range": {"__modificationTimestamp": {"gte": NOW_MS}}}]}}
    body = {"dsl": {"size": 50, "query": ranged}}
    assert indexed(store, {"read": ["*"]}, body) == scan(store, {"read": ["*"]}, body) == ([guid], 1)
