"""AtlanClient: typedefs and their name cache, domains, converters, reading and writing."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from qatlan.clients import AtlanClient, HttpClient, asset_record, resolve_domains
from qatlan.errors import ConfigError, PermissionDenied
from qatlan.model import ACMAttribute, ACMDef, ADomain, ALink, Announcement, ATagDef

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


async def test_typedefs_sends_repeated_type_params():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get(TYPEDEFS).mock(side_effect=typedef_server([PII], []))
        await atlan().typedefs("CLASSIFICATION", "STRUCT")
    assert route.calls.last.request.url.params.get_list("type") == ["CLASSIFICATION", "STRUCT"]


async def test_tag_names_resolve_through_a_cache_refreshed_once_on_a_miss():
    defs = [PII]
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get(TYPEDEFS).mock(side_effect=typedef_server(defs, []))
        client = atlan()
        assert await client.tag_hash("PII") == PII["name"]  # first use loads
        assert await client.tag_hash("PII") == PII["name"]  # cached
        assert await client.tag_display(PII["name"]) == "PII"
        assert route.call_count == 1
        defs.append(NEW)  # created in Atlan by someone else
        assert await client.tag_hash("New") == NEW["name"]  # miss: one refresh finds it
        assert route.call_count == 2
        assert await client.tag_hash("Nope") is None  # miss: one refresh, still unknown
        assert await client.tag_hash("Nope") is None  # remembered: no request
        assert route.call_count == 3


async def test_cm_defs_skip_archived_attributes_and_keep_the_ui_type():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get(TYPEDEFS).mock(side_effect=typedef_server([], [QSET]))
        client = atlan()
        (cm,) = await client.cm_defs()
        assert (await client.cm_set("Qualytics")) == cm
    assert cm.hashed_name == QSET["name"] and cm.display_name == "Qualytics"
    assert cm.attributes == (
        ACMAttribute("kD9sLq2WvZ1x3c4v5b6n7m", "Score", "float"),
        ACMAttribute("uRl0000000000000000000", "URL", "url"),
    )


async def test_create_tag_defs_posts_classification_defs_and_caches_the_hashed_names():
    created = {"classificationDefs": [dict(PII, guid="x")], "businessMetadataDefs": []}
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post(TYPEDEFS).respond(200, json=created)
        client = atlan()
        assert await client.create_tag_defs(["PII"]) == [ATagDef(PII["name"], "PII")]
        assert await client.tag_hash("PII") == PII["name"]  # from the cache, no GET
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


def domain(guid, name, qn, parent=None):
    return ADomain(guid=guid, qualified_name=qn, name=name, parent_qn=parent)


SALES = domain("d1", "Sales", "default/domain/aaa/super")
EMEA = domain("d2", "EMEA", "default/domain/aaa/super/domain/bbb", SALES.qualified_name)
UK = domain("d3", "UK", "default/domain/aaa/super/domain/bbb/domain/ccc", EMEA.qualified_name)
ORPHAN_QN = domain("d4", "Partners", "default/domain/aaa/super/domain/ddd")  # parent only by QN prefix
HR = domain("d5", "HR", "default/domain/zzz/super")
EMEA_HR = domain("d6", "EMEA", "default/domain/zzz/super/domain/yyy", HR.qualified_name)
ALL = [SALES, EMEA, UK, ORPHAN_QN, HR, EMEA_HR]


def test_domain_names_resolve_to_their_guids_and_all_subdomains():
    assert resolve_domains(ALL, ["Sales"]) == {"d1", "d2", "d3", "d4"}
    assert resolve_domains(ALL, ["hr"]) == {"d5", "d6"}  # case-insensitive when unique
    assert resolve_domains(ALL, ["d2", "UK"]) == {"d2", "d3"}  # by GUID too
    assert resolve_domains(ALL, []) == set()


def test_unknown_domain_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"domain 'Finance' not found in Atlan; known domains: EMEA, HR, Partners, Sales, UK"):
        resolve_domains(ALL, ["Finance"])


def test_ambiguous_domain_name_asks_for_the_guid():
    with pytest.raises(ConfigError, match=r"domain 'EMEA' matches 2 Atlan domains: d2 .*; d6 .*GUID"):
        resolve_domains(ALL, ["EMEA"])


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


async def test_get_entities_asks_for_at_most_100_guids_per_request():
    wanted = [f"g{i}" for i in range(250)]

    def effect(request):
        return httpx.Response(200, json={"entities": [{"guid": g} for g in request.url.params.get_list("guid")]})

    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/api/meta/entity/bulk").mock(side_effect=effect)
        entities = await atlan().get_entities(wanted)
    assert [e["guid"] for e in entities] == wanted
    assert route.call_count == 3


async def test_get_by_qualified_name_returns_none_when_atlan_has_none():
    qn = f"{CONN}/DB/SCH/T"
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.get("/api/meta/entity/uniqueAttribute/type/Table").mock(side_effect=[
            httpx.Response(200, json={"entity": {"guid": "t1"}}),
            httpx.Response(404, json={"errorCode": "ATLAS-404-00-009", "errorMessage": "does not exist"}),
        ])
        client = atlan()
        assert await client.get_by_qualified_name("Table", qn) == {"guid": "t1"}
        assert await client.get_by_qualified_name("Table", qn) is None
    assert route.calls.last.request.url.params["attr:qualifiedName"] == qn


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


async def test_set_custom_metadata_posts_hashed_values_to_the_set():
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/api/meta/entity/guid/t1/businessmetadata/SET").respond(204)
        assert await atlan().set_custom_metadata("t1", "SET", {"SCORE": 82.5, "CHECKS": None}) is None
    assert sent(route) == {"SCORE": 82.5, "CHECKS": None}
