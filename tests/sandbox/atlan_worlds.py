"""Small Atlan worlds for the sandbox Atlan tests, built inline (no files, no generator)."""

from __future__ import annotations

import threading
from typing import Any

from starlette.testclient import TestClient

from qatlan.sandbox.atlan_app import create_atlan_app
from qatlan.sandbox.atlan_store import AtlanStore

SNOW = "default/snowflake/1700000000"
PG = "default/postgres/1700000001"
DB = f"{SNOW}/SALES"
SCHEMA = f"{DB}/PUBLIC"
PII = "aPiiTag000000000000001"
FINANCE = "bFinanceTag00000000002"
CM_SET = "cQualyticsSet000000003"
CM_SCORE = "dScoreAttr000000000004"
CM_CHECKS = "eChecksAttr00000000005"
CM_URL = "fUrlAttr00000000000006"
DOMAIN_GUID = "d0d0d0d0-1111-2222-3333-444455556666"
T0 = 1_700_000_000_000

TOKENS = {"admin": "tok-admin", "analyst": "tok-analyst", "reader": "tok-reader", "outsider": "tok-outsider"}


class Clock:
    """A settable clock (seconds, like time.time)."""

    def __init__(self, now: float = 1_700_000_100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeWorld:
    """What the app needs of a World: `.atlan` and `.lock`."""

    def __init__(self, doc_atlan: dict[str, Any], clock: Clock | None = None):
        self.clock = clock or Clock()
        self.atlan = AtlanStore(doc_atlan, clock=self.clock)
        self.lock = threading.RLock()


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def entity(type_name: str, qn: str, n: int, *, created: int | None = None, **attrs: Any) -> dict[str, Any]:
    """An entity with guid(n); keyword arguments become attributes (name defaults to the last QN part)."""
    extra = {k: attrs.pop(k) for k in ("classifications", "businessAttributes", "status") if k in attrs}
    attributes = {"qualifiedName": qn, "name": attrs.pop("name", qn.rsplit("/", 1)[-1]), **attrs}
    ts = T0 + n * 1000 if created is None else created
    return {"typeName": type_name, "guid": guid(n), "attributes": attributes, "createTime": ts,
            "updateTime": ts, "createdBy": "crawler", "updatedBy": "crawler", **extra}


def sql(type_name: str, qn: str, n: int, **attrs: Any) -> dict[str, Any]:
    conn = "/".join(qn.split("/")[:3])
    return entity(type_name, qn, n, connectionQualifiedName=conn, connectorName=qn.split("/")[1], **attrs)


def tag(name: str, source: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"typeName": name, "propagate": True}
    if source:
        out["entityGuid"] = source
    return out


def personas() -> list[dict[str, Any]]:
    return [
        {"name": "admin", "token": TOKENS["admin"], "read": ["*"], "update": ["*"], "manage_typedefs": True,
         "user": "admin-user"},
        {"name": "analyst", "token": TOKENS["analyst"], "read": [SNOW], "update": [SNOW]},
        {"name": "reader", "token": TOKENS["reader"], "read": [SNOW], "update": []},
        {"name": "outsider", "token": TOKENS["outsider"], "read": [PG], "update": [PG]},
    ]


def typedefs() -> dict[str, Any]:
    return {
        "classificationDefs": [
            {"name": PII, "displayName": "PII", "category": "CLASSIFICATION"},
            {"name": FINANCE, "displayName": "Finance", "category": "CLASSIFICATION"},
        ],
        "businessMetadataDefs": [{
            "name": CM_SET, "displayName": "Qualytics", "category": "BUSINESS_METADATA",
            "attributeDefs": [
                {"name": CM_SCORE, "displayName": "Score", "typeName": "float"},
                {"name": CM_CHECKS, "displayName": "Active Checks", "typeName": "int"},
                {"name": CM_URL, "displayName": "URL", "typeName": "string"},
            ],
        }],
    }


def small_world() -> dict[str, Any]:
    """Two connections, a schema of tables/view/columns, a domain, tags, custom metadata, a Link."""
    orders = f"{SCHEMA}/ORDERS"
    entities = [
        entity("Connection", SNOW, 1, name="snowflake-prod", connectorName="snowflake"),
        sql("Database", DB, 2),
        sql("Schema", SCHEMA, 3, domainGUIDs=[DOMAIN_GUID]),
        sql("Table", orders, 4, classifications=[tag(PII)], announcementType="warning",
            businessAttributes={CM_SET: {CM_SCORE: 97.5, CM_CHECKS: 4}}),
        sql("Table", f"{SCHEMA}/CUSTOMERS", 5, classifications=[tag(FINANCE)]),
        sql("View", f"{SCHEMA}/ORDERS_V", 6),
        sql("Column", f"{orders}/ID", 7, classifications=[tag(PII, source=guid(4))], order=1),
        sql("Column", f"{orders}/AMOUNT", 8, order=2),
        sql("Table", f"{SCHEMA}/ARCHIVED", 9, status="DELETED"),
        entity("Connection", PG, 10, name="pg", connectorName="postgres"),
        sql("Table", f"{PG}/APP/PUBLIC/USERS", 11),
        {**entity("DataDomain", "default/domain/abc/super", 12, name="Marketing"), "guid": DOMAIN_GUID},
        entity("Link", "link-1", 13, name="Runbook", link="https://wiki/runbook",
               asset={"typeName": "Table", "guid": guid(4)}),
    ]
    return {"personas": personas(), "typedefs": typedefs(), "entities": entities}


def client(doc_atlan: dict[str, Any] | None = None, clock: Clock | None = None) -> tuple[TestClient, FakeWorld]:
    world = FakeWorld(doc_atlan if doc_atlan is not None else small_world(), clock)
    return TestClient(create_atlan_app(world)), world


def auth(who: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


def dsl(query: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"from": 0, "size": 100, "track_total_hits": True}
    if query is not None:
        body["query"] = query
    body.update(kw)
    return body


def term(field: str, value: Any, **kw: Any) -> dict[str, Any]:
    return {"term": {field: {"value": value, **kw}}}


def search(c: TestClient, query: dict[str, Any] | None, who: str = "admin", **body: Any) -> Any:
    dsl_kw = {k: body.pop(k) for k in list(body) if k in ("sort", "from_", "size", "track_total_hits", "post_filter")}
    if "from_" in dsl_kw:
        dsl_kw["from"] = dsl_kw.pop("from_")
    return c.post("/api/meta/search/indexsearch", headers=auth(who), json={"dsl": dsl(query, **dsl_kw), **body})


def guids_of(response: Any) -> list[str]:
    return [e["guid"] for e in response.json().get("entities", [])]
