"""Contract tests of the sandbox Qualytics API: auth, meta, paging, datastores, containers, fields."""

from __future__ import annotations

import pytest
from qualytics_worlds import (
    CONTAINER_KEYS,
    CONTAINER_METRICS_KEYS,
    CONTAINER_STUB_KEYS,
    DATASTORE_KEYS,
    DATASTORE_METRICS_KEYS,
    DATASTORE_STUB_KEYS,
    EMBEDDED_TAG_KEYS,
    FIELD_KEYS,
    INTEGRATION_KEYS,
    MEMBER,
    PAGE_KEYS,
    SCORE_KEYS,
    big_world,
    client_for,
    small_world,
)


@pytest.fixture
def client():
    return client_for(small_world())


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


# ----- auth and meta ---------------------------------------------------------------------


def test_health_is_public_and_answers_204():
    response = client_for(small_world(), token=None).get("/api/health")
    assert response.status_code == 204
    assert response.content == b""


def test_status_is_public():
    response = client_for(small_world(), token=None).get("/api/status")
    assert response.json() == {"database_connection": "OK", "rabbitmq_connection": "OK"}


def test_missing_token_is_401_not_authenticated():
    response = client_for(small_world(), token=None).get("/api/datastores")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_unknown_token_is_401_invalid_token():
    response = client_for(small_world(), token="nope").get("/api/containers")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token"}


def test_non_bearer_scheme_is_401():
    response = client_for(small_world(), token=None).get("/api/users/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401


def test_users_me_returns_the_token_owner(client):
    me = client.get("/api/users/me").json()
    assert (me["name"], me["role"], me["user_name"]) == ("Ada", "Admin", "ada")


def test_paths_work_with_and_without_trailing_slash(client):
    assert client.get("/api/datastores").json() == client.get("/api/datastores/").json()
    assert client.get("/api/containers/10/").status_code == 200


def test_unknown_path_is_404_detail(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_wrong_method_is_405(client):
    assert client.post("/api/datastores/1").status_code == 405


# ----- paging ----------------------------------------------------------------------------


def test_page_envelope_defaults_to_size_50(client):
    page = client.get("/api/containers").json()
    assert set(page) == PAGE_KEYS
    assert (page["page"], page["size"], page["total"], page["pages"]) == (1, 50, 4, 1)


def test_size_100_is_accepted_and_101_is_422():
    client = client_for(big_world(250, 1))
    assert client.get("/api/containers", params={"size": 100}).status_code == 200
    response = client.get("/api/containers", params={"size": 101})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "size"]
    assert response.json()["detail"][0]["type"] == "less_than_equal"


@pytest.mark.parametrize("params", [{"size": 0}, {"page": 0}, {"page": "x"}])
def test_bad_page_or_size_is_422(client, params):
    assert client.get("/api/datastores", params=params).status_code == 422


def test_pages_is_ceil_of_total_and_last_page_is_partial():
    client = client_for(big_world(250, 1))
    last = client.get("/api/containers", params={"size": 100, "page": 3}).json()
    assert (last["total"], last["pages"], len(last["items"])) == (250, 3, 50)
    assert ids(last) == list(range(201, 251))
    beyond = client.get("/api/containers", params={"size": 100, "page": 4}).json()
    assert beyond["items"] == [] and beyond["total"] == 250


def test_empty_list_has_zero_pages(client):
    page = client.get("/api/containers", params={"name": "nothing-like-this"}).json()
    assert (page["total"], page["pages"], page["items"]) == (0, 0, [])


def test_walking_every_page_lists_every_container_once():
    client = client_for(big_world(230, 2))
    seen, page = [], 1
    while True:
        body = client.get("/api/containers", params={"size": 100, "page": page}).json()
        seen += ids(body)
        if page * 100 >= body["total"]:
            break
        page += 1
    assert seen == list(range(1, 231))


# ----- datastores ------------------------------------------------------------------------


def test_jdbc_datastore_has_required_keys_and_flat_connection(client):
    ds = client.get("/api/datastores/1").json()
    assert DATASTORE_KEYS | {"jdbc_url"} <= set(ds)
    assert (ds["host"], ds["database"], ds["schema"], ds["type"]) == ("acme.snowflake.com", "SALES", "PUBLIC", "snowflake")
    assert "connection" not in ds
    assert set(ds["metrics"]) == DATASTORE_METRICS_KEYS
    assert set(ds["metrics"]["quality_score"]) >= SCORE_KEYS
    assert ds["global_tags"] == [{"type": "global", "name": "Finance", "color": None, "description": None,
                                  "category": None, "weight_modifier": 0}]


def test_dfs_datastore_has_uri_and_root_path_and_null_score(client):
    ds = client.get("/api/datastores/2").json()
    assert DATASTORE_KEYS | {"uri", "root_path"} <= set(ds)
    assert "jdbc_url" not in ds
    assert ds["metrics"]["quality_score"] is None


def test_datastore_metrics_aggregate_live_containers(client):
    metrics = client.get("/api/datastores/1").json()["metrics"]
    # live containers 10, 11, 13 (12 is archived); active fields 2 + 1; checks/anomalies all on 10
    assert (metrics["containers"], metrics["fields"], metrics["records"]) == (3, 3, 1010)
    assert (metrics["active_checks"], metrics["active_anomalies"], metrics["anomalies"]) == (3, 2, 3)


def test_unknown_datastore_is_404_and_bad_id_is_422(client):
    response = client.get("/api/datastores/99")
    assert response.status_code == 404 and isinstance(response.json()["detail"], str)
    assert client.get("/api/datastores/abc").json()["detail"][0]["loc"] == ["path", "id"]


def test_datastores_hide_enrichment_only_by_default(client):
    assert ids(client.get("/api/datastores").json()) == [1, 2]
    assert ids(client.get("/api/datastores", params={"enrichment_only": "true"}).json()) == [3]


@pytest.mark.parametrize(("params", "expected"), [
    ({"id": [2, 1]}, [1, 2]),
    ({"name": "WARE"}, [1]),
    ({"datastore_type": "s3"}, [2]),
    ({"tag": "Finance"}, [1]),
    ({"search": "sales"}, [1]),
    ({"sort_name": "desc"}, [1, 2]),
    ({"sort_name": "asc"}, [2, 1]),
])
def test_datastore_filters_and_sorts(client, params, expected):
    assert ids(client.get("/api/datastores", params=params).json()) == expected


def test_put_datastore_replaces_tags_and_description(client):
    response = client.put("/api/datastores/1", json={"tags": ["PII", "Critical"], "description": "sales"})
    assert response.status_code == 200
    ds = client.get("/api/datastores/1").json()
    assert [t["name"] for t in ds["global_tags"]] == ["PII", "Critical"]
    assert ds["description"] == "sales"


# ----- containers ------------------------------------------------------------------------


def test_table_container_has_required_keys_metrics_and_stub(client):
    c = client.get("/api/containers/10").json()
    assert CONTAINER_KEYS | {"table_type"} <= set(c)
    assert set(c["metrics"]) == CONTAINER_METRICS_KEYS
    assert set(c["metrics"]["quality_score"]) >= SCORE_KEYS
    assert DATASTORE_STUB_KEYS <= set(c["datastore"]) and "host" not in c["datastore"]
    assert set(c["global_tags"][0]) == EMBEDDED_TAG_KEYS
    assert "computed_fields" in c


def test_container_metrics_are_computed_from_rows(client):
    m = client.get("/api/containers/10").json()["metrics"]
    assert (m["fields"], m["active_checks"], m["passing_checks"], m["failing_checks"]) == (2, 3, 1, 1)
    assert (m["anomalies"], m["active_anomalies"], m["records"]) == (3, 2, 1000)


def test_view_is_table_with_table_type_view(client):
    c = client.get("/api/containers/11").json()
    assert (c["container_type"], c["table_type"]) == ("table", "view")


def test_file_and_computed_containers_have_their_required_keys(client):
    f = client.get("/api/containers/20").json()
    assert {"relative_path", "file_name", "extension", "last_modified"} <= set(f) and "table_type" not in f
    assert client.get("/api/containers/13").json()["query"] == "select 1"


def test_archived_container_is_hidden_from_lists_but_returned_by_id(client):
    assert 12 not in ids(client.get("/api/containers").json())
    assert ids(client.get("/api/containers", params={"archived": "only"}).json()) == [12]
    assert 12 in ids(client.get("/api/containers", params={"archived": "include"}).json())
    assert client.get("/api/containers/12").json()["deleted_at"] is not None


@pytest.mark.parametrize("value", ["false", "true", "all"])
def test_archived_other_than_include_or_only_is_422(client, value):
    response = client.get("/api/containers", params={"archived": value})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["query", "archived"] and {"msg", "type"} <= set(detail[0])


@pytest.mark.parametrize(("params", "expected"), [
    ({"datastore": 1}, [10, 11, 13]),
    ({"datastore": [1, 2]}, [10, 11, 13, 20]),
    ({"id": [11, 20]}, [11, 20]),
    ({"name": "orders"}, [10, 13]),
    ({"tag": "PII"}, [10]),
    ({"container_type": "view"}, [11]),
    ({"container_type": "table"}, [10]),
    ({"container_type": ["file", "computed_table"]}, [13, 20]),
    ({"search": "cust"}, [11]),
    ({"sort_id": "desc"}, [20, 13, 11, 10]),
    ({"sort_name": "asc"}, [11, 20, 10, 13]),
    ({"sort_active_anomalies": "desc"}, [10, 11, 13, 20]),
])
def test_container_filters_and_sorts(client, params, expected):
    assert ids(client.get("/api/containers", params=params).json()) == expected


def test_bad_container_type_is_422(client):
    assert client.get("/api/containers", params={"container_type": "table_view"}).status_code == 422


def test_unknown_container_is_404(client):
    assert client.get("/api/containers/999").status_code == 404
    assert client.get("/api/containers/999/fields").status_code == 404


def test_container_listing_is_a_bare_array(client):
    items = client.get("/api/containers/listing", params={"datastore": 1}).json()
    assert [c["id"] for c in items] == [10, 11, 13]
    assert CONTAINER_STUB_KEYS <= set(items[0]) and "datastore" in items[0]


# ----- fields ----------------------------------------------------------------------------


def test_container_fields_is_a_bare_array_of_active_and_missing_fields(client):
    fields = client.get("/api/containers/10/fields").json()
    assert [f["name"] for f in fields] == ["id", "email", "legacy"]
    assert all(FIELD_KEYS <= set(f) for f in fields)
    assert set(fields[1]["quality_score"]) >= SCORE_KEYS


def test_field_profiles_carry_per_field_counts(client):
    page = client.get("/api/containers/10/field-profiles").json()
    counts = {p["field"]["name"]: (p["active_quality_check_count"], p["active_anomaly_count"]) for p in page["items"]}
    # email: checks 1000 + 1005, anomalies 5000 (1000) + 5003 (1005); id: checks 1001 + 1005, anomaly 5003
    assert counts == {"id": (2, 1), "email": (2, 2), "legacy": (0, 0)}


def test_field_profiles_filter_and_sort(client):
    page = client.get("/api/containers/10/field-profiles", params={"status": "active",
                                                                    "sort_active_anomalies": "desc"}).json()
    assert [p["field"]["name"] for p in page["items"]] == ["email", "id"]
    assert client.get("/api/containers/10/field-profiles", params={"status": "bogus"}).status_code == 422


def test_list_fields_by_container_and_name(client):
    assert ids(client.get("/api/fields", params={"container_id": 10}).json()) == [100, 101, 102, 103]
    assert ids(client.get("/api/fields", params={"container_id": 10, "name": "mail"}).json()) == [101]


def test_get_and_put_field(client):
    assert client.get("/api/fields/101").json()["name"] == "email"
    updated = client.put("/api/fields/101", json={"tags": ["Critical"]}).json()
    assert [t["name"] for t in updated["global_tags"]] == ["Critical"]
    renamed = client.put("/api/fields/101", json={"name": "e_mail"}).json()
    assert (renamed["name"], [t["name"] for t in renamed["global_tags"]]) == ("e_mail", ["Critical"])
    assert client.get("/api/fields/999").status_code == 404


def test_field_listing_returns_names(client):
    assert client.get("/api/fields/listing", params={"container_id": 11}).json() == [
        {"name": "name", "display_name": None}]


# ----- integrations ----------------------------------------------------------------------


def test_integrations_page_and_get(client):
    page = client.get("/api/integrations").json()
    assert page["total"] == 1 and INTEGRATION_KEYS <= set(page["items"][0])
    assert client.get("/api/integrations/1").json()["type"] == "atlan"
    assert client.get("/api/integrations/9").status_code == 404


def test_integrations_need_admin_or_manager():
    assert client_for(small_world(), token=MEMBER).get("/api/integrations").status_code == 403
