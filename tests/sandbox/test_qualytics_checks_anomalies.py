"""Contract tests of the sandbox Qualytics API: quality checks and anomalies, reads and writes."""

from __future__ import annotations

import pytest
from qualytics_worlds import ANOMALY_KEYS, CHECK_KEYS, CONTAINER_STUB_KEYS, DATASTORE_STUB_KEYS, client_for, small_world


@pytest.fixture
def client():
    return client_for(small_world())


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


def total(client, path: str, **params) -> int:
    return client.get(path, params={**params, "size": 1}).json()["total"]


# ----- quality checks --------------------------------------------------------------------


def test_check_listing_has_required_keys_fields_and_counts(client):
    check = client.get("/api/quality-checks", params={"id": 1000}).json()["items"][0]
    assert CHECK_KEYS <= set(check)
    assert CONTAINER_STUB_KEYS <= set(check["container"]) and DATASTORE_STUB_KEYS <= set(check["datastore"])
    assert [(f["id"], f["name"], f["type"]) for f in check["fields"]] == [(101, "email", "String")]
    # anomalies 5000 (Active) and 5001 (Acknowledged) name check 1000
    assert (check["anomaly_count"], check["active_anomaly_count"]) == (2, 1)
    assert [t["name"] for t in check["global_tags"]] == ["PII"]


def test_checks_hide_deleted_invalid_and_discarded_by_default(client):
    assert ids(client.get("/api/quality-checks").json()) == [1000, 1001, 1002, 1005]
    assert ids(client.get("/api/quality-checks", params={"archived": "only"}).json()) == [1003, 1004]
    assert total(client, "/api/quality-checks", archived="include") == 6
    assert client.get("/api/quality-checks", params={"archived": "false"}).status_code == 422


@pytest.mark.parametrize(("params", "expected"), [
    ({"container": 10}, [1000, 1001, 1002, 1005]),
    ({"container": 11}, []),
    ({"datastore": 1}, [1000, 1001, 1002, 1005]),
    ({"datastore": 2}, []),
    ({"datastore": 1, "container": 10}, [1000, 1001, 1002, 1005]),
    ({"status": "Draft"}, [1002]),
    ({"status": "Discarded"}, []),
    ({"status": "Discarded", "archived": "only"}, [1003]),
    ({"tag": "PII"}, [1000]),
    ({"id": [1001, 1005]}, [1001, 1005]),
    ({"sort_id": "desc"}, [1005, 1002, 1001, 1000]),
])
def test_check_filters(client, params, expected):
    assert ids(client.get("/api/quality-checks", params=params).json()) == expected


def test_check_status_is_a_single_valid_value(client):
    assert client.get("/api/quality-checks", params={"status": "Passing"}).status_code == 422


def test_get_check_by_id(client):
    assert client.get("/api/quality-checks/1001").json()["rule_type"] == "notNull"
    assert client.get("/api/quality-checks/4242").status_code == 404


# ----- anomalies -------------------------------------------------------------------------


def test_anomaly_listing_has_required_keys_and_failed_checks(client):
    anomaly = client.get("/api/anomalies", params={"id": 5000}).json()["items"][0]
    assert ANOMALY_KEYS <= set(anomaly)
    assert anomaly["archived"] is False and anomaly["partition"] == {"name": "ORDERS", "location": None}
    (failed,) = anomaly["failed_checks"]
    assert failed["quality_check"]["id"] == 1000 and CHECK_KEYS <= set(failed["quality_check"])
    assert isinstance(failed["message"], str)
    assert [t["name"] for t in anomaly["global_tags"]] == ["Critical"]


def test_archived_anomalies_only_come_back_with_archived_only_or_include(client):
    assert ids(client.get("/api/anomalies").json()) == [5000, 5001, 5003]
    assert ids(client.get("/api/anomalies", params={"status": "Resolved"}).json()) == []
    only = client.get("/api/anomalies", params={"status": "Resolved", "archived": "only"}).json()
    assert ids(only) == [5002] and only["items"][0]["archived"] is True
    mixed = client.get("/api/anomalies", params={"status": ["Active", "Duplicate"], "archived": "include"}).json()
    assert ids(mixed) == [5000, 5003, 5004]
    assert client.get("/api/anomalies", params={"archived": "false"}).status_code == 422


@pytest.mark.parametrize(("params", "expected"), [
    ({"container": 10, "status": "Active"}, [5000, 5003]),
    ({"datastore": 1, "status": "Acknowledged"}, [5001]),
    ({"datastore": 2}, []),
    ({"tag": "Critical"}, [5000]),
    ({"anomaly_type": "shape"}, [5003]),
    ({"quality_check": 1000}, [5000, 5001]),
    ({"id": ["uuid-5003", "5001"]}, [5001, 5003]),
    ({"sort_id": "desc"}, [5003, 5001, 5000]),
])
def test_anomaly_filters(client, params, expected):
    assert ids(client.get("/api/anomalies", params=params).json()) == expected


def test_bad_anomaly_status_filter_is_422(client):
    assert client.get("/api/anomalies", params={"status": "Open"}).status_code == 422


def test_get_anomaly_by_id_or_uuid(client):
    assert client.get("/api/anomalies/5001").json()["status"] == "Acknowledged"
    assert client.get("/api/anomalies/uuid-5001").json()["id"] == 5001
    assert client.get("/api/anomalies/9").status_code == 404


# ----- metrics agree with list counts ----------------------------------------------------


def test_container_metrics_agree_with_list_totals(client):
    metrics = client.get("/api/containers/10").json()["metrics"]
    assert metrics["active_anomalies"] == total(client, "/api/anomalies", container=10, status="Active")
    assert metrics["anomalies"] == total(client, "/api/anomalies", container=10)
    assert metrics["active_checks"] == total(client, "/api/quality-checks", container=10, status="Active")


def test_datastore_metrics_agree_with_list_totals(client):
    metrics = client.get("/api/datastores/1").json()["metrics"]
    assert metrics["active_anomalies"] == total(client, "/api/anomalies", datastore=1, status="Active")
    assert metrics["active_checks"] == total(client, "/api/quality-checks", datastore=1, status="Active")


def test_metrics_follow_status_changes(client):
    client.put("/api/anomalies/5000", json={"status": "Acknowledged"})
    metrics = client.get("/api/containers/10").json()["metrics"]
    assert (metrics["active_anomalies"], metrics["anomalies"]) == (1, 3)
    assert total(client, "/api/anomalies", container=10, status="Active") == 1
    profiles = client.get("/api/containers/10/field-profiles").json()["items"]
    assert {p["field"]["name"]: p["active_anomaly_count"] for p in profiles}["email"] == 1


# ----- anomaly writes --------------------------------------------------------------------


def test_put_anomaly_sets_open_status_and_tags(client):
    response = client.put("/api/anomalies/5001", json={"status": "Active", "tags": ["PII"]})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Active" and [t["name"] for t in body["global_tags"]] == ["PII"]
    assert ANOMALY_KEYS <= set(body)


@pytest.mark.parametrize("status", ["Resolved", "Discarded", "Open"])
def test_put_anomaly_refuses_other_statuses_with_422(client, status):
    response = client.put("/api/anomalies/5000", json={"status": status})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "status"]


def test_put_anomaly_needs_a_status(client):
    assert client.put("/api/anomalies/5000", json={"tags": []}).status_code == 422


def test_put_unknown_anomaly_is_404(client):
    assert client.put("/api/anomalies/77", json={"status": "Active"}).status_code == 404


def test_patch_anomalies_updates_each_and_returns_them(client):
    response = client.patch("/api/anomalies", json=[{"id": 5000, "status": "Acknowledged"},
                                                     {"id": "uuid-5003", "description": "seen"}])
    assert response.status_code == 200
    assert [(a["id"], a["status"], a["description"]) for a in response.json()] == [
        (5000, "Acknowledged", None), (5003, "Active", "seen")]


def test_patch_anomalies_refuses_archived_status_and_changes_nothing(client):
    response = client.patch("/api/anomalies", json=[{"id": 5000, "status": "Acknowledged"},
                                                     {"id": 5003, "status": "Resolved"}])
    assert response.status_code == 422
    assert client.get("/api/anomalies/5000").json()["status"] == "Active"


def test_delete_anomaly_with_archive_sets_archived_status(client):
    response = client.delete("/api/anomalies/5000", params={"archive": "true", "status": "Invalid"})
    assert response.status_code == 204
    anomaly = client.get("/api/anomalies/5000").json()
    assert (anomaly["status"], anomaly["archived"]) == ("Invalid", True)
    assert 5000 not in ids(client.get("/api/anomalies").json())


def test_delete_anomaly_without_archive_removes_it(client):
    assert client.delete("/api/anomalies/5000", params={"archive": "false"}).status_code == 204
    assert client.get("/api/anomalies/5000").status_code == 404
    assert total(client, "/api/anomalies", archived="include") == 4


def test_delete_anomaly_refuses_open_status(client):
    assert client.delete("/api/anomalies/5000", params={"archive": "true", "status": "Active"}).status_code == 422


def test_bulk_delete_anomalies_archives_them(client):
    response = client.request("DELETE", "/api/anomalies", json=[{"id": 5000, "status": "Resolved"}, {"id": 5003}])
    assert response.status_code == 204
    assert ids(client.get("/api/anomalies").json()) == [5001]


def test_invalid_json_body_is_422(client):
    response = client.patch("/api/anomalies", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
