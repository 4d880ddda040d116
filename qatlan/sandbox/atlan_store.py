"""The Atlan side of a sandbox world: entities, typedefs and personas, indexed in memory.

`AtlanStore` holds what the metastore stores (docs/world-format.md, `atlan` part). The API app
(`atlan_app`) reads and writes it; `export()` gives the same shape back, with every change.
`version` is bumped on every mutation so that search results can be cached per version.
`put` / `remove` also keep `index` (`atlan_index.EntityIndex`), which narrows index searches.
"""

from __future__ import annotations

import hashlib
import string
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from qatlan.sandbox._util import gc_paused
from qatlan.sandbox.atlan_index import EntityIndex
from qatlan.sandbox.errors import WorldError

__all__ = [
    "CLASSIFICATION_FLAGS",
    "DOMAIN_TYPES",
    "TYPEDEF_KEYS",
    "AtlanStore",
    "AtlasApiError",
    "bad_request",
    "copy_entity",
    "guid_not_found",
    "invalid_parameters",
    "normalize_classification",
    "normalize_entity",
    "not_authorized",
]

DOMAIN_TYPES = frozenset({"DataDomain", "DataProduct"})
TYPEDEF_KEYS = (
    "enumDefs", "structDefs", "classificationDefs", "entityDefs", "relationshipDefs", "businessMetadataDefs",
)
#: server defaults of the classification flags when a request leaves them null (reference §4.2)
CLASSIFICATION_FLAGS = {
    "propagate": True,
    "removePropagationsOnEntityDelete": True,
    "restrictPropagationThroughLineage": False,
    "restrictPropagationThroughHierarchy": False,
}
_ALNUM = string.ascii_letters + string.digits
_NANOID = _ALNUM + "_-"


class AtlasApiError(Exception):
    """An Atlas error response: HTTP status plus `{"errorCode", "errorMessage"}`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "errorMessage": self.message}


def bad_request(message: str) -> AtlasApiError:
    return AtlasApiError(400, "ATLAS-400-00-029", message)


def invalid_parameters(message: str) -> AtlasApiError:
    return AtlasApiError(400, "ATLAS-400-00-01A", f"invalid parameters: {message}")


def guid_not_found(guid: str) -> AtlasApiError:
    return AtlasApiError(404, "ATLAS-404-00-005", f"Given instance guid {guid} is invalid/not found")


def not_authorized(user: str, action: str) -> AtlasApiError:
    return AtlasApiError(403, "ATLAS-403-00-001", f"{user} is not authorized to perform {action}")


def normalize_classification(raw: dict[str, Any], owner_guid: str) -> dict[str, Any]:
    """A stored tag attachment: direct ones carry no entityGuid, flags are filled in."""
    out: dict[str, Any] = {"typeName": raw["typeName"]}
    source = raw.get("entityGuid")
    if source and source != owner_guid:
        out["entityGuid"] = source
    for flag, default in CLASSIFICATION_FLAGS.items():
        value = raw.get(flag)
        out[flag] = default if value is None else bool(value)
    for key in ("attributes", "validityPeriods"):
        if raw.get(key):
            out[key] = raw[key]
    return out


def copy_entity(ent: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough for the store's writers (they replace values, never mutate them)."""
    out = dict(ent)
    out["attributes"] = dict(ent["attributes"])
    out["classifications"] = [dict(c) for c in ent["classifications"]]
    out["businessAttributes"] = {k: dict(v) for k, v in ent["businessAttributes"].items()}
    return out


class AtlanStore:
    """Entities by guid and by (typeName, qualifiedName), typedefs, and personas by token."""

    def __init__(self, doc_atlan: dict[str, Any], *, clock: Callable[[], float] = time.time):
        self._clock = clock
        self.version = 0
        self.max_bulk_entities = 10_000
        self.max_result_window = 10_000
        self._seq = 0
        self.personas: list[dict[str, Any]] = [dict(p) for p in doc_atlan.get("personas") or []]
        self._by_token = {p["token"]: p for p in self.personas if p.get("token")}
        raw_defs = doc_atlan.get("typedefs") or {}
        self._typedef_keys = [k for k in TYPEDEF_KEYS if k in raw_defs]
        self.typedefs: dict[str, list[dict[str, Any]]] = {k: [dict(d) for d in raw_defs.get(k) or []] for k in TYPEDEF_KEYS}
        self._typedef_index: dict[str, tuple[str, dict[str, Any]]] = {}
        self.reindex_typedefs()
        self.entities: dict[str, dict[str, Any]] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._links: dict[str, list[str]] = {}
        self.index = EntityIndex()
        #: called as on_change(store, old, new) after every put / remove (None: did not exist /
        #: removed); set by `World.set_listener` for outbound webhooks, None otherwise
        self.on_change: Callable[[AtlanStore, dict[str, Any] | None, dict[str, Any] | None], None] | None = None
        now = self.now_ms()
        with gc_paused():
            for i, raw in enumerate(doc_atlan.get("entities") or []):
                self._load_entity(raw, i, now)
            self._resolve_loaded_refs()

    # ---- time, counters, generated names -------------------------------------------------

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _digest(self, purpose: str) -> bytes:
        self._seq += 1
        return hashlib.sha256(f"qatlan-sandbox:{purpose}:{self._seq}".encode()).digest()

    def new_guid(self) -> str:
        while True:
            guid = str(uuid.UUID(bytes=self._digest("guid")[:16], version=4))
            if guid not in self.entities:
                return guid

    def new_hashed_name(self, taken: Iterable[str] = ()) -> str:
        """A 22-character hashed typedef name: one letter and 21 alphanumerics."""
        taken = set(taken)
        while True:
            d = self._digest("typedef")
            name = string.ascii_letters[d[0] % 52] + "".join(_ALNUM[b % 62] for b in d[1:22])
            if name not in self._typedef_index and name not in taken:
                return name

    def new_nanoid(self) -> str:
        return "".join(_NANOID[b % 64] for b in self._digest("nanoid")[:21])

    def bump(self) -> None:
        self.version += 1

    # ---- personas and permissions --------------------------------------------------------

    def persona_for_token(self, token: str) -> dict[str, Any] | None:
        return self._by_token.get(token)

    @staticmethod
    def user_of(persona: dict[str, Any]) -> str:
        return persona.get("user") or f"service-account-apikey-{persona.get('name', '')}"

    def connection_of(self, ent: dict[str, Any], lookup: Callable[[str], Any] | None = None) -> str | None:
        """The connection an asset is under; a Link (anything with an `asset`) follows its asset."""
        lookup = lookup or self.entities.get
        for _ in range(4):
            attrs = ent["attributes"]
            if ent["typeName"] == "Connection":
                return attrs.get("qualifiedName")
            ref = attrs.get("asset")
            if not (isinstance(ref, dict) and ref.get("guid")):
                value = attrs.get("connectionQualifiedName")
                return value if isinstance(value, str) else None  # a list names no connection
            ent = lookup(ref["guid"])
            if ent is None:
                return None
        return None

    def allowed(self, persona: dict[str, Any], mode: str, ent: dict[str, Any], lookup: Any = None) -> bool:
        """May `persona` `mode` ("read" or "update") this entity?"""
        scope = persona.get(mode) or []
        if "*" in scope:
            return True
        if ent["typeName"] in DOMAIN_TYPES:
            # UNCONFIRMED: domains are readable by every token; changing one needs update ["*"]
            return mode == "read"
        return self.connection_of(ent, lookup) in scope

    def read_filter(self, persona: dict[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
        """A predicate for search, or None when the persona reads everything."""
        scope = set(persona.get("read") or [])
        if "*" in scope:
            return None
        conn_of = self.connection_of
        return lambda e: e["typeName"] in DOMAIN_TYPES or conn_of(e) in scope

    # ---- entities ------------------------------------------------------------------------

    def get(self, guid: str) -> dict[str, Any] | None:
        return self.entities.get(guid)

    def find(self, type_name: str, qualified_name: str) -> dict[str, Any] | None:
        guid = self._by_key.get((type_name, qualified_name))
        return self.entities[guid] if guid else None

    def guid_for(self, type_name: str, qualified_name: str) -> str | None:
        return self._by_key.get((type_name, qualified_name))

    def copy(self, guid: str) -> dict[str, Any]:
        return copy_entity(self.entities[guid])

    def links_of(self, asset_guid: str) -> list[dict[str, Any]]:
        return [self.entities[g] for g in self._links.get(asset_guid, ())]

    def put(self, ent: dict[str, Any]) -> None:
        """Insert or replace an entity (keeps the indexes); the caller bumps `version`."""
        guid = ent["guid"]
        key = (ent["typeName"], ent["attributes"]["qualifiedName"])
        holder = self._by_key.get(key)
        if holder is not None and holder != guid:
            raise WorldError(f"{key[0]} with qualifiedName {key[1]!r} already exists (guid {holder})")
        old = self.entities.get(guid)
        if old is not None:
            self._unindex(old)
        self.entities[guid] = ent
        self.index.replace(old, ent)
        self._by_key[key] = guid
        asset = self._link_asset(ent)
        if asset:
            self._links.setdefault(asset, []).append(guid)
        if self.on_change is not None:
            self.on_change(self, old, ent)

    def remove(self, guid: str) -> dict[str, Any]:
        ent = self.entities.pop(guid)
        self._unindex(ent)
        self.index.remove(ent)
        if self.on_change is not None:
            self.on_change(self, ent, None)
        return ent

    def _unindex(self, ent: dict[str, Any]) -> None:
        key = (ent["typeName"], ent["attributes"]["qualifiedName"])
        if self._by_key.get(key) == ent["guid"]:
            del self._by_key[key]
        asset = self._link_asset(ent)
        if asset and ent["guid"] in self._links.get(asset, ()):
            self._links[asset].remove(ent["guid"])

    @staticmethod
    def _link_asset(ent: dict[str, Any]) -> str | None:
        ref = ent["attributes"].get("asset") if ent["typeName"] == "Link" else None
        return ref.get("guid") if isinstance(ref, dict) else None

    def _load_entity(self, raw: Any, index: int, now: int) -> None:
        where = f"atlan.entities[{index}]"
        ent = normalize_entity(raw, where, now)
        if ent["guid"] in self.entities:
            raise WorldError(f"{where}.guid: duplicate guid {ent['guid']}")
        try:
            self.put(ent)
        except WorldError as exc:
            raise WorldError(f"{where}: {exc}") from exc

    def _resolve_loaded_refs(self) -> None:
        """Turn `asset` references given by uniqueAttributes into guid references."""
        for ent in list(self.entities.values()):
            ref = ent["attributes"].get("asset")
            if isinstance(ref, dict) and not ref.get("guid") and isinstance(ref.get("uniqueAttributes"), dict):
                target = self.find(ref.get("typeName", ""), ref["uniqueAttributes"].get("qualifiedName", ""))
                if target is None:
                    raise WorldError(f"entity {ent['guid']}: attributes.asset refers to a missing asset")
                new = copy_entity(ent)
                new["attributes"]["asset"] = {"typeName": target["typeName"], "guid": target["guid"]}
                self.put(new)

    # ---- typedefs ------------------------------------------------------------------------

    def reindex_typedefs(self) -> None:
        self._typedef_index = {d["name"]: (k, d) for k in TYPEDEF_KEYS for d in self.typedefs[k] if "name" in d}
        for key in ("classificationDefs", "businessMetadataDefs"):
            if key not in self._typedef_keys:
                self._typedef_keys.append(key)

    def typedef(self, name: str) -> tuple[str, dict[str, Any]] | None:
        return self._typedef_index.get(name)

    def classification_def(self, name: str) -> dict[str, Any] | None:
        found = self._typedef_index.get(name)
        return found[1] if found and found[0] == "classificationDefs" else None

    def bm_def(self, name: str) -> dict[str, Any] | None:
        found = self._typedef_index.get(name)
        return found[1] if found and found[0] == "businessMetadataDefs" else None

    def note_typedef_key(self, key: str) -> None:
        if key not in self._typedef_keys:
            self._typedef_keys.append(key)

    # ---- export and admin changes --------------------------------------------------------

    def export(self) -> dict[str, Any]:
        keys = [k for k in TYPEDEF_KEYS if k in self._typedef_keys]
        with gc_paused():
            entities = [_export_entity(e) for e in self.entities.values()]
        return {
            "personas": [dict(p) for p in self.personas],
            "typedefs": {k: [dict(d) for d in self.typedefs[k]] for k in keys},
            "entities": entities,
        }


def normalize_entity(raw: Any, where: str, now: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise WorldError(f"{where}: an entity is a JSON object")
    for key in ("typeName", "guid"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise WorldError(f"{where}.{key}: a non-empty string is required")
    attrs = raw.get("attributes")
    if not isinstance(attrs, dict):
        raise WorldError(f"{where}.attributes: an object is required")
    for key in ("qualifiedName", "name"):
        if not isinstance(attrs.get(key), str):
            raise WorldError(f"{where}.attributes.{key}: a string is required")
    status = raw.get("status") or "ACTIVE"
    if status not in ("ACTIVE", "DELETED"):
        raise WorldError(f"{where}.status: must be ACTIVE or DELETED, not {status!r}")
    guid = raw["guid"]
    created = int(raw.get("createTime") or now)
    ent: dict[str, Any] = {
        "typeName": raw["typeName"],
        "guid": guid,
        "status": status,
        "attributes": {k: v for k, v in attrs.items() if v is not None and k != "links"},
        "classifications": [normalize_classification(c, guid) for c in _dicts(raw, "classifications", where)],
        "businessAttributes": _business_attributes(raw, where),
        "createTime": created,
        "updateTime": int(raw.get("updateTime") or created),
    }
    for key in ("createdBy", "updatedBy"):
        if raw.get(key) is not None:
            ent[key] = raw[key]
    return ent


def _business_attributes(raw: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    value = raw.get("businessAttributes")
    if not value:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise WorldError(f"{where}.businessAttributes: an object of custom metadata sets is required")
    return {k: dict(v) for k, v in value.items() if v}


def _dicts(raw: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = raw.get(key)
    if not items:
        return []
    if not isinstance(items, list) or not all(isinstance(c, dict) and isinstance(c.get("typeName"), str) for c in items):
        raise WorldError(f"{where}.{key}: a list of objects with a typeName is required")
    return items


def _export_entity(ent: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "typeName": ent["typeName"],
        "guid": ent["guid"],
        "status": ent["status"],
        "attributes": dict(ent["attributes"]),
    }
    if ent["classifications"]:
        out["classifications"] = [dict(c) for c in ent["classifications"]]
    if ent["businessAttributes"]:
        out["businessAttributes"] = {k: dict(v) for k, v in ent["businessAttributes"].items()}
    for key in ("createTime", "updateTime", "createdBy", "updatedBy"):
        if key in ent:
            out[key] = ent[key]
    return out
