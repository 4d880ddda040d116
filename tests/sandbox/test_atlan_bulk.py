"""Contract tests of the sandbox Atlan writes: bulk upsert/delete, tags, CM, announcements, Links, domains."""

from __future__ import annotations

import re

import pytest

from atlan_worlds import (
    CM_CHECKS,
    CM_SCORE,
    CM_SET,
    CM_URL,
    DOMAIN_GUID,
    FINANCE,
    PG,
    PII,
    SCHEMA,
    SNOW,
    auth,
    client,
    guid,
    guids_of,
    search,
    term,
)

META = "/api/meta"
ORDERS = f"{SCHEMA}/ORDERS"
FLAGS = "replaceTags=false&appendTags=false&replaceBusinessAttributes=false&overwriteBusinessAttributes=false"


@pytest.fixture
def cw():
    return client()


def bulk(c, entities: list, query: str = FLAGS, who: str = "admin"):
    return c.post(f"{META}/entity/bulk/?{query}", headers=auth(who), json={"entities": entities})


def updater(qn: str = ORDERS, type_name: str = "Table", placeholder: str = "-9909741541240910", **attrs) -> dict:
    return {"typeName": type_name, "guid": placeholder,
            "attributes": {"qualifiedName": qn, "name": qn.rsplit("/", 1)[-1], **attrs}, "businessAttributes": None}


def stored(world, n_or_guid) -> dict:
    return world.atlan.get(n_or_guid if isinstance(n_or_guid, str) else guid(n_or_guid))


def tags(world, n) -> dict:
    return {t["typeName"]: t for t in stored(world, n)["classifications"] if "entityGuid" not in t}


# ---- upsert basics -----------------------------------------------------------------------

def test_create_assigns_guid_and_answers_create_headers(cw):
    c, w = cw
    new = updater(f"{SCHEMA}/NEW", placeholder="-1", connectionQualifiedName=SNOW)
    body = bulk(c, [new]).json()
    real = body["guidAssignments"]["-1"]
    assert re.match(r"^[0-9a-f-]{36}$", real) and list(body["mutatedEntities"]) == ["CREATE"]
    header = body["mutatedEntities"]["CREATE"][0]
    assert header["guid"] == real and header["attributes"] == {"qualifiedName": f"{SCHEMA}/NEW", "name": "NEW"}
    assert header["status"] == "ACTIVE" and header["createdBy"] == "admin-user"
    assert header["createTime"] == int(w.clock.now * 1000)
    assert c.get(f"{META}/entity/guid/{real}", headers=auth()).status_code == 200


def test_update_matches_by_type_and_qualified_name_and_is_partial(cw):
    c, w = cw
    w.clock.now += 5
    body = bulk(c, [updater(description="orders table", announcementType=None)]).json()
    assert body["guidAssignments"] == {"-9909741541240910": guid(4)}
    assert [h["guid"] for h in body["mutatedEntities"]["UPDATE"]] == [guid(4)]
    attrs = stored(w, 4)["attributes"]
    assert attrs["description"] == "orders table" and "announcementType" not in attrs
    assert attrs["connectionQualifiedName"] == SNOW  # absent keys untouched
    assert stored(w, 4)["updateTime"] == int(w.clock.now * 1000) and stored(w, 4)["updatedBy"] == "admin-user"


def test_update_matches_by_real_guid(cw):
    c, w = cw
    entity = {"typeName": "Table", "guid": guid(5), "attributes": {"qualifiedName": f"{SCHEMA}/CUSTOMERS", "userDescription": "x"}}
    body = bulk(c, [entity]).json()
    assert "guidAssignments" not in body and body["mutatedEntities"]["UPDATE"][0]["guid"] == guid(5)
    assert stored(w, 5)["attributes"]["userDescription"] == "x"


def test_unchanged_entities_are_skipped_but_assigned(cw):
    c, w = cw
    before = dict(stored(w, 4))
    body = bulk(c, [updater(announcementType="warning")]).json()
    assert body == {"guidAssignments": {"-9909741541240910": guid(4)}}
    assert stored(w, 4)["updateTime"] == before["updateTime"]


def test_writes_by_a_persona_without_user_name_use_the_service_account(cw):
    c, w = cw
    bulk(c, [updater(description="d")], who="analyst")
    assert stored(w, 4)["updatedBy"] == "service-account-apikey-analyst"


@pytest.mark.parametrize("body, code", [
    ({"entities": []}, "ATLAS-400-00-01A"),
    ({}, "ATLAS-400-00-01A"),
    ({"entities": [{"attributes": {"qualifiedName": "x"}}]}, "ATLAS-400-00-01A"),
    ({"entities": [{"typeName": "Table", "guid": "-1", "attributes": {"qualifiedName": "x"}}]}, "ATLAS-400-00-02B"),
])
def test_bad_bulk_bodies_are_400(cw, body, code):
    r = cw[0].post(f"{META}/entity/bulk", headers=auth(), json=body)
    assert r.status_code == 400 and r.json()["errorCode"] == code


def test_too_many_entities_is_400_212(cw):
    c, w = cw
    w.atlan.max_bulk_entities = 2
    r = bulk(c, [updater(), updater(f"{SCHEMA}/CUSTOMERS", placeholder="-2"), updater(f"{SCHEMA}/X", placeholder="-3")])
    assert r.status_code == 400
    assert r.json() == {"errorCode": "ATLAS-400-00-212", "errorMessage": "Request Error - Entities should be less than or equal to: 2"}


def test_more_than_one_tag_flag_is_400_029(cw):
    r = bulk(cw[0], [updater()], query="replaceTags=true&appendTags=true")
    assert r.status_code == 400
    assert r.json() == {"errorCode": "ATLAS-400-00-029",
                        "errorMessage": "Only one of [replaceClassifications, replaceTags, appendTags] can be true"}


def test_unknown_real_guid_is_404(cw):
    r = bulk(cw[0], [{"typeName": "Table", "guid": "feedface", "attributes": {"qualifiedName": "nope", "name": "n"}}])
    assert r.status_code == 404 and r.json()["errorCode"] == "ATLAS-404-00-005"


def test_bulk_is_all_or_nothing(cw):
    c, w = cw
    version = w.atlan.version
    r = bulk(c, [updater(description="first"), updater(f"{SCHEMA}/CUSTOMERS", placeholder="-2", domainGUIDs=["nope"])])
    assert r.status_code == 404
    assert "description" not in stored(w, 4)["attributes"] and w.atlan.version == version


def test_writes_outside_the_persona_are_403_and_nothing_is_written(cw):
    c, w = cw
    mixed = [updater(description="mine"), updater(f"{PG}/APP/PUBLIC/USERS", placeholder="-2", description="theirs")]
    r = bulk(c, mixed, who="analyst")
    assert r.status_code == 403 and r.json()["errorCode"] == "ATLAS-403-00-001"
    assert "is not authorized to perform update entity" in r.json()["errorMessage"]
    assert "description" not in stored(w, 4)["attributes"] and "description" not in stored(w, 11)["attributes"]
    assert bulk(c, [updater(description="x")], who="reader").status_code == 403


def test_creating_under_a_connection_outside_the_persona_is_403(cw):
    c, w = cw
    new = updater(f"{PG}/APP/PUBLIC/NEW", placeholder="-1", connectionQualifiedName=PG)
    r = bulk(c, [new], who="analyst")
    assert r.status_code == 403 and "create entity: type=Table" in r.json()["errorMessage"]
    assert w.atlan.find("Table", f"{PG}/APP/PUBLIC/NEW") is None


# ---- tags --------------------------------------------------------------------------------

def tag_obj(name: str, **flags) -> dict:
    return {"typeName": name, "propagate": True, "removePropagationsOnEntityDelete": True,
            "restrictPropagationThroughLineage": False, "restrictPropagationThroughHierarchy": False, **flags}


def test_append_tags_adds_updates_and_removes(cw):
    c, w = cw
    add = {**updater(), "addOrUpdateClassifications": [tag_obj(FINANCE), tag_obj(PII, propagate=False)]}
    bulk(c, [add], query="replaceTags=false&appendTags=true")
    assert set(tags(w, 4)) == {PII, FINANCE} and tags(w, 4)[PII]["propagate"] is False
    remove = {**updater(), "removeClassifications": [tag_obj(PII)]}
    bulk(c, [remove], query="appendTags=true")
    assert set(tags(w, 4)) == {FINANCE}
    again = bulk(c, [{**updater(), "removeClassifications": [tag_obj(PII)]}], query="appendTags=true").json()
    assert "mutatedEntities" not in again  # removing an absent tag is a no-op


def test_without_flags_tags_are_ignored_on_update_but_attached_on_create(cw):
    c, w = cw
    bulk(c, [{**updater(), "classifications": [tag_obj(FINANCE)], "addOrUpdateClassifications": [tag_obj(FINANCE)]}])
    assert set(tags(w, 4)) == {PII}
    created = bulk(c, [{**updater(f"{SCHEMA}/T2", placeholder="-1", connectionQualifiedName=SNOW),
                        "classifications": [tag_obj(FINANCE)]}]).json()
    assert set(tags(w, created["guidAssignments"]["-1"])) == {FINANCE}


def test_append_tags_on_create_attaches_add_or_update_list(cw):
    c, w = cw
    created = bulk(c, [{**updater(f"{SCHEMA}/T3", placeholder="-1", connectionQualifiedName=SNOW),
                        "addOrUpdateClassifications": [tag_obj(PII)]}], query="appendTags=true").json()
    assert set(tags(w, created["guidAssignments"]["-1"])) == {PII}


@pytest.mark.parametrize("flag", ["replaceTags=true", "replaceClassifications=true"])
def test_replace_tags_replaces_direct_tags_and_keeps_propagated(cw, flag):
    c, w = cw
    column = updater(f"{ORDERS}/ID", type_name="Column")
    column["classifications"] = [tag_obj(FINANCE)]
    bulk(c, [column], query=flag)
    stored_tags = stored(w, 7)["classifications"]
    assert {(t["typeName"], t.get("entityGuid")) for t in stored_tags} == {(FINANCE, None), (PII, guid(4))}
    bulk(c, [{**updater(), "classifications": []}], query=flag)
    assert tags(w, 4) == {}


def test_unknown_tag_in_bulk_is_400(cw):
    r = bulk(cw[0], [{**updater(), "addOrUpdateClassifications": [tag_obj("nope")]}], query="appendTags=true")
    assert r.status_code == 400 and r.json()["errorCode"] == "ATLAS-400-00-046"


# ---- custom metadata through bulk --------------------------------------------------------

def test_business_attributes_need_replace_flag_on_update(cw):
    c, w = cw
    payload = {**updater(), "businessAttributes": {CM_SET: {CM_URL: "u"}}}
    bulk(c, [payload])
    assert CM_URL not in stored(w, 4)["businessAttributes"][CM_SET]
    bulk(c, [payload], query="replaceBusinessAttributes=true&overwriteBusinessAttributes=false")
    assert stored(w, 4)["businessAttributes"] == {CM_SET: {CM_SCORE: 97.5, CM_CHECKS: 4, CM_URL: "u"}}
    bulk(c, [{**updater(), "businessAttributes": {CM_SET: {CM_SCORE: None}}}], query="replaceBusinessAttributes=true")
    assert stored(w, 4)["businessAttributes"] == {CM_SET: {CM_CHECKS: 4, CM_URL: "u"}}


def test_overwrite_business_attributes_replaces_everything(cw):
    c, w = cw
    query = "replaceClassifications=false&replaceBusinessAttributes=true&overwriteBusinessAttributes=true"
    bulk(c, [{**updater(), "businessAttributes": {CM_SET: {CM_URL: "only"}}}], query=query)
    assert stored(w, 4)["businessAttributes"] == {CM_SET: {CM_URL: "only"}}
    bulk(c, [{**updater(), "businessAttributes": {}}], query=query)
    assert stored(w, 4)["businessAttributes"] == {}


def test_business_attributes_apply_on_create_and_unknown_sets_are_400(cw):
    c, w = cw
    new = {**updater(f"{SCHEMA}/T4", placeholder="-1", connectionQualifiedName=SNOW),
           "businessAttributes": {CM_SET: {CM_SCORE: 50.0}}}
    created = bulk(c, [new]).json()["guidAssignments"]["-1"]
    assert stored(w, created)["businessAttributes"] == {CM_SET: {CM_SCORE: 50.0}}
    bad = bulk(c, [{**updater(), "businessAttributes": {"nope": {}}}], query="replaceBusinessAttributes=true")
    assert bad.status_code == 400 and bad.json()["errorCode"] == "ATLAS-400-00-095"


# ---- announcements -----------------------------------------------------------------------

def test_announcement_set_and_cleared_through_bulk(cw):
    c, w = cw
    bulk(c, [updater(f"{SCHEMA}/CUSTOMERS", announcementType="issue", announcementTitle="Broken", announcementMessage="m")])
    assert stored(w, 5)["attributes"]["announcementTitle"] == "Broken"
    bulk(c, [updater(f"{SCHEMA}/CUSTOMERS", announcementType=None, announcementTitle=None, announcementMessage=None)])
    assert not {"announcementType", "announcementTitle", "announcementMessage"} & set(stored(w, 5)["attributes"])


def test_announcement_through_unique_attribute_put_is_a_partial_update(cw):
    c, w = cw
    entity = {"typeName": "Table", "attributes": {"qualifiedName": ORDERS, "name": "ORDERS", "announcementType": "warning",
                                                  "announcementTitle": "Stale", "announcementMessage": "Not refreshed"},
              "businessAttributes": None}
    r = c.put(f"{META}/entity/uniqueAttribute/type/Table", params={"attr:qualifiedName": ORDERS}, headers=auth(),
              json={"entity": entity})
    assert r.status_code == 200
    body = r.json()
    assert [h["guid"] for h in body["mutatedEntities"]["PARTIAL_UPDATE"]] == [guid(4)]
    assert body["partialUpdatedEntities"] == body["mutatedEntities"]["PARTIAL_UPDATE"]
    assert stored(w, 4)["attributes"]["announcementTitle"] == "Stale"
    assert stored(w, 4)["businessAttributes"][CM_SET][CM_SCORE] == 97.5


def test_unique_attribute_put_errors(cw):
    c, _ = cw
    missing = c.put(f"{META}/entity/uniqueAttribute/type/Table", params={"attr_qualifiedName": "nope"}, headers=auth(),
                    json={"entity": {"typeName": "Table", "attributes": {"qualifiedName": "nope"}}})
    assert missing.status_code == 404 and missing.json()["errorCode"] == "ATLAS-404-00-009"
    denied = c.put(f"{META}/entity/uniqueAttribute/type/Table", params={"attr:qualifiedName": ORDERS},
                   headers=auth("outsider"), json={"entity": {"typeName": "Table", "attributes": {"announcementType": "issue"}}})
    assert denied.status_code == 403


# ---- links -------------------------------------------------------------------------------

def link(qn: str, asset_ref: dict, name: str = "Qualytics", url: str = "https://q/x") -> dict:
    return {"typeName": "Link", "guid": "-514608170482129",
            "attributes": {"qualifiedName": qn, "name": name, "link": url, "asset": asset_ref}, "businessAttributes": None}


def test_creating_a_link_by_asset_qualified_name(cw):
    c, w = cw
    ref = {"typeName": "Table", "uniqueAttributes": {"qualifiedName": f"{SCHEMA}/CUSTOMERS"}}
    body = bulk(c, [link("917e13f1-0bdc-4f00-8ce9-1c9dc1cba4ac", ref)], who="analyst").json()
    new_guid = body["guidAssignments"]["-514608170482129"]
    assert [h["guid"] for h in body["mutatedEntities"]["CREATE"]] == [new_guid]
    assert [h["guid"] for h in body["mutatedEntities"]["UPDATE"]] == [guid(5)]
    assert stored(w, new_guid)["attributes"]["qualifiedName"] == "917e13f1-0bdc-4f00-8ce9-1c9dc1cba4ac"
    hit = search(c, term("__guid", guid(5)), attributes=["links"], relationAttributes=["link"]).json()["entities"][0]
    assert [(h["guid"], h["attributes"]["link"]) for h in hit["attributes"]["links"]] == [(new_guid, "https://q/x")]


def test_creating_a_link_by_asset_guid_and_searching_links(cw):
    c, w = cw
    bulk(c, [link(f"{ORDERS}/Qualytics", {"typeName": "Table", "guid": guid(4)})])
    found = search(c, {"bool": {"filter": [term("__typeName.keyword", "Link"), term("__state", "ACTIVE")]}},
                   attributes=["asset", "link"]).json()["entities"]
    assert {f["attributes"]["asset"]["guid"] for f in found} == {guid(4)} and len(found) == 2


def test_a_link_is_visible_and_updatable_when_its_asset_is(cw):
    c, w = cw
    renamed = {"typeName": "Link", "guid": guid(13), "attributes": {"qualifiedName": "link-1", "name": "Runbook 2"}}
    assert bulk(c, [renamed], who="analyst").status_code == 200
    assert stored(w, 13)["attributes"]["name"] == "Runbook 2"
    assert bulk(c, [renamed], who="outsider").status_code == 403
    assert guid(13) not in guids_of(search(c, term("__typeName.keyword", "Link"), who="outsider"))


def test_a_link_on_an_asset_outside_the_persona_is_403(cw):
    c, w = cw
    r = bulk(c, [link("x-1", {"typeName": "Table", "guid": guid(4)})], who="outsider")
    assert r.status_code == 403 and w.atlan.find("Link", "x-1") is None


def test_a_link_to_a_missing_asset_is_404(cw):
    r = bulk(cw[0], [link("x-2", {"typeName": "Table", "uniqueAttributes": {"qualifiedName": "nope"}})])
    assert r.status_code == 404 and r.json()["errorCode"] == "ATLAS-404-00-00A"


def test_a_link_to_an_asset_created_in_the_same_request(cw):
    c, w = cw
    table = updater(f"{SCHEMA}/T5", placeholder="-7", connectionQualifiedName=SNOW)
    body = bulk(c, [table, link("x-3", {"typeName": "Table", "guid": "-7"})]).json()
    assert len(body["mutatedEntities"]["CREATE"]) == 2
    assert stored(w, body["guidAssignments"]["-514608170482129"])["attributes"]["asset"]["guid"] == body["guidAssignments"]["-7"]


# ---- domains -----------------------------------------------------------------------------

def test_domain_guids_are_validated(cw):
    c, w = cw
    assert bulk(c, [updater(domainGUIDs=[DOMAIN_GUID])]).status_code == 200
    assert stored(w, 4)["attributes"]["domainGUIDs"] == [DOMAIN_GUID]
    two = bulk(c, [updater(domainGUIDs=[DOMAIN_GUID, guid(1)])])
    assert two.status_code == 400 and "Asset can be linked to only one domain" in two.json()["errorMessage"]
    assert two.json()["errorCode"] == "ATLAS-400-00-01A"
    assert bulk(c, [updater(domainGUIDs=["nope"])]).json()["errorCode"] == "ATLAS-404-00-005"
    assert bulk(c, [updater(domainGUIDs=[guid(5)])]).status_code == 400
    bulk(c, [updater(domainGUIDs=[])])
    assert "domainGUIDs" not in stored(w, 4)["attributes"]


def test_creating_domains_replaces_the_qualified_name(cw):
    c, w = cw
    top = {"typeName": "DataDomain", "guid": "-1", "attributes": {"qualifiedName": "Finance", "name": "Finance",
                                                                    "parentDomainQualifiedName": None}}
    assert bulk(c, [top], who="analyst").status_code == 403  # domains need update ["*"]
    body = bulk(c, [top]).json()
    top_guid = body["guidAssignments"]["-1"]
    top_qn = stored(w, top_guid)["attributes"]["qualifiedName"]
    assert re.match(r"^default/domain/[A-Za-z0-9_-]{21}/super$", top_qn)
    sub = {"typeName": "DataDomain", "guid": "-2", "attributes": {"qualifiedName": "Payments", "name": "Payments",
                                                                    "parentDomain": {"typeName": "DataDomain", "guid": top_guid}}}
    sub_attrs = stored(w, bulk(c, [sub]).json()["guidAssignments"]["-2"])["attributes"]
    assert sub_attrs["qualifiedName"].startswith(f"{top_qn}/domain/")
    assert sub_attrs["parentDomainQualifiedName"] == top_qn == sub_attrs["superDomainQualifiedName"]


# ---- deletes -----------------------------------------------------------------------------

def test_soft_delete_archives(cw):
    c, w = cw
    r = c.delete(f"{META}/entity/bulk/", params=[("deleteType", "SOFT"), ("guid", guid(5)), ("guid", guid(6))], headers=auth())
    assert r.status_code == 200
    assert [h["guid"] for h in r.json()["mutatedEntities"]["DELETE"]] == [guid(5), guid(6)]
    assert stored(w, 5)["status"] == "DELETED"
    assert guid(5) not in guids_of(search(c, term("__state", "ACTIVE")))


def test_purge_removes_the_asset_and_its_links(cw):
    c, w = cw
    r = c.delete(f"{META}/entity/bulk", params={"deleteType": "PURGE", "guid": guid(4)}, headers=auth())
    assert [h["guid"] for h in r.json()["mutatedEntities"]["DELETE"]] == [guid(4)]
    assert stored(w, 4) is None and stored(w, 13) is None
    assert c.get(f"{META}/entity/guid/{guid(4)}", headers=auth()).status_code == 404


def test_delete_errors(cw):
    c, w = cw
    assert c.delete(f"{META}/entity/bulk", params={"guid": "nope"}, headers=auth()).status_code == 404
    denied = c.delete(f"{META}/entity/bulk", params={"guid": guid(4), "deleteType": "SOFT"}, headers=auth("outsider"))
    assert denied.status_code == 403 and stored(w, 4)["status"] == "ACTIVE"
