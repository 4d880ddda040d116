"""`AtlanClient`: search, typedefs, domains, reading assets and writing plan changes back.

Paths are Atlan's `/api/meta/...` relative to the tenant URL. Search pages through the index
as `search.SearchPager` decides; hits and entities become `qatlan.model` records through the
converters of `records.py`; writes are built from plan changes by `writes.py`. Callers never
see Atlan's JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from qatlan.clients.atlan.records import (
    ASSET_ATTRIBUTES,
    asset_record,
    cm_def_record,
    cm_defs_of,
    connection_qn_of,
    connection_record,
    domain_record,
    link_asset_qn,
    link_record,
    related_link_records,
    tag_def_record,
)
from qatlan.clients.atlan.search import SearchPager
from qatlan.clients.atlan.writes import (
    Names,
    bulk_flags,
    cm_attribute_payload,
    cm_set_payload,
    entity_of,
    tag_def_payload,
    typedefs_body,
)
from qatlan.clients.errors import ATLAN_403_HINT
from qatlan.clients.http import HttpClient, gather
from qatlan.errors import NotFound, PermissionDenied
from qatlan.model import AAsset, ACMDef, AConnection, ADomain, ALink, ATagDef
from qatlan.plan import Change

__all__ = ["ASSET_TYPES", "READ_LIMIT", "AtlanClient", "Entities"]

SEARCH = "/api/meta/search/indexsearch"
TYPEDEFS = "/api/meta/types/typedefs"
BULK = "/api/meta/entity/bulk"
ASSET_TYPES: tuple[str, ...] = ("Schema", "Table", "View", "MaterialisedView", "Column")
#: GUIDs per `GET /entity/bulk` (keeps the URL short)
READ_LIMIT = 100


class Entities(NamedTuple):
    """What `read_entities` found: ACTIVE assets and Links by GUID, and (when asked for) the
    ACTIVE Links related to each asset, by asset GUID (their `url` is unknown: None)."""

    assets: dict[str, AAsset]
    links: dict[str, ALink]
    related_links: dict[str, list[ALink]]

    @classmethod
    def empty(cls) -> Entities:
        return cls({}, {}, {})


def _term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {field: {"value": value}}}


def _active_of_type(type_name: str, *more: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": [_term("__typeName.keyword", type_name), _term("__state", "ACTIVE"), *more]}}


class AtlanClient:
    """Atlan over one `HttpClient`."""

    def __init__(self, http: HttpClient, page_size: int = 300, max_result_window: int = 10_000):
        self.http = http
        self.page_size = page_size
        self.max_result_window = max_result_window
        self._connection_names: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"AtlanClient({self.http!r}, page_size={self.page_size})"

    # ----------------------------------------------------------------------- search

    async def search(
        self,
        query: Mapping[str, Any],
        *,
        attributes: Sequence[str] = (),
        relation_attributes: Sequence[str] = (),
        sort: Sequence[Mapping[str, Any]] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every entity hit of an index search `query`, each once (see `_atlan_search`)."""
        pager = SearchPager(query, sort=sort, page_size=self.page_size, window=self.max_result_window)
        while (dsl := pager.dsl()) is not None:
            data = await self._search_request(dsl, attributes, relation_attributes)
            for hit in pager.take(data):
                yield hit

    async def _search_request(
        self, dsl: dict[str, Any], attributes: Sequence[str], relation_attributes: Sequence[str]
    ) -> dict[str, Any]:
        body = {
            "dsl": dsl,
            "attributes": list(attributes),
            "relationAttributes": list(relation_attributes),
            "suppressLogs": True,
            "showSearchScore": False,
            "excludeMeanings": True,
            "excludeClassifications": False,
            "includeClassificationNames": False,
            "allowDeletedRelations": False,
            "requestMetadata": {"saveSearchLog": False, "utmTags": ["project_qatlan"]},
        }
        data = await self.http.request("POST", SEARCH, json=body, idempotent=True)
        if not isinstance(data, Mapping) or not isinstance(data.get("entities", []), list):
            raise self.http.unexpected("POST", SEARCH, "a body that is not a search result")
        return dict(data)

    async def count_active_assets(self, connection_qns: Iterable[str],
                                  type_names: Sequence[str] = ASSET_TYPES) -> int:
        """How many ACTIVE assets of these types the connections hold (one request)."""
        return await self._count({"bool": {"filter": [
            {"terms": {"__typeName.keyword": list(type_names)}},
            {"terms": {"connectionQualifiedName": sorted(connection_qns)}},
            _term("__state", "ACTIVE"),
        ]}})

    async def _count(self, query: Mapping[str, Any]) -> int:
        """How many entities match `query` (one request, `size` 1, exact total)."""
        dsl = {"from": 0, "size": 1, "track_total_hits": True, "query": dict(query)}
        data = await self._search_request(dsl, (), ())
        count = data.get("approximateCount")
        if not isinstance(count, int):
            raise self.http.unexpected("POST", SEARCH, "a search result without approximateCount")
        return count

    # ----------------------------------------------------------------------- typedefs

    async def typedefs(self, *types: str) -> dict[str, Any]:
        """`GET /api/meta/types/typedefs`, filtered by (repeated) `type`, e.g. CLASSIFICATION."""
        data = await self.http.request("GET", TYPEDEFS, params={"type": list(types)} if types else None)
        if not isinstance(data, Mapping):
            raise self.http.unexpected("GET", TYPEDEFS, "a body that is not a typedefs object")
        return dict(data)

    async def tag_defs(self) -> list[ATagDef]:
        """Every tag definition."""
        data = await self.typedefs("CLASSIFICATION")
        return [tag_def_record(d) for d in data.get("classificationDefs") or () if d.get("name")]

    async def cm_defs(self) -> list[ACMDef]:
        """Every custom metadata set, archived attributes left out."""
        data = await self.typedefs("BUSINESS_METADATA")
        return [cm_def_record(d) for d in data.get("businessMetadataDefs") or () if d.get("name")]

    async def create_tag_defs(self, display_names: Iterable[str]) -> list[ATagDef]:
        body = typedefs_body(classificationDefs=[tag_def_payload(n) for n in display_names])
        if not body["classificationDefs"]:
            return []
        data = await self._typedef_write("POST", body)
        return [tag_def_record(d) for d in data.get("classificationDefs") or ()]

    async def create_cm_set(
        self,
        display_name: str,
        attributes: Sequence[tuple[str, str]],
        *,
        applicable_connections: Sequence[str] | None = None,
    ) -> ACMDef:
        """Create a custom metadata set; `attributes` are `(display name, type)` pairs."""
        payload = cm_set_payload(display_name, attributes, applicable_connections)
        data = await self._typedef_write("POST", typedefs_body(businessMetadataDefs=[payload]))
        return self._one_cm_def(data, "POST")

    async def add_cm_attributes(
        self,
        cm_def: ACMDef,
        attributes: Sequence[tuple[str, str]],
        *,
        applicable_connections: Sequence[str] | None = None,
    ) -> ACMDef:
        """Add attributes to an existing set: re-read its full def, append, `PUT` it back."""
        raw = await self._raw_cm_def(cm_def)
        live = {a.get("displayName") for a in raw.get("attributeDefs") or ()
                if str((a.get("options") or {}).get("isArchived", "false")).lower() != "true"}
        new = [cm_attribute_payload(n, k, applicable_connections) for n, k in attributes if n not in live]
        if not new:
            return cm_def_record(raw)
        raw["attributeDefs"] = [*(raw.get("attributeDefs") or ()), *new]
        data = await self._typedef_write("PUT", typedefs_body(businessMetadataDefs=[raw]))
        return self._one_cm_def(data, "PUT")

    async def _raw_cm_def(self, cm_def: ACMDef) -> dict[str, Any]:
        data = await self.typedefs("BUSINESS_METADATA")
        for d in data.get("businessMetadataDefs") or ():
            if d.get("name") == cm_def.hashed_name:
                return dict(d)
        raise NotFound(
            f"Atlan has no custom metadata set '{cm_def.display_name}' ({cm_def.hashed_name}) any more",
            service="atlan", status=404, method="GET", path=TYPEDEFS,
            hint="someone deleted it in Atlan; run `qatlan refresh` and plan again to recreate it",
        )

    async def _typedef_write(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            # not idempotent: a repeated create is a 409, a repeated PUT adds attributes twice
            data = await self.http.request(method, TYPEDEFS, json=body, idempotent=False)
        except PermissionDenied as exc:
            exc.hint = "the Atlan API token may not manage tag or custom metadata definitions; " \
                "create them in Atlan or use a token with admin rights"
            raise
        if not isinstance(data, Mapping):
            raise self.http.unexpected(method, TYPEDEFS, "a body that is not a typedefs object")
        return dict(data)

    def _one_cm_def(self, data: Mapping[str, Any], method: str) -> ACMDef:
        defs = data.get("businessMetadataDefs") or []
        if not defs or not isinstance(defs[0], Mapping) or not defs[0].get("name"):
            raise self.http.unexpected(method, TYPEDEFS, "no businessMetadataDefs in the answer")
        return cm_def_record(defs[0])

    # ----------------------------------------------------------------------- reading

    async def domains(self) -> list[ADomain]:
        """Every ACTIVE data domain (subdomains included)."""
        attrs = ["name", "qualifiedName", "parentDomainQualifiedName", "superDomainQualifiedName"]
        return [domain_record(h) async for h in self.search(_active_of_type("DataDomain"), attributes=attrs)]

    async def connections(self) -> list[AConnection]:
        """Every ACTIVE connection the token can see."""
        attrs = ["name", "qualifiedName", "connectorName"]
        hits = self.search(_active_of_type("Connection"), attributes=attrs)
        found = [connection_record(h) async for h in hits]
        self._connection_names.update({c.qualified_name: c.name for c in found})
        return found

    async def assets(
        self,
        connection_qns: Iterable[str],
        *,
        type_names: Sequence[str] = ASSET_TYPES,
        cm_def: ACMDef | Sequence[ACMDef] | None = None,
        modified_since_ms: int | None = None,
    ) -> AsyncIterator[AAsset]:
        """Assets of these types under these connections.

        ACTIVE ones only; with `modified_since_ms`, the ones changed since then, DELETED
        (archived) ones included so that deletions are seen.
        """
        qns = sorted(set(connection_qns))
        if not qns or not type_names:
            return
        filters: list[dict[str, Any]] = [
            {"terms": {"__typeName.keyword": list(type_names)}},
            {"terms": {"connectionQualifiedName": qns}},
        ]
        if modified_since_ms is None:
            filters.append(_term("__state", "ACTIVE"))
        else:
            filters.append({"terms": {"__state": ["ACTIVE", "DELETED"]}})
            filters.append({"range": {"__modificationTimestamp": {"gte": modified_since_ms}}})
        attributes = list(ASSET_ATTRIBUTES)
        for d in cm_defs_of(cm_def):
            attributes += [f"{d.hashed_name}.{a.hashed_name}" for a in d.attributes]
        with self._persona_hint(qns):
            async for hit in self.search({"bool": {"filter": filters}}, attributes=attributes):
                yield asset_record(hit, cm_def)

    async def assets_under(
        self, qualified_names: Iterable[str], *, exact: Iterable[str] = (),
        cm_def: ACMDef | Sequence[ACMDef] | None = None,
    ) -> AsyncIterator[AAsset]:
        """ACTIVE assets (of `ASSET_TYPES`) that are these assets or under them (a table and
        its columns), and the assets named in `exact` alone (a schema), by `term` and `prefix`
        on qualifiedName: `qatlan watch` reads the few tables an event named this way, 50
        names a search."""
        wanted = [(qn, True) for qn in sorted(set(qualified_names))]
        wanted += [(qn, False) for qn in sorted(set(exact))]
        attributes = list(ASSET_ATTRIBUTES)
        for d in cm_defs_of(cm_def):
            attributes += [f"{d.hashed_name}.{a.hashed_name}" for a in d.attributes]
        for i in range(0, len(wanted), 50):
            should: list[dict[str, Any]] = []
            for qn, below in wanted[i:i + 50]:
                should.append(_term("qualifiedName", qn))
                if below:
                    should.append({"prefix": {"qualifiedName": {"value": qn + "/"}}})
            query = {"bool": {"filter": [{"terms": {"__typeName.keyword": list(ASSET_TYPES)}},
                                         _term("__state", "ACTIVE")],
                              "should": should, "minimum_should_match": 1}}
            async for hit in self.search(query, attributes=attributes):
                yield asset_record(hit, cm_def)

    async def links(
        self, name: str = "Qualytics", connection_qns: Iterable[str] | None = None
    ) -> list[ALink]:
        """ACTIVE Link resources called `name`; with `connection_qns`, only links whose asset is
        known to be under one of them (links whose asset QN the hit lacks are kept)."""
        query = _active_of_type("Link", _term("name.keyword", name))
        prefixes = tuple(f"{qn}/" for qn in connection_qns) if connection_qns is not None else None
        found = []
        async for hit in self.search(
            query,
            attributes=["name", "qualifiedName", "link", "asset"],
            relation_attributes=["qualifiedName"],
        ):
            asset_qn = link_asset_qn(hit)
            if prefixes is not None and asset_qn and not asset_qn.startswith(prefixes):
                continue
            found.append(link_record(hit))
        return found

    async def read_entities(self, guids: Iterable[str], cm_def: ACMDef | Sequence[ACMDef] | None = None, *,
                            related_links: bool = False) -> Entities:
        """ACTIVE assets (with `cm_def`'s values) and Links by GUID: `GET /entity/bulk`,
        `READ_LIMIT` GUIDs per request, concurrently. Entities that are archived, gone or not
        visible are left out. With `related_links`, the same requests also return each
        asset's `links` relationship (`ignoreRelationships=false`): every ACTIVE Link on it,
        whatever its qualifiedName, as Atlan's related-object headers (GUID, name; no URL).
        That costs no request, only a larger answer (Atlan then returns all of an asset's
        relationships, its columns too).

        `GET /entity/bulk` refuses the whole request when one GUID is unknown (404) or not
        readable (403): such a request is split until the culprit stands alone.
        """
        found = Entities.empty()
        unique = list(dict.fromkeys(g for g in guids if g))
        parts = [unique[i:i + READ_LIMIT] for i in range(0, len(unique), READ_LIMIT)]
        await gather(*(self._read_some(p, cm_def, found, related_links) for p in parts))
        return found

    async def _read_some(self, guids: list[str], cm_def: ACMDef | Sequence[ACMDef] | None, found: Entities,
                         related: bool) -> None:
        try:
            entities = await self._get_bulk(guids, related)
        except (NotFound, PermissionDenied):
            if len(guids) == 1:
                return
            half = len(guids) // 2
            await self._read_some(guids[:half], cm_def, found, related)
            await self._read_some(guids[half:], cm_def, found, related)
            return
        for e in entities:
            if e.get("status", "ACTIVE") != "ACTIVE":
                continue
            if e.get("typeName") == "Link":
                link = link_record(e)
                found.links[link.guid] = link
            else:
                asset = asset_record(e, cm_def)
                found.assets[asset.guid] = asset
                if related:
                    found.related_links[asset.guid] = related_link_records(e)

    async def _get_bulk(self, guids: list[str], related: bool = False) -> list[dict[str, Any]]:
        params = {"guid": guids, "minExtInfo": False, "ignoreRelationships": not related}
        data = await self.http.request("GET", BULK, params=params)
        if not isinstance(data, Mapping) or not isinstance(data.get("entities", []), list):
            raise self.http.unexpected("GET", BULK, "a body without an entities list")
        return [dict(e) for e in data.get("entities") or ()]

    async def find_links(self, qualified_names: Iterable[str], per_search: int | None = None) -> dict[str, ALink]:
        """ACTIVE Links by qualifiedName: an index search per `per_search` names (default: the
        page size, so each search is answered in one page), concurrently."""
        out: dict[str, ALink] = {}
        unique = list(dict.fromkeys(qualified_names))
        per = max(1, per_search or self.page_size)

        async def one(part: list[str]) -> None:
            query = _active_of_type("Link", {"terms": {"qualifiedName": part}})
            async for hit in self.search(query, attributes=["name", "qualifiedName", "link"]):
                link = link_record(hit)
                if link.qualified_name:
                    out[link.qualified_name] = link

        await asyncio.gather(*(one(unique[i:i + per]) for i in range(0, len(unique), per)))
        return out

    # ----------------------------------------------------------------------- writing

    async def bulk_upsert(
        self,
        entities: Sequence[Mapping[str, Any]],
        *,
        append_tags: bool = False,
        replace_business_attributes: bool = False,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """`POST /api/meta/entity/bulk` with pyatlan's four flags; returns the mutation response.

        An entity without a `guid` is sent with the placeholder `-<index + 1>`, so its real GUID
        is `response["guidAssignments"][f"-{index + 1}"]`. Pass `idempotent=False` for entities
        whose qualifiedName is not deterministic (a repeated create would duplicate them).
        """
        if not entities:
            return {}
        body = {"entities": [_with_placeholder(e, i) for i, e in enumerate(entities)]}
        params = {
            "replaceTags": False,
            "appendTags": append_tags,
            "replaceBusinessAttributes": replace_business_attributes,
            "overwriteBusinessAttributes": False,
        }
        with self._persona_hint(_connections_of(entities)):
            data = await self.http.request("POST", BULK, params=params, json=body, idempotent=idempotent)
        if not isinstance(data, Mapping):
            raise self.http.unexpected("POST", BULK, "a body that is not a mutation response")
        return dict(data)

    async def upsert_changes(self, entities: Sequence[tuple[Sequence[Change], str | None]],
                             names: Names) -> dict[int, str]:
        """Write plan changes in one bulk upsert: each entry is one asset's changes with its
        name as Atlan has it (None: the last part of its qualifiedName), or one Link change.
        Returns the GUIDs Atlan assigned to new entities, by their index in `entities`."""
        payload = [entity_of(changes, names, name) for changes, name in entities]
        flags = bulk_flags([c for changes, _ in entities for c in changes])
        answer = await self.bulk_upsert(payload, **flags)
        assigned = answer.get("guidAssignments") or {}
        return {i: str(assigned[f"-{i + 1}"]) for i in range(len(entities)) if assigned.get(f"-{i + 1}")}

    async def delete_entities(self, guids: Sequence[str]) -> None:
        """Archive entities by GUID (`DELETE /entity/bulk`, SOFT; reference §8.5)."""
        if guids:
            await self.http.request("DELETE", BULK, params={"guid": list(guids), "deleteType": "SOFT"},
                                    idempotent=True)

    @contextlib.contextmanager
    def _persona_hint(self, connection_qns: Iterable[str]) -> Iterator[None]:
        """Give a 403 the persona hint, naming the connection(s) when known."""
        qns = sorted(set(connection_qns))
        try:
            yield
        except PermissionDenied as exc:
            if qns:
                named = ", ".join(
                    f"{self._connection_names[q]} ({q})" if q in self._connection_names else q for q in qns
                )
                exc.hint = ATLAN_403_HINT.format(what=f"connection {named}")
            raise


def _with_placeholder(entity: Mapping[str, Any], index: int) -> dict[str, Any]:
    out = dict(entity)
    if not out.get("guid"):
        out["guid"] = f"-{index + 1}"
    return out


def _connections_of(entities: Iterable[Mapping[str, Any]]) -> set[str]:
    """Connection QNs the entities belong to (Links: their asset's), where it can be told."""
    found = set()
    for e in entities:
        attrs = e.get("attributes") or {}
        qn = attrs.get("connectionQualifiedName") or connection_qn_of(attrs.get("qualifiedName"))
        asset = attrs.get("asset")
        if not qn and isinstance(asset, Mapping):
            qn = connection_qn_of((asset.get("uniqueAttributes") or {}).get("qualifiedName"))
        if qn:
            found.add(str(qn))
    return found
