"""Hypothesis strategies for planner properties: small, messy snapshots with ownership.

One Postgres connection (sometimes a second one with the same schema, which makes inference
ambiguous), a `sales/public` schema, tables and views with case variants, columns, tags on
both sides (with same-name clashes), custom metadata values qatlan wrote or someone else did,
human and qatlan announcements, qatlan and foreign Links, domains and a subdomain, a file
datastore and computed containers. `owned` is drawn from what is there (and a few stale
keys), sometimes matching the current values, sometimes not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from qatlan.model import (
    AAsset,
    ACMAttribute,
    ACMDef,
    AConnection,
    ADomain,
    ALink,
    Announcement,
    ATagDef,
    QContainer,
    QDatastore,
    QField,
    QTag,
    QualityScore,
    Snapshot,
)
from qatlan.model import CM_ATTRIBUTES
from qatlan.planner import PlanSettings

UI = "https://acme.qualytics.io"
CONN = "default/postgres/1700000000"
CONN2 = "default/postgres/1700000999"
SCHEMA = f"{CONN}/sales/public"
CM_SET = "Qualytics"
DOMAINS = {
    "d-sales": ADomain("d-sales", "default/domain/sales/super", "Sales"),
    "d-eu": ADomain("d-eu", "default/domain/sales/super/domain/eu", "EU",
                    parent_qn="default/domain/sales/super"),
    "d-mkt": ADomain("d-mkt", "default/domain/mkt/super", "Marketing"),
}
TAG_DEFS = {"tPII": "PII", "tFin": "Finance", "tGold": "Gold", "tSens": "Sensitive"}
Q_TAG_NAMES = ("PII", "pii", "Finance", "Gold", "Legacy")
TABLES = ("orders", "Orders", "customers", "items", "items_v2")
CONTAINERS = ("orders", "customers", "items", "refunds", "calc")
COLUMNS = ("id", "ID", "email", "amount")
FIELDS = ("id", "email", "amount", "note")
CM_HASH = {attr: f"attr{i:02d}" for i, (attr, _) in enumerate(CM_ATTRIBUTES)}


def container_url(cid: int) -> str:
    return f"{UI}/datastores/1/containers/{cid}/overview"


scores = st.one_of(st.none(), st.floats(0, 100, allow_nan=False))
quality = st.one_of(st.none(), st.builds(QualityScore, total=scores, completeness=scores,
                                         accuracy=scores, volumetrics=scores))
counts = st.one_of(st.none(), st.integers(0, 3))


@st.composite
def q_tags(draw) -> tuple[QTag, ...]:
    names = draw(st.lists(st.sampled_from(Q_TAG_NAMES), max_size=3, unique_by=str.casefold))
    out = []
    for n in names:
        kind = draw(st.sampled_from(["global", "global", "external", "entity"]))
        # external tags of the configured integration (7), of another (8), or of none known
        integration = draw(st.sampled_from([7, 8, None])) if kind == "external" else None
        out.append(QTag(n, kind, integration))
    return tuple(out)


@st.composite
def cm_values(draw, kinds: dict[str, str]) -> tuple[tuple[str, Any], ...]:
    if not kinds:
        return ()
    chosen = draw(st.lists(st.sampled_from(sorted(kinds)), max_size=4, unique=True))
    out = []
    for attr in chosen:
        kind = kinds[attr]
        value = {"float": st.floats(0, 100, allow_nan=False), "int": st.integers(0, 3),
                 "url": st.sampled_from([UI + "/x", "https://elsewhere"]),
                 "date": st.integers(0, 10**12)}[kind]
        out.append((CM_HASH[attr], draw(value)))
    return tuple(sorted(out))


@st.composite
def qualytics_side(draw):
    datastores = {1: QDatastore(1, "wh", "jdbc", "postgresql", database="sales", schema="public",
                                tags=draw(q_tags()), score=draw(quality),
                                active_checks=draw(counts), active_anomalies=draw(counts))}
    if draw(st.booleans()):
        datastores[2] = QDatastore(2, "files", "dfs", "s3", tags=draw(q_tags()))
    containers, fields = {}, {}
    names = draw(st.lists(st.sampled_from(CONTAINERS), min_size=1, max_size=4, unique=True))
    for i, name in enumerate(names):
        cid = 10 + i
        ctype = "computed_table" if name == "calc" else "table"
        containers[cid] = QContainer(
            cid, 1, name, ctype, tags=draw(q_tags()), score=draw(quality),
            active_checks=draw(counts), active_anomalies=draw(counts),
            last_scanned=draw(st.sampled_from([None, "2026-01-02T03:04:05Z"])))
        for j, fname in enumerate(draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True))):
            fid = cid * 10 + j
            fields[fid] = QField(fid, cid, fname, tags=draw(q_tags()), score=draw(quality))
    return datastores, containers, fields


@st.composite
def announcements(draw, cid: int | None):
    kind = draw(st.sampled_from(["none", "none", "human", "qatlan"]))
    if kind == "human":
        return Announcement("issue", "Broken pipeline", "ask the data team")
    if kind == "qatlan":
        n = draw(st.integers(1, 3))
        noun = "anomaly" if n == 1 else "anomalies"
        return Announcement("warning", f"Qualytics: {n} active {noun}", "old message")
    return None


@st.composite
def atlan_side(draw, cm_kinds: dict[str, str], container_ids: dict[str, int]):
    assets: dict[str, AAsset] = {}
    links: dict[str, ALink] = {}
    tag_hashes = sorted(TAG_DEFS)
    schema_domain = draw(st.sampled_from(["d-sales", "d-eu"]))
    assets["s1"] = AAsset("s1", "Schema", SCHEMA, "public", CONN, f"{CONN}/sales",
                          domain_guids=(schema_domain,),
                          tags=tuple(draw(st.lists(st.sampled_from(tag_hashes), max_size=2, unique=True))),
                          cm=draw(cm_values(cm_kinds)))
    domain = st.sampled_from([(), ("d-sales",), ("d-eu",), ("d-mkt",)])
    tables = _table_names(draw, container_ids)
    for i, name in enumerate(tables):
        guid, qn = f"t{i}", f"{SCHEMA}/{name}"
        assets[guid] = AAsset(
            guid, draw(st.sampled_from(["Table", "Table", "View"])), qn, name, CONN, SCHEMA,
            status=draw(st.sampled_from(["ACTIVE", "ACTIVE", "ACTIVE", "DELETED"])),
            domain_guids=draw(domain),
            tags=tuple(draw(st.lists(st.sampled_from(tag_hashes), max_size=2, unique=True))),
            announcement=draw(announcements(None)), cm=draw(cm_values(cm_kinds)))
        _draw_link(draw, links, guid, qn, container_ids.get(name.lower()))
        for j, cname in enumerate(draw(st.lists(st.sampled_from(COLUMNS), max_size=3, unique=True))):
            cguid = f"{guid}c{j}"
            assets[cguid] = AAsset(
                cguid, "Column", f"{qn}/{cname}", cname, CONN, qn,
                tags=tuple(draw(st.lists(st.sampled_from(tag_hashes), max_size=2, unique=True))),
                cm=draw(cm_values(cm_kinds)))
    return assets, links


def _table_names(draw, container_ids: dict[str, int]) -> list[str]:
    """Mostly the containers' own names, sometimes in another case, plus a few others."""
    names: list[str] = []
    for name in sorted(container_ids):
        how = draw(st.sampled_from(["same", "same", "same", "upper", "absent"]))
        if how != "absent":
            names.append(name if how == "same" else name.upper())
    extras = draw(st.lists(st.sampled_from(TABLES), max_size=2, unique=True))
    return names + [n for n in extras if n not in names]


def _draw_link(draw, links: dict, guid: str, qn: str, cid: int | None) -> None:
    kind = draw(st.sampled_from(["none", "none", "ours", "foreign"]))
    if kind == "ours":
        url = container_url(cid) if cid is not None and draw(st.booleans()) else UI + "/old"
        links[f"l-{guid}"] = ALink(f"l-{guid}", f"{qn}/Qualytics", "Qualytics", url, guid)
    elif kind == "foreign":
        links[f"f-{guid}"] = ALink(f"f-{guid}", f"uuid-{guid}", "Qualytics", "https://wiki", guid)


@st.composite
def cm_definitions(draw) -> dict[str, ACMDef]:
    state = draw(st.sampled_from(["full", "full", "partial", "absent"]))
    if state == "absent":
        return {}
    attrs = [(a, k) for a, k in CM_ATTRIBUTES if state == "full" or a != "Last Scanned"]
    return {"cmSet": ACMDef("cmSet", CM_SET, tuple(
        ACMAttribute(CM_HASH[a], a, "string" if k == "url" else k) for a, k in attrs))}


@st.composite
def snapshots(draw) -> Snapshot:
    datastores, containers, fields = draw(qualytics_side())
    cm_defs = draw(cm_definitions())
    kinds = dict(CM_ATTRIBUTES) if cm_defs else {}
    kinds = {a: k for a, k in kinds.items()
             if any(x.display_name == a for d in cm_defs.values() for x in d.attributes)}
    ids = {c.name.lower(): c.id for c in containers.values()}
    assets, links = draw(atlan_side(kinds, ids))
    connections = {"c1": AConnection("c1", CONN, "pg", "postgres")}
    if draw(st.sampled_from([False, False, False, False, True])):
        connections["c2"] = AConnection("c2", CONN2, "pg2", "postgres")
        assets["s2"] = AAsset("s2", "Schema", f"{CONN2}/sales/public", "public", CONN2,
                              f"{CONN2}/sales", domain_guids=("d-sales",))
    defs = {h: ATagDef(h, d) for h, d in TAG_DEFS.items()
            if draw(st.sampled_from([True, True, True, False]))}
    return Snapshot(
        complete=draw(st.sampled_from([True, True, True, False])),
        datastores=datastores, containers=containers, fields=fields,
        connections=connections, assets=assets, links=links, domains=dict(DOMAINS),
        tag_defs=defs, cm_defs=cm_defs,
    )


@st.composite
def owned_for(draw, s: Snapshot) -> dict[str, Any]:
    """Ownership drawn from what is in the snapshot, plus a stale key now and then."""
    owned: dict[str, Any] = {}
    attr_of = {h: a for a, h in CM_HASH.items()}
    for a in s.assets.values():
        prefix = f"atlan:{a.qualified_name}"
        mine = {attr_of[h]: v for h, v in a.cm if draw(st.booleans())}
        if mine:
            owned[f"{prefix}#cm:{CM_SET}"] = mine
        for h in a.tags:
            if h in s.tag_defs and draw(st.sampled_from([False, False, True])):
                owned[f"{prefix}#tag:{s.tag_defs[h].display_name}"] = {"name": s.tag_defs[h].display_name}
        if a.announcement is not None and draw(st.booleans()):
            ann = a.announcement
            owned[f"{prefix}#announcement"] = {"type": ann.type, "title": ann.title,
                                               "message": ann.message}
    for link in s.links.values():
        if link.qualified_name.endswith("/Qualytics") and draw(st.booleans()):
            asset = s.assets[link.asset_guid]
            owned[f"atlan:{asset.qualified_name}#link"] = {"name": link.name, "url": link.url}
    _owned_q_tags(draw, s, owned)
    return owned


def _owned_q_tags(draw, s: Snapshot, owned: dict[str, Any]) -> None:
    ds_name = {d.id: d.name for d in s.datastores.values()}
    c_addr = {c.id: f"qualytics:{ds_name[c.datastore_id]}/{c.name}" for c in s.containers.values()}
    items = [(c_addr[c.id], c.tags) for c in s.containers.values()]
    items += [(f"{c_addr[f.container_id]}/{f.name}", f.tags) for f in s.fields.values()]
    items += [(f"qualytics:{d.name}", d.tags) for d in s.datastores.values()]
    for address, tags in items:
        for t in tags:
            if t.external and draw(st.booleans()):
                owned[f"{address}#tag:{t.name}"] = {"name": t.name, "type": "external"}
    if draw(st.sampled_from([False, False, False, True])):
        owned["atlan:default/postgres/1700000000/sales/public/gone#tag:PII"] = {"name": "PII"}


settings_strategy = st.builds(
    PlanSettings,
    pull=st.sampled_from([True, True, True, False]),
    push=st.sampled_from([True, True, True, False]),
    push_tags=st.sampled_from([True, True, False]),
    announcements=st.booleans(),
    overwrite_tags=st.booleans(),
    domains=st.sampled_from([(), (), ("Sales",), ("d-eu",)]),
    qualytics_ui_url=st.just(UI),
    integration_id=st.just(7),
    create_definitions=st.booleans(),
    cm_edits=st.sampled_from(["restore", "restore", "keep"]),
)


@st.composite
def scenarios(draw) -> tuple[Snapshot, dict[str, Any], PlanSettings]:
    s = draw(snapshots())
    settings = draw(settings_strategy)
    in_eu = any("d-eu" in a.domain_guids for a in s.assets.values() if a.status == "ACTIVE")
    if settings.domains == ("d-eu",) and not in_eu:
        settings = dataclasses.replace(settings, domains=())
    return s, draw(owned_for(s)), settings


# --------------------------------------------------------------------------- two datastores

OTHER = SCHEMA.replace("/sales/public", "/sales/other")


def _qn(qn: str) -> str:
    return qn.replace("/sales/public", "/sales/other", 1)


def _second(s: Snapshot) -> Snapshot:
    """`s` moved to datastore 3 (`wh2`, schema sales/other): new ids, GUIDs and names."""
    ds = {}
    for d in s.datastores.values():
        new_id = 3 if d.id == 1 else 4
        ds[new_id] = dataclasses.replace(d, id=new_id, name=d.name + "2",
                                         schema="other" if d.schema else d.schema)
    ds_of = {1: 3, 2: 4}
    containers = {c.id + 1000: dataclasses.replace(c, id=c.id + 1000, datastore_id=ds_of[c.datastore_id])
                  for c in s.containers.values()}
    fields = {f.id + 10000: dataclasses.replace(f, id=f.id + 10000, container_id=f.container_id + 1000)
              for f in s.fields.values()}
    assets = {}
    for a in s.assets.values():
        name = "other" if a.type_name == "Schema" else a.name
        assets["b" + a.guid] = dataclasses.replace(
            a, guid="b" + a.guid, qualified_name=_qn(a.qualified_name), name=name,
            parent_qn=_qn(a.parent_qn) if a.parent_qn else None)
    links = {"b" + k: dataclasses.replace(l, guid="b" + l.guid, qualified_name=_qn(l.qualified_name),
                                          asset_guid="b" + l.asset_guid if l.asset_guid else None)
             for k, l in s.links.items()}
    return dataclasses.replace(s, datastores=ds, containers=containers, fields=fields,
                               assets=assets, links=links)


@st.composite
def two_datastores(draw) -> tuple[Snapshot, dict[str, Any], PlanSettings]:
    """Two worlds side by side: the second moved to datastore 3 on schema sales/other of the
    same connection (so a partitioned plan has two real parts), ownership and settings."""
    first, second = draw(snapshots()), _second(draw(snapshots()))
    world = dataclasses.replace(
        first,
        datastores={**first.datastores, **second.datastores},
        containers={**first.containers, **second.containers},
        fields={**first.fields, **second.fields},
        connections={**second.connections, **first.connections},
        assets={**first.assets, **second.assets},
        links={**first.links, **second.links},
    )
    s = draw(settings_strategy)
    active = {g for a in world.assets.values() if a.status == "ACTIVE" for g in a.domain_guids}
    if s.domains == ("d-eu",) and "d-eu" not in active:
        s = dataclasses.replace(s, domains=())
    return world, draw(owned_for(world)), s



# --------------------------------------------------------------------------- builders
# Small helpers for example tests: one connection, one schema, names in, records out.


def a_connection(qn: str = CONN, connector: str | None = "postgres", name: str = "pg") -> AConnection:
    return AConnection(qn.rsplit("/", 1)[-1], qn, name, connector)


def a_schema(qn: str = SCHEMA, guid: str = "s1", **kw: Any) -> AAsset:
    conn, _, rest = qn.rpartition("/")
    conn_qn = "/".join(qn.split("/")[:3])
    return AAsset(guid, "Schema", qn, rest, conn_qn, conn, **kw)


def a_table(name: str, guid: str | None = None, parent: str = SCHEMA, type_name: str = "Table",
            **kw: Any) -> AAsset:
    conn_qn = "/".join(parent.split("/")[:3])
    return AAsset(guid or f"t-{name}", type_name, f"{parent}/{name}", name, conn_qn, parent, **kw)


def a_column(table: AAsset, name: str, guid: str | None = None, **kw: Any) -> AAsset:
    return AAsset(guid or f"{table.guid}-{name}", "Column", f"{table.qualified_name}/{name}",
                  name, table.connection_qn, table.qualified_name, **kw)


def q_datastore(id: int = 1, name: str = "wh", **kw: Any) -> QDatastore:
    values = {"store_type": "jdbc", "connector": "postgresql", "database": "sales",
              "schema": "public", **kw}
    return QDatastore(id, name, **values)


def q_container(id: int, name: str, datastore_id: int = 1, **kw: Any) -> QContainer:
    kw.setdefault("container_type", "table")
    return QContainer(id, datastore_id, name, **kw)


def q_field(id: int, container_id: int, name: str, **kw: Any) -> QField:
    return QField(id, container_id, name, **kw)


def cm_set(*missing: str, name: str = CM_SET) -> ACMDef:
    """The qatlan custom metadata set as Atlan defines it (optionally without some attributes)."""
    return ACMDef("cmSet", name, tuple(
        ACMAttribute(CM_HASH[a], a, "string" if k == "url" else k)
        for a, k in CM_ATTRIBUTES if a not in missing))


def tag_def(display: str, hashed: str | None = None) -> ATagDef:
    return ATagDef(hashed or f"h{display}", display)


def snapshot_of(*records: Any, **meta: Any) -> Snapshot:
    """A snapshot of `records`, with the default connection and schema unless given."""
    records = list(records)
    if not any(isinstance(r, AConnection) for r in records):
        records.append(a_connection())
    if not any(isinstance(r, AAsset) and r.type_name == "Schema" for r in records):
        records.append(a_schema())
    if not any(isinstance(r, QDatastore) for r in records):
        records.append(q_datastore())
    return Snapshot.from_records(records, **meta)


def cm(**values: Any) -> tuple[tuple[str, Any], ...]:
    """Custom metadata values by attribute name with spaces as underscores: cm(Quality_Score=81)."""
    return tuple(sorted((CM_HASH[k.replace("_", " ")], v) for k, v in values.items()))
