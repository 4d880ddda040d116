"""Bulk upsert and delete for the sandbox Atlan (reference §4.3, §6, §7.1, §8, §9).

A bulk request is all-or-nothing: every entity is matched, authorised and computed on a copy
first, and the store is only written when the whole request is valid. Entities whose content
does not change are skipped (absent from `mutatedEntities`, present in `guidAssignments`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qatlan.sandbox.atlan_store import (
    AtlanStore,
    AtlasApiError,
    bad_request,
    copy_entity,
    guid_not_found,
    invalid_parameters,
    not_authorized,
)
from qatlan.sandbox.atlan_views import entity_header
from qatlan.sandbox.atlan_writes import (
    check_business_attributes,
    check_tags,
    merge_business_attributes,
    purge,
    remove_tag,
    replace_tags,
    same_content,
    upsert_tag,
)

__all__ = ["BulkFlags", "bulk_delete", "bulk_upsert", "partial_update_by_qualified_name"]

Entity = dict[str, Any]
_LONG_STRING_ATTRIBUTES = frozenset({"rawQueryText"})
_NO_DOMAIN_TYPES = frozenset({"DataDomain", "DataProduct", "AtlasGlossary", "AtlasGlossaryTerm", "AtlasGlossaryCategory"})
_TAG_FLAGS = "Only one of [replaceClassifications, replaceTags, appendTags] can be true"


@dataclass(frozen=True)
class BulkFlags:
    """The query flags of POST /entity/bulk (reference §8.1)."""

    replace_classifications: bool = False
    replace_tags: bool = False
    append_tags: bool = False
    replace_business_attributes: bool = False
    overwrite_business_attributes: bool = False

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> BulkFlags:
        def flag(name: str) -> bool:
            return str(params.get(name, "false")).strip().lower() == "true"

        flags = cls(
            flag("replaceClassifications"), flag("replaceTags"), flag("appendTags"),
            flag("replaceBusinessAttributes"), flag("overwriteBusinessAttributes"),
        )
        if flags.replace_classifications + flags.replace_tags + flags.append_tags > 1:
            raise bad_request(_TAG_FLAGS)
        return flags


def bulk_upsert(store: AtlanStore, persona: dict[str, Any], body: Any, flags: BulkFlags) -> dict[str, Any]:
    entities = body.get("entities") if isinstance(body, dict) else None
    if not isinstance(entities, list) or not entities:
        raise invalid_parameters("no entities to create/update.")
    if len(entities) > store.max_bulk_entities:
        raise AtlasApiError(
            400, "ATLAS-400-00-212", f"Request Error - Entities should be less than or equal to: {store.max_bulk_entities}"
        )
    return _BulkRun(store, persona, flags).run(entities)


def partial_update_by_qualified_name(
    store: AtlanStore, persona: dict[str, Any], type_name: str, qualified_name: str, body: Any
) -> dict[str, Any]:
    """PUT /entity/uniqueAttribute/type/{type}: a partial update labelled PARTIAL_UPDATE."""
    ent = store.find(type_name, qualified_name)
    if ent is None:
        raise unique_attribute_not_found(type_name, qualified_name)
    entity = body.get("entity") if isinstance(body, dict) else None
    if not isinstance(entity, dict):
        raise invalid_parameters("the body must be {\"entity\": {...}}")
    payload = {**entity, "guid": ent["guid"], "typeName": type_name}
    return _BulkRun(store, persona, BulkFlags(), partial=True).run([payload])


def unique_attribute_not_found(type_name: str, qualified_name: str) -> AtlasApiError:
    return AtlasApiError(
        404, "ATLAS-404-00-009", f"Instance {type_name} with unique attribute {{qualifiedName={qualified_name}}} does not exist"
    )


def bulk_delete(store: AtlanStore, persona: dict[str, Any], guids: list[str], delete_type: str) -> dict[str, Any]:
    """DELETE /entity/bulk: SOFT archives (status DELETED); HARD/PURGE remove for good."""
    kind = (delete_type or "SOFT").upper()
    if kind not in ("SOFT", "HARD", "PURGE"):
        raise bad_request(f"Invalid deleteType: {delete_type}")
    if not guids:
        raise invalid_parameters("guid is required")
    user = store.user_of(persona)
    for guid in guids:
        ent = store.get(guid)
        if ent is None:
            raise guid_not_found(guid)
        if not store.allowed(persona, "update", ent):
            raise not_authorized(user, f"delete entity: guid={guid}")
    headers = [_delete_one(store, guid, kind, user) for guid in dict.fromkeys(guids)]
    headers = [h for h in headers if h]
    if not headers:
        return {}
    store.bump()
    # UNCONFIRMED: PURGE/HARD results are reported under DELETE (what pyatlan reads), not PURGE
    return {"mutatedEntities": {"DELETE": headers}}


def _delete_one(store: AtlanStore, guid: str, kind: str, user: str) -> dict[str, Any] | None:
    ent = store.get(guid)
    if ent is None:  # already purged with the asset it belonged to
        return None
    if kind == "SOFT":
        if ent["status"] == "DELETED":
            return None
        new = copy_entity(ent)
        new.update(status="DELETED", updateTime=store.now_ms(), updatedBy=user)
        store.put(new)
        return entity_header(store, new)
    header = entity_header(store, ent)
    header["status"] = "PURGED"  # UNCONFIRMED: status shown for a purged entity
    purge(store, guid)
    return header


class _BulkRun:
    """One bulk request: match, authorise, compute on copies, then commit."""

    def __init__(self, store: AtlanStore, persona: dict[str, Any], flags: BulkFlags, *, partial: bool = False):
        self.store, self.persona, self.flags, self.partial = store, persona, flags, partial
        self.user, self.now = store.user_of(persona), store.now_ms()
        self.assign: dict[str, str] = {}  # placeholder guid -> real guid
        self.new_keys: dict[tuple[str, str], str] = {}  # (typeName, qualifiedName) -> guid created here
        self.new_types: dict[str, str] = {}  # guid created here -> typeName
        self.work: dict[str, Entity] = {}  # guid -> entity as it will be stored

    def run(self, payload: list[Any]) -> dict[str, Any]:
        targets = [self._target(i, e) for i, e in enumerate(payload)]
        self._authorise_existing(targets)
        for i, (e, guid) in enumerate(zip(payload, targets, strict=True)):
            self._apply(i, e, guid)
        self._validate_keys()
        self._authorise_results()
        return self._commit()

    # ---- matching and authorisation ----

    def _target(self, i: int, e: Any) -> str:
        if not isinstance(e, dict) or not isinstance(e.get("typeName"), str) or not e["typeName"]:
            raise invalid_parameters(f"entities[{i}]: typeName is required")
        if e.get("attributes") is not None and not isinstance(e["attributes"], dict):
            raise invalid_parameters(f"entities[{i}].attributes must be an object")
        type_name, guid = e["typeName"], e.get("guid")
        qn = (e.get("attributes") or {}).get("qualifiedName")
        real = isinstance(guid, str) and bool(guid) and not guid.startswith("-")
        found = guid if real and (guid in self.store.entities or guid in self.new_types) else None
        if found is None and isinstance(qn, str):
            found = self.store.guid_for(type_name, qn) or self.new_keys.get((type_name, qn))
        if found is None and real:
            # UNCONFIRMED: an unknown real guid (no match by qualifiedName either) is a 404
            raise guid_not_found(guid)
        if found is None:
            found = self.store.new_guid()
            self.new_types[found] = type_name
            if isinstance(qn, str):
                self.new_keys[(type_name, qn)] = found
        if isinstance(guid, str) and guid.startswith("-"):
            self.assign[guid] = found
        return found

    def _authorise_existing(self, targets: list[str]) -> None:
        for guid in targets:
            old = self.store.get(guid)
            if old is not None and not self.store.allowed(self.persona, "update", old):
                # UNCONFIRMED: the action text of write refusals ("update entity: guid=..." here)
                raise not_authorized(self.user, f"update entity: guid={guid}")

    def _authorise_results(self) -> None:
        def lookup(guid: str) -> Entity | None:
            return self.work.get(guid) or self.store.get(guid)

        for guid, ent in self.work.items():
            if not self.store.allowed(self.persona, "update", ent, lookup):
                creating = guid not in self.store.entities
                action = f"create entity: type={ent['typeName']}" if creating else f"update entity: guid={guid}"
                raise not_authorized(self.user, action)

    # ---- computing the new state ----

    def _apply(self, i: int, e: dict[str, Any], guid: str) -> None:
        creating = guid not in self.store.entities
        first = guid not in self.work
        if not first:
            cur = self.work[guid]
        elif creating:
            cur = self._skeleton(e["typeName"], guid)
        else:
            cur = self.store.copy(guid)
        self._merge_attributes(i, cur, self._incoming_attributes(e), creating)
        if e.get("status") in ("ACTIVE", "DELETED"):
            cur["status"] = e["status"]
        self._apply_tags(i, cur, e, creating)
        self._apply_business_attributes(cur, e, creating)
        if creating and first:
            self._check_new(i, cur)
        self.work[guid] = cur

    def _skeleton(self, type_name: str, guid: str) -> Entity:
        return {
            "typeName": type_name, "guid": guid, "status": "ACTIVE", "attributes": {}, "classifications": [],
            "businessAttributes": {}, "createTime": self.now, "updateTime": self.now,
            "createdBy": self.user, "updatedBy": self.user,
        }

    @staticmethod
    def _incoming_attributes(e: dict[str, Any]) -> dict[str, Any]:
        attrs = dict(e.get("attributes") or {})
        rel = e.get("relationshipAttributes")
        if isinstance(rel, dict):
            for key in ("asset", "parentDomain"):
                if key in rel:
                    attrs[key] = rel[key]
        return attrs

    def _merge_attributes(self, i: int, cur: Entity, attrs: dict[str, Any], creating: bool) -> None:
        # UNCONFIRMED: the sandbox does not fill in announcementUpdatedAt/By by itself
        for key, value in attrs.items():
            if key == "links":  # UNCONFIRMED: links are changed through Link entities only
                continue
            if key in ("asset", "parentDomain") and value is not None:
                value = self._resolve_ref(value)
            if key == "domainGUIDs":
                value = self._check_domains(cur, value)
            if isinstance(value, str):  # UNCONFIRMED: the code of the string-length refusal
                limit = 2_000_000 if key in _LONG_STRING_ATTRIBUTES else 100_000
                if len(value) > limit:
                    raise invalid_parameters(f"entities[{i}].attributes.{key} is longer than {limit} characters")
            if value is not None:
                cur["attributes"][key] = value
            elif key in ("qualifiedName", "name") and not creating:
                raise AtlasApiError(400, "ATLAS-400-00-02B", f"Mandatory field {cur['typeName']}.{key} has empty/null value")
            else:
                cur["attributes"].pop(key, None)

    def _resolve_ref(self, ref: Any) -> dict[str, str]:
        if not isinstance(ref, dict):
            raise invalid_parameters(f"a relationship reference must be an object, not {ref!r}")
        guid = ref.get("guid")
        if isinstance(guid, str) and guid:
            target = self.assign.get(guid, guid)
        else:
            qn = (ref.get("uniqueAttributes") or {}).get("qualifiedName")
            key = (str(ref.get("typeName")), str(qn))
            target = self.store.guid_for(*key) or self.new_keys.get(key) or ""
        ent = self.work.get(target) or self.store.get(target)
        if ent is not None:
            return {"typeName": ent["typeName"], "guid": target}
        if target in self.new_types:
            return {"typeName": self.new_types[target], "guid": target}
        raise AtlasApiError(404, "ATLAS-404-00-00A", f"Referenced entity {json.dumps(ref, sort_keys=True)} is not found")

    def _check_domains(self, cur: Entity, value: Any) -> list[str] | None:
        """Reference §9: at most one GUID, of an existing DataDomain; [] or null unlinks."""
        if value is None or value == []:
            return None
        if cur["typeName"] in _NO_DOMAIN_TYPES:
            raise invalid_parameters(f"domainGUIDs cannot be set on a {cur['typeName']}")
        if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
            raise invalid_parameters("domainGUIDs must be a list of DataDomain GUIDs")
        if len(set(value)) > 1:
            raise invalid_parameters("Asset can be linked to only one domain")
        domain = self.store.get(value[0])
        if domain is None:
            raise guid_not_found(value[0])
        if domain["typeName"] != "DataDomain":
            raise invalid_parameters(f"Asset can be linked only to a DataDomain; {value[0]} is a {domain['typeName']}")
        return [value[0]]

    def _apply_tags(self, i: int, cur: Entity, e: dict[str, Any], creating: bool) -> None:
        own = {cur["guid"], e.get("guid")}

        def direct(key: str) -> list[dict[str, Any]]:
            items = check_tags(self.store, e.get(key), f"entities[{i}].{key}")
            return [c for c in items if not c.get("entityGuid") or c["entityGuid"] in own]

        f = self.flags
        if creating:
            for c in direct("classifications") + (direct("addOrUpdateClassifications") if f.append_tags else []):
                upsert_tag(cur, c)
        elif f.append_tags:
            for c in direct("addOrUpdateClassifications"):
                upsert_tag(cur, c)
            for c in direct("removeClassifications"):
                remove_tag(cur, c["typeName"])
        elif (f.replace_tags or f.replace_classifications) and e.get("classifications") is not None:
            # UNCONFIRMED: an absent/null list leaves the tags alone; [] removes every direct tag
            replace_tags(cur, direct("classifications"))

    def _apply_business_attributes(self, cur: Entity, e: dict[str, Any], creating: bool) -> None:
        incoming = e.get("businessAttributes")
        if incoming is None or not (creating or self.flags.replace_business_attributes):
            return
        check_business_attributes(self.store, incoming)
        overwrite = self.flags.overwrite_business_attributes
        cur["businessAttributes"] = merge_business_attributes(cur["businessAttributes"], incoming, overwrite=overwrite)

    def _check_new(self, i: int, cur: Entity) -> None:
        attrs = cur["attributes"]
        for key in ("qualifiedName", "name"):
            if not isinstance(attrs.get(key), str) or not attrs[key]:
                raise AtlasApiError(400, "ATLAS-400-00-02B", f"Mandatory field {cur['typeName']}.{key} has empty/null value")
        if cur["typeName"] == "Link" and not isinstance(attrs.get("asset"), dict):
            raise invalid_parameters(f"entities[{i}]: a Link needs an asset")
        if cur["typeName"] == "DataDomain":
            self._domain_qualified_name(cur)

    def _domain_qualified_name(self, cur: Entity) -> None:
        """The server replaces a new domain's qualifiedName (reference §9)."""
        attrs = cur["attributes"]
        parent_ref = attrs.pop("parentDomain", None)
        parent = (self.work.get(parent_ref["guid"]) or self.store.get(parent_ref["guid"])) if parent_ref else None
        if parent_ref and (parent is None or parent["typeName"] != "DataDomain"):
            raise invalid_parameters("parentDomain must be an existing DataDomain")
        if parent is None:
            attrs["qualifiedName"] = f"default/domain/{self.store.new_nanoid()}/super"
            attrs.pop("parentDomainQualifiedName", None)
            attrs.pop("superDomainQualifiedName", None)
            return
        parent_qn = parent["attributes"]["qualifiedName"]
        attrs["qualifiedName"] = f"{parent_qn}/domain/{self.store.new_nanoid()}"
        attrs["parentDomainQualifiedName"] = parent_qn
        attrs["superDomainQualifiedName"] = parent["attributes"].get("superDomainQualifiedName") or parent_qn

    def _validate_keys(self) -> None:
        claimed: dict[tuple[str, str], str] = {}
        for guid, ent in self.work.items():
            key = _key(ent)
            holder = self.store.guid_for(*key)
            moved_away = holder in self.work and _key(self.work[holder]) != key
            if holder not in (None, guid) and not moved_away or claimed.get(key, guid) != guid:
                raise invalid_parameters(f"{key[0]} with qualifiedName {key[1]} already exists")
            claimed[key] = guid

    # ---- writing ----

    def _commit(self) -> dict[str, Any]:
        created, updated, touched_assets = [], [], set()
        for guid, new in self.work.items():
            old = self.store.get(guid)
            if old is not None and same_content(old, new):
                continue
            if old is not None:
                new["updateTime"], new["updatedBy"] = self.now, self.user
            touched_assets.update(_link_assets(old, new))
            self.store.put(new)
            (created if old is None else updated).append(guid)
        for asset in touched_assets:
            if asset in self.store.entities and asset not in self.work:
                # UNCONFIRMED: attaching a Link counts as an update of its asset (updateTime moves)
                ent = self.store.copy(asset)
                ent["updateTime"], ent["updatedBy"] = self.now, self.user
                self.store.put(ent)
                updated.append(asset)
        if created or updated:
            self.store.bump()
        return self._response(created, updated)

    def _response(self, created: list[str], updated: list[str]) -> dict[str, Any]:
        def headers(guids: list[str]) -> list[dict[str, Any]]:
            return [entity_header(self.store, self.store.entities[g]) for g in guids]

        mutated: dict[str, Any] = {}
        if created:
            mutated["CREATE"] = headers(created)
        if updated:
            mutated["PARTIAL_UPDATE" if self.partial else "UPDATE"] = headers(updated)
        out: dict[str, Any] = {}
        if mutated:
            out["mutatedEntities"] = mutated
        if "PARTIAL_UPDATE" in mutated:
            out["partialUpdatedEntities"] = mutated["PARTIAL_UPDATE"]
        if self.assign:
            out["guidAssignments"] = dict(self.assign)
        return out


def _key(ent: Entity) -> tuple[str, str]:
    return ent["typeName"], ent["attributes"]["qualifiedName"]


def _link_assets(old: Entity | None, new: Entity) -> set[str]:
    """Assets that gained or lost this Link (their `links` changed)."""
    if new["typeName"] != "Link":
        return set()
    before = (old["attributes"].get("asset") or {}).get("guid") if old else None
    after = (new["attributes"].get("asset") or {}).get("guid")
    return {g for g in (before, after) if g} if before != after else set()
