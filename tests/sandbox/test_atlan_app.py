"""Contract tests of the sandbox Atlan API: auth, typedefs, entity reads, custom metadata, tags."""

from __future__ import annotations

import re

import pytest

from atlan_worlds import (
    CM_CHECKS,
    CM_SCORE,
    CM_SET,
    CM_URL,
    FINANCE,
    PII,
    SCHEMA,
    auth,
    client,
    guid,
)

HASHED = re.compile(r"^[A-Za-z][A-Za-z0-9]{21}$")
META = "/api/meta"


@pytest.fixture
def c():
    return client()[0]


def entity_of(c, n: int, who: str = "admin") -> dict:
    r = c.get(f"{META}/entity/guid/{guid(n)}", headers=auth(who))
    assert r.status_code == 200, r.json()
    return r.json()["entity"]


# ---- auth, paths, errors -----------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic tok-admin"},
                                     {"Authorization": "Bearer "}])
def test_missing_or_unknown_token_is_401_in_atlas_shape(c, headers):
    r = c.get(f"{META}/types/typedefs", headers=headers)
    assert r.status_code == 401
    assert r.json()["errorCode"] == "ATLAS-401-00-001" and r.json()["errorMessage"]
    assert "nope" not in r.json()["errorMessage"]


def test_every_path_answers_with_and_without_trailing_slash(c):
    for path in (f"{META}/types/typedefs", f"{META}/types/typedefs/", f"{META}/entity/guid/{guid(4)}/"):
        assert c.get(path, headers=auth()).status_code == 200
    body = {"entities": [{"typeName": "Table", "guid": "-1", "attributes": {"qualifiedName": f"{SCHEMA}/ORDERS", "name": "ORDERS"}}]}
    assert c.post(f"{META}/entity/bulk/", headers=auth(), json=body).status_code == 200


def test_unknown_path_and_wrong_method_answer_in_atlas_shape(c):
    assert c.get(f"{META}/nothing", headers=auth()).json()["errorCode"] == "ATLAS-404-00-019"
    r = c.delete(f"{META}/search/indexsearch", headers=auth())
    assert r.status_code == 405 and r.json()["errorCode"] == "ATLAS-405-00-001"


def test_invalid_json_body_is_a_400(c):
    r = c.post(f"{META}/entity/bulk", headers={**auth(), "content-type": "application/json"}, content=b"{nope")
    assert r.status_code == 400 and r.json()["errorCode"] == "ATLAS-400-00-029"


# ---- typedefs ----------------------------------------------------------------------------

def test_get_typedefs_always_has_six_arrays_and_a_struct_def(c):
    body = c.get(f"{META}/types/typedefs/", headers=auth()).json()
    assert set(body) == {"enumDefs", "structDefs", "classificationDefs", "entityDefs", "relationshipDefs", "businessMetadataDefs"}
    assert "SourceTagAttachment" in [d["name"] for d in body["structDefs"]]
    pii = next(d for d in body["classificationDefs"] if d["name"] == PII)
    assert pii["displayName"] == "PII" and pii["category"] == "CLASSIFICATION" and pii["guid"]


def test_get_typedefs_honours_repeated_case_insensitive_type(c):
    body = c.get(f"{META}/types/typedefs", params=[("type", "classification"), ("type", "STRUCT")], headers=auth()).json()
    assert [d["name"] for d in body["classificationDefs"]] == [PII, FINANCE]
    assert body["structDefs"] and body["businessMetadataDefs"] == [] and body["enumDefs"] == []
    only_cm = c.get(f"{META}/types/typedefs", params={"type": "business_metadata"}, headers=auth()).json()
    assert [d["name"] for d in only_cm["businessMetadataDefs"]] == [CM_SET] and only_cm["classificationDefs"] == []


def test_get_typedef_by_name_and_404(c):
    assert c.get(f"{META}/types/typedef/name/{CM_SET}", headers=auth()).json()["displayName"] == "Qualytics"
    assert c.get(f"{META}/types/typedef/name/SourceTagAttachment", headers=auth()).json()["category"] == "STRUCT"
    r = c.get(f"{META}/types/typedef/name/nope", headers=auth())
    assert r.status_code == 404
    assert r.json() == {"errorCode": "ATLAS-404-00-001", "errorMessage": "Given typename nope was invalid"}


def new_tag(display: str) -> dict:
    return {"classificationDefs": [{"category": "CLASSIFICATION", "name": display, "displayName": display,
                                    "options": {"color": "Red", "iconType": "icon", "imageID": ""},
                                    "skipDisplayNameUniquenessCheck": False}],
            "enumDefs": [], "structDefs": [], "entityDefs": [], "relationshipDefs": [], "businessMetadataDefs": []}


def new_cm_set(display: str) -> dict:
    attrs = [
        {"displayName": "Score", "name": "", "isNew": True, "typeName": "float", "valuesMinCount": 0.0,
         "valuesMaxCount": 1.0, "options": {"primitiveType": "float", "multiValueSelect": False,
                                            "applicableEntityTypes": '["Asset"]', "maxStrLength": "100000000"}},
        {"displayName": "Rows", "typeName": "int", "options": {"primitiveType": "int"}},
    ]
    return {"businessMetadataDefs": [{"category": "BUSINESS_METADATA", "name": display, "displayName": display,
                                      "options": {"emoji": "x", "isLocked": False, "logoType": "emoji"},
                                      "attributeDefs": attrs}]}


def test_creating_a_tag_generates_a_hashed_name(c):
    r = c.post(f"{META}/types/typedefs", headers=auth(), json=new_tag("Quality Issue"))
    assert r.status_code == 200
    created = r.json()["classificationDefs"][0]
    assert HASHED.match(created["name"]) and created["name"] != "Quality Issue"
    assert created["displayName"] == "Quality Issue" and created["createdBy"] == "admin-user"
    assert created["options"] == {"color": "Red", "iconType": "icon", "imageID": ""}
    assert set(r.json()) >= {"enumDefs", "structDefs", "businessMetadataDefs"}
    assert c.get(f"{META}/types/typedef/name/{created['name']}", headers=auth()).status_code == 200


def test_hashed_names_are_deterministic_per_world():
    names = []
    for _ in range(2):
        c, _ = client()
        names.append(c.post(f"{META}/types/typedefs", headers=auth(), json=new_cm_set("Sync")).json())
    assert names[0]["businessMetadataDefs"][0]["name"] == names[1]["businessMetadataDefs"][0]["name"]


def test_creating_a_cm_set_hashes_attributes_and_stringifies_options(c):
    created = c.post(f"{META}/types/typedefs", headers=auth(), json=new_cm_set("Sync Stats")).json()["businessMetadataDefs"][0]
    assert HASHED.match(created["name"])
    score, rows = created["attributeDefs"]
    assert HASHED.match(score["name"]) and HASHED.match(rows["name"]) and score["name"] != rows["name"]
    assert score["displayName"] == "Score" and "isNew" not in score
    assert score["options"]["multiValueSelect"] == "false" and score["valuesMaxCount"] == 1
    assert created["options"]["isLocked"] == "false"


def test_duplicate_display_name_is_409_unless_allowed(c):
    r = c.post(f"{META}/types/typedefs", headers=auth(), json=new_tag("PII"))
    assert r.status_code == 409
    assert r.json() == {"errorCode": "ATLAS-409-00-012", "errorMessage": "Given type PII already exists"}
    r = c.post(f"{META}/types/typedefs?allowDuplicateDisplayName=true", headers=auth(), json=new_tag("PII"))
    assert r.status_code == 200


def test_typedef_writes_need_manage_typedefs(c):
    for method in ("post", "put"):
        r = getattr(c, method)(f"{META}/types/typedefs", headers=auth("analyst"), json=new_tag("X"))
        assert r.status_code == 403 and r.json()["errorCode"] == "ATLAS-403-00-001"
    assert c.delete(f"{META}/types/typedef/name/{FINANCE}", headers=auth("analyst")).status_code == 403


def test_put_typedef_updates_and_names_new_attributes(c):
    current = c.get(f"{META}/types/typedef/name/{CM_SET}", headers=auth()).json()
    current["attributeDefs"].append({"displayName": "Last Scan", "typeName": "date", "options": {"primitiveType": "date"}})
    current["description"] = "from Qualytics"
    r = c.put(f"{META}/types/typedefs", headers=auth(), json={"businessMetadataDefs": [current]})
    assert r.status_code == 200
    updated = r.json()["businessMetadataDefs"][0]
    names = [a["name"] for a in updated["attributeDefs"]]
    assert names[:3] == [CM_SCORE, CM_CHECKS, CM_URL] and HASHED.match(names[3])
    assert updated["version"] == 2 and updated["description"] == "from Qualytics"


def test_put_unknown_typedef_is_404_and_duplicate_attribute_is_409(c):
    r = c.put(f"{META}/types/typedefs", headers=auth(), json={"classificationDefs": [{"name": "nope", "displayName": "x"}]})
    assert r.status_code == 404
    current = c.get(f"{META}/types/typedef/name/{CM_SET}", headers=auth()).json()
    current["attributeDefs"].append({"displayName": "Score", "typeName": "float"})
    assert c.put(f"{META}/types/typedefs", headers=auth(), json={"businessMetadataDefs": [current]}).status_code == 409


def test_delete_typedef_refuses_while_used_then_deletes(c):
    r = c.delete(f"{META}/types/typedef/name/{FINANCE}", headers=auth())
    assert r.status_code == 409 and r.json()["errorCode"] == "ATLAS-409-00-002"
    tag = c.post(f"{META}/types/typedefs", headers=auth(), json=new_tag("Temp")).json()["classificationDefs"][0]["name"]
    assert c.delete(f"{META}/types/typedef/name/{tag}", headers=auth()).status_code == 204
    assert c.get(f"{META}/types/typedef/name/{tag}", headers=auth()).status_code == 404


def test_create_typedef_without_display_name_is_a_400(c):
    r = c.post(f"{META}/types/typedefs", headers=auth(), json={"classificationDefs": [{"name": "x"}]})
    assert r.status_code == 400 and r.json()["errorCode"] == "ATLAS-400-00-09E"


# ---- reading entities --------------------------------------------------------------------

def test_get_entity_by_guid_shape(c):
    body = c.get(f"{META}/entity/guid/{guid(4)}", params={"minExtInfo": "false", "ignoreRelationships": "false"},
                 headers=auth()).json()
    assert body["referredEntities"] == {}
    ent = body["entity"]
    assert ent["typeName"] == "Table" and ent["status"] == "ACTIVE" and ent["guid"] == guid(4)
    assert ent["attributes"]["qualifiedName"] == f"{SCHEMA}/ORDERS"
    assert ent["businessAttributes"] == {CM_SET: {CM_SCORE: 97.5, CM_CHECKS: 4}}
    assert ent["classifications"][0]["typeName"] == PII and ent["classifications"][0]["entityGuid"] == guid(4)
    assert [link["guid"] for link in ent["relationshipAttributes"]["links"]] == [guid(13)]
    assert {"createTime", "updateTime", "createdBy", "updatedBy", "labels", "meanings"} <= set(ent)


def test_get_entity_ignoring_relationships_and_a_link_relates_to_its_asset(c):
    assert entity_of(c, 4)["relationshipAttributes"]["links"]
    ignored = c.get(f"{META}/entity/guid/{guid(4)}?ignoreRelationships=true", headers=auth()).json()["entity"]
    assert ignored["relationshipAttributes"] == {}
    link = entity_of(c, 13)
    assert link["relationshipAttributes"]["asset"]["guid"] == guid(4) and "asset" not in link["attributes"]


def test_unknown_guid_is_404(c):
    r = c.get(f"{META}/entity/guid/nope", headers=auth())
    assert r.status_code == 404
    assert r.json() == {"errorCode": "ATLAS-404-00-005", "errorMessage": "Given instance guid nope is invalid/not found"}


def test_reading_an_asset_outside_the_persona_is_403(c):
    r = c.get(f"{META}/entity/guid/{guid(4)}", headers=auth("outsider"))
    assert r.status_code == 403
    assert r.json() == {"errorCode": "ATLAS-403-00-001", "errorMessage":
                        f"service-account-apikey-outsider is not authorized to perform read entity: guid={guid(4)}"}
    assert c.get(f"{META}/entity/guid/{guid(13)}", headers=auth("outsider")).status_code == 403  # Link of that asset


def test_get_by_unique_attribute_with_both_prefixes(c):
    for key in ("attr:qualifiedName", "attr_qualifiedName"):
        r = c.get(f"{META}/entity/uniqueAttribute/type/Table", params={key: f"{SCHEMA}/ORDERS"}, headers=auth())
        assert r.json()["entity"]["guid"] == guid(4)
    r = c.get(f"{META}/entity/uniqueAttribute/type/View", params={"attr:qualifiedName": f"{SCHEMA}/ORDERS"}, headers=auth())
    assert r.status_code == 404
    assert r.json() == {"errorCode": "ATLAS-404-00-009", "errorMessage":
                        f"Instance View with unique attribute {{qualifiedName={SCHEMA}/ORDERS}} does not exist"}


def test_get_bulk_by_guids(c):
    r = c.get(f"{META}/entity/bulk", params=[("guid", guid(4)), ("guid", guid(5))], headers=auth())
    assert [e["guid"] for e in r.json()["entities"]] == [guid(4), guid(5)]
    assert c.get(f"{META}/entity/bulk", params={"guid": "nope"}, headers=auth()).status_code == 404
    assert c.get(f"{META}/entity/bulk", params={"guid": guid(4)}, headers=auth("outsider")).status_code == 403


def test_domains_are_readable_by_every_token(c):
    from atlan_worlds import DOMAIN_GUID

    assert c.get(f"{META}/entity/guid/{DOMAIN_GUID}", headers=auth("outsider")).status_code == 200


# ---- custom metadata endpoints -----------------------------------------------------------

def cm_of(c, n: int) -> dict:
    return entity_of(c, n).get("businessAttributes", {})


def test_cm_per_set_merges_and_null_removes(c):
    r = c.post(f"{META}/entity/guid/{guid(4)}/businessmetadata/{CM_SET}", headers=auth(),
               json={CM_SCORE: 88.0, CM_CHECKS: None, CM_URL: "https://q/1"})
    assert r.status_code == 204 and r.content == b""
    assert cm_of(c, 4) == {CM_SET: {CM_SCORE: 88.0, CM_URL: "https://q/1"}}


def test_cm_write_sets_update_time_and_user():
    c, world = client()
    world.clock.now += 60
    c.post(f"{META}/entity/guid/{guid(5)}/businessmetadata/{CM_SET}", headers=auth("analyst"), json={CM_SCORE: 1.0})
    ent = entity_of(c, 5)
    assert ent["updateTime"] == int(world.clock.now * 1000)
    assert ent["updatedBy"] == "service-account-apikey-analyst"


def test_cm_all_sets_merge_or_overwrite(c):
    url = f"{META}/entity/guid/{guid(4)}/businessmetadata"
    assert c.post(url, params={"isOverwrite": "false"}, headers=auth(), json={CM_SET: {CM_URL: "u"}}).status_code == 204
    assert cm_of(c, 4) == {CM_SET: {CM_SCORE: 97.5, CM_CHECKS: 4, CM_URL: "u"}}
    c.post(url, params={"isOverwrite": "true"}, headers=auth(), json={CM_SET: {CM_CHECKS: 1}})
    assert cm_of(c, 4) == {CM_SET: {CM_CHECKS: 1}}
    c.post(url, params={"isOverwrite": "false"}, headers=auth(), json={CM_SET: {}})
    assert cm_of(c, 4) == {}


def test_cm_by_display_names(c):
    r = c.post(f"{META}/entity/guid/{guid(5)}/businessmetadata/displayName", params={"isOverwrite": "false"},
               headers=auth(), json={"Qualytics": {"Score": 12.5, "Active Checks": 3}})
    assert r.status_code == 204
    assert cm_of(c, 5) == {CM_SET: {CM_SCORE: 12.5, CM_CHECKS: 3}}
    bad = c.post(f"{META}/entity/guid/{guid(5)}/businessmetadata/displayName", headers=auth(), json={"Nope": {"x": 1}})
    assert bad.status_code == 400


def test_cm_delete_variants_remove_given_attributes(c):
    c.request("DELETE", f"{META}/entity/guid/{guid(4)}/businessmetadata/{CM_SET}", headers=auth(), json={CM_SCORE: None})
    assert cm_of(c, 4) == {CM_SET: {CM_CHECKS: 4}}
    r = c.request("DELETE", f"{META}/entity/guid/{guid(4)}/businessmetadata", headers=auth(), json={CM_SET: {CM_CHECKS: 4}})
    assert r.status_code == 204 and cm_of(c, 4) == {}


def test_cm_errors_unknown_set_attribute_guid_and_persona(c):
    url = f"{META}/entity/guid/{guid(4)}/businessmetadata"
    assert c.post(f"{url}/nope", headers=auth(), json={CM_SCORE: 1}).json()["errorCode"] == "ATLAS-400-00-095"
    assert c.post(f"{url}/{CM_SET}", headers=auth(), json={"nope": 1}).json()["errorCode"] == "ATLAS-400-00-023"
    assert c.post(f"{META}/entity/guid/nope/businessmetadata/{CM_SET}", headers=auth(), json={}).status_code == 404
    r = c.post(f"{url}/{CM_SET}", headers=auth("outsider"), json={CM_SCORE: 1})
    assert r.status_code == 403 and cm_of(c, 4)[CM_SET][CM_SCORE] == 97.5
    assert c.post(f"{url}/{CM_SET}", headers=auth("reader"), json={CM_SCORE: 1}).status_code == 403


# ---- classification endpoints ------------------------------------------------------------

def test_list_classifications_includes_propagated(c):
    body = c.get(f"{META}/entity/guid/{guid(7)}/classifications", headers=auth()).json()
    assert body["totalCount"] == 1 and body["list"][0]["entityGuid"] == guid(4)


def test_add_update_and_delete_a_classification(c):
    url = f"{META}/entity/guid/{guid(5)}/classifications"
    assert c.post(url, headers=auth(), json=[{"typeName": PII, "propagate": False}]).status_code == 204
    again = c.post(url, headers=auth(), json=[{"typeName": PII}])
    assert again.status_code == 400 and again.json()["errorCode"] == "ATLAS-400-00-01A"
    assert c.put(url, headers=auth(), json=[{"typeName": PII, "propagate": True}]).status_code == 204
    tags = {t["typeName"]: t for t in entity_of(c, 5)["classifications"]}
    assert set(tags) == {PII, FINANCE} and tags[PII]["propagate"] is True
    assert c.delete(f"{META}/entity/guid/{guid(5)}/classification/{PII}", headers=auth()).status_code == 204
    gone = c.delete(f"{META}/entity/guid/{guid(5)}/classification/{PII}", headers=auth())
    assert gone.status_code == 400 and gone.json()["errorCode"] == "ATLAS-400-00-06D"


def test_classification_endpoint_errors(c):
    url = f"{META}/entity/guid/{guid(5)}/classifications"
    assert c.put(url, headers=auth(), json=[{"typeName": PII}]).json()["errorCode"] == "ATLAS-400-00-06D"
    assert c.post(url, headers=auth(), json=[{"typeName": "nope"}]).json()["errorCode"] == "ATLAS-400-00-046"
    assert c.post(url, headers=auth("outsider"), json=[{"typeName": PII}]).status_code == 403
    propagated = c.delete(f"{META}/entity/guid/{guid(7)}/classification/{PII}?associatedEntityGuid={guid(4)}", headers=auth())
    assert propagated.status_code == 400 and propagated.json()["errorCode"] == "ATLAS-400-00-06C"


def test_enum_defs_are_created_by_name_and_served(c):
    enum = {"enumDefs": [{"name": "QualityLevel", "elementDefs": [{"value": "High", "ordinal": 0}]}]}
    assert c.post(f"{META}/types/typedefs", headers=auth(), json=enum).status_code == 200
    served = c.get(f"{META}/types/typedefs", params={"type": "enum"}, headers=auth()).json()["enumDefs"]
    assert [(d["name"], d["category"]) for d in served] == [("QualityLevel", "ENUM")]
    assert c.post(f"{META}/types/typedefs", headers=auth(), json=enum).status_code == 409
