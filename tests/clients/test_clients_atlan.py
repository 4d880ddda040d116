"""AtlanClient: typedefs, domains, converters, reading records and writing plan changes."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from qatlan.clients import AtlanClient, HttpClient, Names
from qatlan.clients.atlan import asset_record
from qatlan.errors import PermissionDenied
from qatlan.model import ACMAttribute, ACMDef, ADomain, ALink, Announcement, ATagDef
from qatlan.plan import Action, Change

pytestmark = pytest.mark.anyio

BASE = "https://tenant.atlan.example"
SEARCH = "/api/meta/search/indexsearch"
TYPEDEFS = "/api/meta/types/typedefs"
CONN = "default/snowflake/1657037873"


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _no_sleep(seconds: float) -> None:
    return None


def atlan() -> AtlanClient:
    return AtlanClient(HttpClient("atlan", BASE, "atlan-token", sleep=_no_sleep), page_size=100)


def search_answer(*entities: dict) -> httpx.Response:
    body: dict = {"approximateCount": len(entities)}
    if entities:
        body["entities"] = list(entities)
    return httpx.Response(200, json=body)


def sent(route) -> dict:
    return json.loads(route.calls.last.request.content)


# --------------------------------------------------------------------------- typedefs

PII = {"category": "CLASSIFICATION", "name": "yQBDoKHdTLJhqAsdR3RMq6", "displayName": "PII"}
NEW = {"category": "CLASSIFICATION", "name": "aaaaaaaaaaaaaaaaaaaaaa", "displayName": "New"}
QSET = {
    "category": "BUSINESS_METADATA", "name": "fPQm7WzHkL0c1v2b3n4m5x", "displayName": "Qualytics", "guid": "bm-1",
    "attributeDefs": [
        {"name": "kD9sLq2WvZ1x3c4v5b6n7m", "displayName": "Score", "typeName": "float",
         "options": {"primitiveType": "float", "isArchived": "false"}},
        {"name": "uRl0000000000000000000", "displayName": "URL", "typeName": "string",
         "options": {"primitiveType": "url", "customType": "url"}},
        {"name": "oLd0000000000000000000", "displayName": "Old", "typeName": "string",
         "options": {"primitiveType": "string", "isArchived": "true"}},
    ],
}


def typedef_server(classification_defs: list[dict], bm_defs: list[dict]):
    def effect(request: httpx.Request) -> httpx.Response:
        types = {t.upper() for t in request.url.params.get_list("type")}
        return httpx.Response(200, json={
            "enumDefs": [], "structDefs": [{"name": "SourceTagAttachment"}], "entityDefs": [], "relationshipDefs": [],
            "classificationDefs": list(classification_defs) if "CLASSIFICATION" in types else [],
            "businessMetadataDefs": list(bm_defs) if "BUSINESS_METADATA" in types else [],
        })

    return effect


async def test_tag_defs_ask_for_classifications_only_and_are_records():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get(TYPEDEFS).mock(side_effect=typedef_server([PII, NEW], []))
        assert await atlan().tag_defs() == [ATagDef(PII["name"], "PII"), ATagDef(NEW["name"], "New")]
    assert route.calls.last.request.url.params.get_list("type") == ["CLASSIFICATION"]


async def test_cm_defs_skip_archived_attributes_and_keep_the_ui_type():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get(TYPEDEFS).mock(side_effect=typedef_server([], [QSET]))
        client = atlan()
        (cm,) = await client.cm_defs()
    assert cm.hashed_name == QSET["name"] and cm.display_name == "Qualytics"
    assert cm.attributes == (
        ACMAttribute("kD9sLq2WvZ1x3c4v5b6n7m", "Score", "float"),
        ACMAttribute("uRl0000000000000000000", "URL", "url"),
    )


async def test_create_tag_defs_posts_classification_defs_and_returns_the_hashed_names():
    created = {"classificationDefs": [dict(PII, guid="x")], "businessMetadataDefs": []}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(TYPEDEFS).respond(200, json=created)
        assert await atlan().create_tag_defs(["PII"]) == [ATagDef(PII["name"], "PII")]
    body = sent(route)
    assert set(body) == {"enumDefs", "structDefs", "classificationDefs", "entityDefs", "relationshipDefs",
                         "businessMetadataDefs"}
    (tag,) = body["classificationDefs"]
    assert tag["category"] == "CLASSIFICATION" and tag["displayName"] == "PII" and tag["name"] == "PII"


async def test_create_cm_set_posts_the_set_shaped_as_pyatlan_does():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(TYPEDEFS).respond(200, json={"businessMetadataDefs": [QSET]})
        cm = await atlan().create_cm_set("Qualytics", [("Score", "float"), ("Checks", "int"), ("URL", "url"),
                                                       ("Note", "string"), ("Last scanned", "date")])
    assert cm.hashed_name == QSET["name"]
    (bm,) = sent(route)["businessMetadataDefs"]
    assert bm["category"] == "BUSINESS_METADATA" and bm["displayName"] == "Qualytics"
    kinds = {a["displayName"]: (a["typeName"], a["options"]["primitiveType"], a["options"].get("customType"))
             for a in bm["attributeDefs"]}
    assert kinds == {"Score": ("float", "float", None), "Checks": ("int", "int", None), "URL": ("string", "url", "url"),
                     "Note": ("string", "string", None), "Last scanned": ("date", "date", None)}
    first = bm["attributeDefs"][0]
    assert first["isNew"] is True and first["cardinality"] == "SINGLE"
    assert first["options"]["applicableEntityTypes"] == '["Asset"]'


async def test_add_cm_attributes_puts_the_full_def_back_with_the_new_attributes():
    updated = dict(QSET, attributeDefs=[*QSET["attributeDefs"], {"name": "nEw", "displayName": "Checks", "typeName": "int"}])
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get(TYPEDEFS).mock(side_effect=typedef_server([], [QSET]))
        route = router.put(TYPEDEFS).respond(200, json={"businessMetadataDefs": [updated]})
        client = atlan()
        (cm,) = await client.cm_defs()
        cm = await client.add_cm_attributes(cm, [("Checks", "int"), ("Score", "float")])
    (bm,) = sent(route)["businessMetadataDefs"]
    assert bm["guid"] == "bm-1" and bm["name"] == QSET["name"]
    assert [a["displayName"] for a in bm["attributeDefs"]] == ["Score", "URL", "Old", "Checks"]
    assert cm.attr_hash("Checks") == "nEw"


# --------------------------------------------------------------------------- domains


SALES = ADomain(guid="d1", qualified_name="default/domain/aaa/super", name="Sales")
EMEA = ADomain(guid="d2", qualified_name="default/domain/aaa/super/domain/bbb", name="EMEA",
               parent_qn=SALES.qualified_name)


async def test_domains_reads_active_data_domains():
    hit = {"typeName": "DataDomain", "guid": "d2", "status": "ACTIVE",
           "attributes": {"name": "EMEA", "qualifiedName": EMEA.qualified_name,
                          "parentDomainQualifiedName": SALES.qualified_name}}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).mock(return_value=search_answer(hit))
        assert await atlan().domains() == [EMEA]
    filters = sent(route)["dsl"]["query"]["bool"]["filter"]
    assert {"term": {"__typeName.keyword": {"value": "DataDomain"}}} in filters
    assert {"term": {"__state": {"value": "ACTIVE"}}} in filters


# --------------------------------------------------------------------------- converters

CM = ACMDef("SET", "Qualytics", (ACMAttribute("SCORE", "Score", "float"), ACMAttribute("CHECKS", "Checks", "int")))


def column_hit(**overrides) -> dict:
    hit = {
        "typeName": "Column", "guid": "c1", "status": "ACTIVE", "updateTime": 1700000001000, "updatedBy": "jsmith",
        "attributes": {
            "name": "EMAIL", "qualifiedName": f"{CONN}/DB/SCH/ORDERS/EMAIL", "connectionQualifiedName": CONN,
            "tableQualifiedName": f"{CONN}/DB/SCH/ORDERS", "domainGUIDs": ["d1"],
            "announcementType": "warning", "announcementTitle": "2 anomalies", "announcementUpdatedBy": "qatlan",
            "SET.SCORE": 82.5, "SET.CHECKS": None, "OTHER.X": 1,
        },
        "classifications": [
            {"typeName": "directTag", "entityGuid": "c1"},
            {"typeName": "noGuidTag"},
            {"typeName": "propagatedTag", "entityGuid": "t1"},
        ],
    }
    hit.update(overrides)
    return hit


def test_asset_record_keeps_direct_tags_only_and_cm_values_by_hashed_name():
    asset = asset_record(column_hit(), CM)
    assert asset.tags == ("directTag", "noGuidTag")
    assert asset.cm == (("SCORE", 82.5),)
    assert asset.parent_qn == f"{CONN}/DB/SCH/ORDERS" and asset.connection_qn == CONN
    assert asset.announcement == Announcement("warning", "2 anomalies", None, "qatlan")
    assert (asset.domain_guids, asset.update_time, asset.updated_by) == (("d1",), 1700000001000, "jsmith")


def test_asset_record_reads_business_attributes_of_a_full_entity():
    entity = column_hit(businessAttributes={"SET": {"CHECKS": 3}}, status="DELETED")
    asset = asset_record(entity, CM)
    assert asset.cm == (("CHECKS", 3), ("SCORE", 82.5)) and asset.status == "DELETED"
    assert asset_record(entity).cm == ()


def test_asset_record_without_parent_attribute_uses_the_qualified_name():
    hit = {"typeName": "Table", "guid": "t1", "attributes": {"name": "T", "qualifiedName": f"{CONN}/DB/SCH/T"}}
    asset = asset_record(hit)
    assert (asset.parent_qn, asset.connection_qn, asset.announcement, asset.tags) == (f"{CONN}/DB/SCH", CONN, None, ())


# --------------------------------------------------------------------------- reading


async def test_assets_are_active_ones_of_the_connections_with_cm_attributes():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).mock(return_value=search_answer(column_hit()))
        assets = [a async for a in atlan().assets([CONN], cm_def=CM)]
    assert [a.guid for a in assets] == ["c1"]
    body = sent(route)
    filters = body["dsl"]["query"]["bool"]["filter"]
    assert {"terms": {"connectionQualifiedName": [CONN]}} in filters
    assert {"terms": {"__typeName.keyword": ["Schema", "Table", "View", "MaterialisedView", "Column"]}} in filters
    assert {"term": {"__state": {"value": "ACTIVE"}}} in filters
    assert {"SET.SCORE", "SET.CHECKS", "domainGUIDs", "announcementType", "tableQualifiedName"} <= set(body["attributes"])


async def test_assets_modified_since_include_deleted_ones():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).mock(return_value=search_answer(column_hit(status="DELETED")))
        assets = [a async for a in atlan().assets([CONN], modified_since_ms=1700000000000)]
    assert assets[0].status == "DELETED"
    filters = sent(route)["dsl"]["query"]["bool"]["filter"]
    assert {"terms": {"__state": ["ACTIVE", "DELETED"]}} in filters
    assert {"range": {"__modificationTimestamp": {"gte": 1700000000000}}} in filters


async def test_assets_of_no_connection_make_no_request():
    with respx.mock(base_url=BASE, assert_all_called=True):
        assert [a async for a in atlan().assets([])] == []


async def test_links_are_read_by_name_and_filtered_by_connection():
    def link(guid, asset):
        return {"typeName": "Link", "guid": guid, "status": "ACTIVE",
                "attributes": {"name": "Qualytics", "qualifiedName": f"q-{guid}", "link": f"https://q/{guid}", "asset": asset}}

    hits = [
        link("l1", {"typeName": "Table", "guid": "t1", "uniqueAttributes": {"qualifiedName": f"{CONN}/DB/SCH/T"}}),
        link("l2", {"typeName": "Table", "guid": "t2", "uniqueAttributes": {"qualifiedName": "default/other/2/DB/S/T"}}),
        link("l3", {"typeName": "Table", "guid": "t3"}),  # asset QN unknown: kept
    ]
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).mock(return_value=search_answer(*hits))
        links = await atlan().links(connection_qns=[CONN])
    assert links == [ALink("l1", "q-l1", "Qualytics", "https://q/l1", "t1"), ALink("l3", "q-l3", "Qualytics", "https://q/l3", "t3")]
    body = sent(route)
    assert {"term": {"name.keyword": {"value": "Qualytics"}}} in body["dsl"]["query"]["bool"]["filter"]
    assert "asset" in body["attributes"] and "link" in body["attributes"]


def entity(guid: str, type_name: str = "Table", status: str = "ACTIVE") -> dict:
    attrs = {"name": guid, "qualifiedName": f"{CONN}/DB/SCH/{guid}"}
    if type_name == "Link":
        attrs.update(link=f"https://q/{guid}", asset={"guid": "t1"})
    return {"typeName": type_name, "guid": guid, "status": status, "attributes": attrs}


async def test_read_entities_asks_for_at_most_100_guids_per_request_and_returns_records():
    wanted = [f"g{i}" for i in range(250)]

    def effect(request):
        return httpx.Response(200, json={"entities": [entity(g) for g in request.url.params.get_list("guid")]})

    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/api/meta/entity/bulk").mock(side_effect=effect)
        found = await atlan().read_entities(wanted)
    assert sorted(found.assets) == sorted(wanted) and found.links == {}
    assert found.assets["g7"].qualified_name == f"{CONN}/DB/SCH/g7"
    assert route.call_count == 3


async def test_read_entities_isolates_an_unknown_guid_and_leaves_out_archived_ones():
    def effect(request):
        guids = request.url.params.get_list("guid")
        if "gone" in guids:
            return httpx.Response(404, json={"errorCode": "ATLAS-404-00-005", "errorMessage": "not found"})
        return httpx.Response(200, json={"entities": [
            entity(g, "Link" if g.startswith("l") else "Table", "DELETED" if g == "old" else "ACTIVE")
            for g in guids]})

    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/api/meta/entity/bulk").mock(side_effect=effect)
        found = await atlan().read_entities(["t1", "gone", "old", "l1"])
    assert sorted(found.assets) == ["t1"]
    assert found.links == {"l1": ALink("l1", f"{CONN}/DB/SCH/l1", "l1", "https://q/l1", "t1")}


async def test_find_links_searches_active_links_by_qualified_name_a_page_at_a_time():
    qns = [f"{CONN}/DB/SCH/T{i}/Qualytics" for i in range(250)]
    hit = {"typeName": "Link", "guid": "l1", "status": "ACTIVE",
           "attributes": {"name": "Qualytics", "qualifiedName": qns[0], "link": "https://q/1"}}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(SEARCH).mock(side_effect=lambda r: search_answer(hit))
        found = await atlan().find_links(qns)
    assert found == {qns[0]: ALink("l1", qns[0], "Qualytics", "https://q/1", None)}
    assert route.call_count == 3  # 100 names per search: the page size
    filters = sent(route)["dsl"]["query"]["bool"]["filter"]
    assert {"term": {"__typeName.keyword": {"value": "Link"}}} in filters
    assert {"term": {"__state": {"value": "ACTIVE"}}} in filters


# --------------------------------------------------------------------------- writing


async def test_bulk_upsert_sends_pyatlan_flags_and_placeholder_guids():
    entities = [{"typeName": "Table", "attributes": {"qualifiedName": f"{CONN}/DB/SCH/T", "name": "T"}},
                {"typeName": "Table", "guid": "real-guid", "attributes": {"qualifiedName": f"{CONN}/DB/SCH/U", "name": "U"}}]
    answer = {"mutatedEntities": {"UPDATE": []}, "guidAssignments": {"-1": "t1"}}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/api/meta/entity/bulk").respond(200, json=answer)
        assert await atlan().bulk_upsert(entities, append_tags=True) == answer
    request = route.calls.last.request
    assert dict(request.url.params) == {"replaceTags": "false", "appendTags": "true",
                                        "replaceBusinessAttributes": "false", "overwriteBusinessAttributes": "false"}
    assert [e["guid"] for e in json.loads(request.content)["entities"]] == ["-1", "real-guid"]
    assert "guid" not in entities[0]  # the caller's entities are not changed


async def test_bulk_upsert_of_nothing_makes_no_request():
    with respx.mock(base_url=BASE, assert_all_called=True):
        assert await atlan().bulk_upsert([]) == {}


async def test_403_on_write_names_the_connection_and_points_to_personas():
    conn_hit = {"typeName": "Connection", "guid": "c", "attributes": {"name": "Snowflake Prod", "qualifiedName": CONN,
                                                                     "connectorName": "snowflake"}}
    denied = {"errorCode": "ATLAS-403-00-001", "errorMessage": "bot is not authorized to perform entity-update"}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.post(SEARCH).mock(return_value=search_answer(conn_hit))
        route = router.post("/api/meta/entity/bulk").respond(403, json=denied)
        client = atlan()
        (conn,) = await client.connections()
        with pytest.raises(PermissionDenied) as info:
            await client.bulk_upsert([{"typeName": "Table", "attributes": {"qualifiedName": f"{CONN}/DB/SCH/T", "name": "T"}}])
    assert conn.connector == "snowflake" and route.call_count == 1
    assert f"connection Snowflake Prod ({CONN})" in info.value.hint
    assert "Atlan → Governance → Personas" in info.value.hint


def _change(part: str, action: Action, before, after, **target) -> Change:
    base = {"side": "atlan", "part": part.partition(":")[0], "guid": "t1", "type_name": "Table",
            "qualified_name": f"{CONN}/DB/SCH/T"}
    return Change(f"atlan:{CONN}/DB/SCH/T#{part}", action, before, after, None, {**base, **target})


async def test_upsert_changes_sends_one_entity_per_asset_and_returns_new_guids():
    names = Names(tags={"pii": "PIIHASH"}, cm_set="SET", cm_attributes={"Score": "SCORE"})
    asset = [_change("tag:PII", Action.CREATE, None, {"name": "PII"}, tag="PII"),
             _change("cm:Qualytics", Action.UPDATE, {"Score": 1.0}, {"Score": 2.0}),
             _change("announcement", Action.DELETE, {"type": "warning", "title": "t", "message": None}, None)]
    link = _change("link", Action.CREATE, None, {"name": "Qualytics", "url": "https://q/1"},
                   link_qualified_name=f"{CONN}/DB/SCH/T/Qualytics", link_guid=None)
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/api/meta/entity/bulk").respond(200, json={"guidAssignments": {"-2": "new-link"}})
        assert await atlan().upsert_changes([(asset, "T"), ([link], None)], names) == {1: "new-link"}
    request = route.calls.last.request
    assert request.url.params["appendTags"] == "true" and request.url.params["replaceBusinessAttributes"] == "true"
    table, new_link = json.loads(request.content)["entities"]
    assert table["guid"] == "t1" and table["attributes"]["name"] == "T"
    assert table["addOrUpdateClassifications"][0]["typeName"] == "PIIHASH"
    assert table["businessAttributes"] == {"SET": {"SCORE": 2.0}}
    assert table["attributes"]["announcementType"] is None
    assert new_link["guid"] == "-2" and new_link["attributes"]["asset"]["uniqueAttributes"]["qualifiedName"] == f"{CONN}/DB/SCH/T"


async def test_delete_entities_archives_by_guid():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.delete("/api/meta/entity/bulk").respond(200, json={})
        await atlan().delete_entities(["l1", "l2"])
    params = route.calls.last.request.url.params
    assert params.get_list("guid") == ["l1", "l2"] and params["deleteType"] == "SOFT"
