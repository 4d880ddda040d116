"""Atlan side of a generated world: typedefs, personas, domains, entities (private to `generate`)."""

from __future__ import annotations

import random
from typing import Any

from qatlan.sandbox._gen_layout import Conn
from qatlan.sandbox._gen_util import BASE_MS, AtlanClock, guid, hashed_name, nanoid

CRAWLER = "service-account-atlan-crawler"
HUMAN = "jsmith"
SYNC_TOKEN = "atlan-sandbox-sync-token"
READONLY_TOKEN = "atlan-sandbox-readonly-token"
ADMIN_TOKEN = "atlan-sandbox-admin-token"

# Atlan tags (classificationDefs): display name, colour
TAGS = (("PII", "Red"), ("Confidential", "Yellow"), ("Finance", "Green"), ("GDPR", "Blue"), ("Gold", "Yellow"))
COLUMN_TAGS = ("PII", "GDPR", "Confidential")

# The custom-metadata set qatlan pushes; only created with `cm=present`.
QUALYTICS_CM = "Qualytics"
QUALYTICS_CM_ATTRS = (
    *((n, "float") for n in ("Quality Score", "Completeness", "Coverage", "Conformity", "Consistency",
                             "Precision", "Timeliness", "Volume", "Accuracy")),
    ("Active Checks", "int"), ("Active Anomalies", "int"), ("Qualytics URL", "url"), ("Last Scanned", "date"),
)
HUMAN_CM = "Data Owner Info"
HUMAN_CM_ATTRS = (("Owner Team", "string"), ("Steward", "string"), ("Review Date", "date"))

# domain name -> parent name (None = top-level); Marketing never gets assets
DOMAINS = (("Sales", None), ("Sales EMEA", "Sales"), ("Sales US", "Sales"), ("Finance", None), ("Marketing", None))
ASSET_DOMAINS = ("Sales", "Sales EMEA", "Sales US", "Finance")


class AtlanOut:
    """Collects Atlan entities; every entity gets the next createTime."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.clock = AtlanClock()
        self.entities: list[dict[str, Any]] = []
        self.tag_hash: dict[str, str] = {}
        self.domain_guid: dict[str, str] = {}

    def add(self, type_name: str, attrs: dict[str, Any], status: str = "ACTIVE") -> dict[str, Any]:
        t = self.clock.tick()
        entity = {"typeName": type_name, "guid": guid(self.rng), "status": status, "attributes": attrs,
                  "createTime": t, "updateTime": t, "createdBy": CRAWLER, "updatedBy": CRAWLER}
        self.entities.append(entity)
        return entity

    def tag(self, entity: dict[str, Any], display: str, propagate: bool = False) -> None:
        item = {"typeName": self.tag_hash[display], "propagate": propagate,
                "removePropagationsOnEntityDelete": True, "restrictPropagationThroughLineage": False,
                "restrictPropagationThroughHierarchy": False}
        entity.setdefault("classifications", []).append(item)

    def propagated(self, entity: dict[str, Any], display: str, source_guid: str) -> None:
        """A tag that reached `entity` by propagation from the asset `source_guid`."""
        self.tag(entity, display, propagate=True)
        entity["classifications"][-1]["entityGuid"] = source_guid

    def touch(self, entity: dict[str, Any], user: str, later_ms: int) -> int:
        """Mark `entity` as edited by `user` `later_ms` after its creation; returns the time."""
        entity["updateTime"] = entity["createTime"] + later_ms
        entity["updatedBy"] = user
        return entity["updateTime"]


def _typedef_times(rng: random.Random) -> dict[str, Any]:
    created = BASE_MS - rng.randrange(30, 300) * 86_400_000
    return {"createdBy": HUMAN, "updatedBy": HUMAN, "createTime": created, "updateTime": created, "version": 1}


def classification_defs(out: AtlanOut) -> list[dict[str, Any]]:
    defs = []
    for display, colour in TAGS:
        name = hashed_name(out.rng)
        out.tag_hash[display] = name
        defs.append({
            "category": "CLASSIFICATION", "guid": guid(out.rng), "name": name, "displayName": display,
            "description": f"{display} data", "typeVersion": "1.0", "serviceType": "atlan",
            "options": {"color": colour, "iconName": "atlanTags", "iconType": "icon"},
            "attributeDefs": [], "superTypes": [], "subTypes": [], "entityTypes": [],
            **_typedef_times(out.rng),
        })
    return defs


def _attribute_def(rng: random.Random, display: str, kind: str) -> dict[str, Any]:
    type_name = "string" if kind == "url" else kind
    options = {"customMetadataVersion": "v2", "primitiveType": kind, "applicableEntityTypes": '["Asset"]',
               "multiValueSelect": "false", "isArchived": "false", "maxStrLength": "100000000"}
    if kind == "url":
        options["customType"] = "url"
    return {"name": hashed_name(rng), "displayName": display, "typeName": type_name, "cardinality": "SINGLE",
            "isOptional": True, "isUnique": False, "isIndexable": True, "valuesMinCount": 0,
            "valuesMaxCount": 1, "options": options}


def business_metadata_def(rng: random.Random, display: str, attrs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {
        "category": "BUSINESS_METADATA", "guid": guid(rng), "name": hashed_name(rng), "displayName": display,
        "description": "", "typeVersion": "1.0", "serviceType": "atlan",
        "options": {"logoType": "emoji", "emoji": "\U0001f4ca", "isLocked": "false"},
        "attributeDefs": [_attribute_def(rng, a, k) for a, k in attrs],
        **_typedef_times(rng),
    }


def personas(conns: list[Conn]) -> list[dict[str, Any]]:
    """qualytics-sync sees every connection except the hidden one."""
    sync = [c.qn for c in conns if not c.hidden]
    return [
        {"name": "qualytics-sync", "token": SYNC_TOKEN, "read": sync, "update": list(sync), "manage_typedefs": True},
        {"name": "read-only", "token": READONLY_TOKEN, "read": ["*"], "update": [], "manage_typedefs": False},
        {"name": "admin", "token": ADMIN_TOKEN, "read": ["*"], "update": ["*"], "manage_typedefs": True},
    ]


def domains(out: AtlanOut) -> None:
    qns: dict[str, str] = {}
    supers: dict[str, str] = {}
    for name, parent in DOMAINS:
        attrs: dict[str, Any] = {"name": name, "description": f"{name} data domain"}
        if parent is None:
            attrs["qualifiedName"] = f"default/domain/{nanoid(out.rng)}/super"
        else:
            attrs["qualifiedName"] = f"{qns[parent]}/domain/{nanoid(out.rng)}"
            attrs["parentDomainQualifiedName"] = qns[parent]
            attrs["superDomainQualifiedName"] = supers[parent]
        qns[name] = attrs["qualifiedName"]
        supers[name] = attrs.get("superDomainQualifiedName", attrs["qualifiedName"])
        entity = out.add("DataDomain", attrs)
        entity["createdBy"] = entity["updatedBy"] = HUMAN
        out.domain_guid[name] = entity["guid"]


def connection(out: AtlanOut, conn: Conn) -> None:
    out.add("Connection", {"qualifiedName": conn.qn, "name": conn.name, "connectorName": conn.connector,
                           "category": "warehouse", "host": conn.host, "port": conn.port})


def database(out: AtlanOut, conn: Conn, db: str) -> str:
    qn = f"{conn.qn}/{db}"
    out.add("Database", {"qualifiedName": qn, "name": db, "connectionQualifiedName": conn.qn,
                         "connectorName": conn.connector})
    return qn


def schema(out: AtlanOut, conn: Conn, db: str, name: str, domain: str | None) -> dict[str, Any]:
    """Adds a Schema; returns the denormalised attributes its tables share."""
    db_qn = f"{conn.qn}/{db}"
    base = {"connectionQualifiedName": conn.qn, "connectorName": conn.connector,
            "databaseName": db, "databaseQualifiedName": db_qn}
    attrs = {"qualifiedName": f"{db_qn}/{name}", "name": name, **base}
    if domain:
        attrs["domainGUIDs"] = [out.domain_guid[domain]]
    out.add("Schema", attrs)
    return {**base, "schemaName": name, "schemaQualifiedName": attrs["qualifiedName"]}


def link(out: AtlanOut, asset: dict[str, Any]) -> None:
    name = asset["attributes"]["name"]
    entity = out.add("Link", {"qualifiedName": guid(out.rng), "name": "Runbook",
                              "link": f"https://wiki.acme.example/runbooks/{name.lower()}",
                              "asset": {"typeName": asset["typeName"], "guid": asset["guid"]}})
    entity["createdBy"] = entity["updatedBy"] = HUMAN


def human_cm_values(rng: random.Random, bm_def: dict[str, Any], owner: str) -> dict[str, Any]:
    attrs = {a["displayName"]: a["name"] for a in bm_def["attributeDefs"]}
    return {bm_def["name"]: {
        attrs["Owner Team"]: owner,
        attrs["Steward"]: rng.choice(("jsmith", "mlopez", "akumar", "tnguyen")),
        attrs["Review Date"]: BASE_MS - rng.randrange(1, 200) * 86_400_000,
    }}


def announcement(rng: random.Random, when_ms: int) -> dict[str, Any]:
    kind, title, message = rng.choice((
        ("warning", "Known data delay", "Upstream load runs late on Mondays; numbers settle by noon."),
        ("information", "Owned by the data platform team", "Ask in #data-platform before changing this table."),
        ("issue", "Duplicate rows under investigation", "Some order lines appear twice since the last migration."),
    ))
    return {"announcementType": kind, "announcementTitle": title, "announcementMessage": message,
            "announcementUpdatedAt": when_ms, "announcementUpdatedBy": HUMAN}
