"""Record shapes of a world document (docs/world-format.md), as pydantic-validated TypedDicts.

TypedDicts rather than BaseModels: validating 400,000 records into model instances takes
seconds, into plain dicts a fraction of that. Validation is strict (no "5" for 5, no true for
1); keys not listed here are allowed and kept. Cross-record rules (unique ids, references)
are in `schema.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import Field, TypeAdapter
from typing_extensions import NotRequired, TypedDict

Num = Optional[Annotated[float, Field(ge=0, le=100)]]
Time = Optional[str]
Tags = NotRequired[list[str]]


class QualityScore(TypedDict, total=False):
    total: Num
    completeness: Num
    coverage: Num
    conformity: Num
    consistency: Num
    precision: Num
    timeliness: Num
    volumetrics: Num
    accuracy: Num
    created: Time


# ---------------------------------------------------------------- Atlan

class Persona(TypedDict):
    name: str
    token: str
    read: NotRequired[list[str]]
    update: NotRequired[list[str]]
    manage_typedefs: NotRequired[bool]


class AttributeDef(TypedDict):
    name: str
    displayName: str
    typeName: str
    options: NotRequired[dict[str, Any]]


class ClassificationDef(TypedDict):
    name: str
    displayName: str
    category: Literal["CLASSIFICATION"]
    attributeDefs: NotRequired[list[AttributeDef]]
    options: NotRequired[Optional[dict[str, Any]]]


class BusinessMetadataDef(TypedDict):
    name: str
    displayName: str
    category: Literal["BUSINESS_METADATA"]
    attributeDefs: NotRequired[list[AttributeDef]]
    options: NotRequired[Optional[dict[str, Any]]]


class StructDef(TypedDict):
    name: str


class Typedefs(TypedDict, total=False):
    classificationDefs: list[ClassificationDef]
    businessMetadataDefs: list[BusinessMetadataDef]
    structDefs: list[StructDef]


class Classification(TypedDict):
    typeName: str
    entityGuid: NotRequired[str]
    propagate: NotRequired[Optional[bool]]
    removePropagationsOnEntityDelete: NotRequired[Optional[bool]]
    restrictPropagationThroughLineage: NotRequired[Optional[bool]]
    restrictPropagationThroughHierarchy: NotRequired[Optional[bool]]


class AssetRef(TypedDict):
    typeName: str
    guid: str


_Str = NotRequired[Optional[str]]


class Attributes(TypedDict):
    qualifiedName: str
    name: str
    connectionQualifiedName: _Str
    connectorName: _Str
    databaseName: _Str
    databaseQualifiedName: _Str
    schemaName: _Str
    schemaQualifiedName: _Str
    tableName: _Str
    tableQualifiedName: _Str
    viewName: _Str
    viewQualifiedName: _Str
    order: NotRequired[Optional[int]]
    dataType: _Str
    domainGUIDs: NotRequired[Optional[list[str]]]
    announcementType: NotRequired[Optional[Literal["information", "warning", "issue"]]]
    announcementTitle: _Str
    announcementMessage: _Str
    announcementUpdatedAt: NotRequired[Optional[int]]
    announcementUpdatedBy: _Str
    parentDomainQualifiedName: _Str
    superDomainQualifiedName: _Str
    link: _Str
    asset: NotRequired[AssetRef]


class Entity(TypedDict):
    typeName: str
    guid: str
    status: NotRequired[Literal["ACTIVE", "DELETED"]]
    attributes: Attributes
    classifications: NotRequired[list[Classification]]
    businessAttributes: NotRequired[dict[str, dict[str, Any]]]
    createTime: NotRequired[int]
    updateTime: NotRequired[int]
    createdBy: NotRequired[str]
    updatedBy: NotRequired[str]


class Atlan(TypedDict, total=False):
    personas: list[Persona]
    typedefs: Typedefs
    entities: list[Any]  # records validated in chunks, see BIG_LISTS


# ---------------------------------------------------------------- Qualytics

class User(TypedDict):
    id: int
    name: NotRequired[str]
    email: NotRequired[Optional[str]]
    user_name: NotRequired[str]
    role: NotRequired[str]


class Token(TypedDict):
    token: str
    user: User


class Integration(TypedDict):
    id: int
    type: str
    api_url: NotRequired[str]
    connected: NotRequired[bool]
    overwrite: NotRequired[bool]
    event_driven: NotRequired[Optional[bool]]
    enable_announcements: NotRequired[bool]
    status: NotRequired[str]
    parameters: NotRequired[dict[str, Any]]
    created: NotRequired[str]
    category: NotRequired[Optional[str]]


class GlobalTag(TypedDict):
    id: int
    name: str
    type: NotRequired[Literal["global", "entity", "lineage", "external"]]
    integration_id: NotRequired[Optional[int]]
    color: _Str
    description: _Str
    category: _Str
    weight_modifier: NotRequired[Annotated[int, Field(ge=-10, le=10)]]
    created: NotRequired[str]


class Datastore(TypedDict):
    id: int
    name: str
    store_type: Literal["jdbc", "dfs", "native"]
    type: str
    host: _Str
    port: NotRequired[Optional[int]]
    database: _Str
    schema: _Str
    uri: _Str
    root_path: _Str
    connection_id: NotRequired[Optional[int]]
    created: NotRequired[str]
    tags: Tags
    quality_score: NotRequired[Optional[QualityScore]]
    description: _Str
    enrichment_only: NotRequired[bool]


class Container(TypedDict):
    id: int
    datastore_id: int
    name: str
    container_type: Literal["table", "file", "computed_table", "computed_file", "computed_join"]
    table_type: NotRequired[Literal["table", "view"]]
    status: NotRequired[Literal["Available", "Changed", "Inaccessible", "Unloadable"]]
    created: NotRequired[str]
    deleted_at: NotRequired[Time]
    tags: Tags
    last_profiled: NotRequired[Time]
    last_scanned: NotRequired[Time]
    records: NotRequired[Optional[int]]
    quality_score: NotRequired[Optional[QualityScore]]
    query: NotRequired[str]
    relative_path: _Str
    file_name: _Str
    extension: _Str
    last_modified: NotRequired[Time]


class QField(TypedDict):
    id: int
    container_id: int
    name: str
    type: NotRequired[Literal["Unknown", "Integral", "Fractional", "Boolean", "String", "Date", "Timestamp",
                              "Array", "Struct", "MapType"]]
    status: NotRequired[Literal["active", "excluded", "missing", "masked"]]
    created: NotRequired[str]
    deleted_at: NotRequired[Time]
    tags: Tags
    quality_score: NotRequired[Optional[QualityScore]]


class Check(TypedDict):
    id: int
    container_id: int
    rule_type: str
    field_names: NotRequired[list[str]]
    status: NotRequired[Literal["Active", "Draft", "Invalid", "Discarded"]]
    is_passing: NotRequired[Optional[bool]]
    created: NotRequired[str]
    deleted_at: NotRequired[Time]
    description: _Str
    tags: Tags


class Anomaly(TypedDict):
    id: int
    container_id: int
    uuid: NotRequired[str]
    check_ids: NotRequired[list[int]]
    type: NotRequired[Literal["shape", "record"]]
    status: NotRequired[Literal["Active", "Acknowledged", "Resolved", "Invalid", "Duplicate", "Discarded"]]
    created: NotRequired[str]
    description: _Str
    anomalous_records_count: NotRequired[Optional[int]]
    tags: Tags


class Qualytics(TypedDict, total=False):
    tokens: list[Token]
    integrations: list[Integration]
    global_tags: list[GlobalTag]
    datastores: list[Datastore]
    containers: list[Any]  # records validated in chunks, see BIG_LISTS
    fields: list[Any]
    checks: list[Any]
    anomalies: list[Any]


class World(TypedDict):
    world_version: Literal[1]
    meta: NotRequired[Optional[dict[str, Any]]]
    atlan: Atlan
    qualytics: Qualytics


WORLD = TypeAdapter(World)

# The lists that grow with the world: validated a chunk at a time, so pydantic's validated copy
# of a million-record list never exists all at once.
BIG_LISTS: dict[tuple[str, str], TypeAdapter[Any]] = {
    ("atlan", "entities"): TypeAdapter(list[Entity]),
    ("qualytics", "containers"): TypeAdapter(list[Container]),
    ("qualytics", "fields"): TypeAdapter(list[QField]),
    ("qualytics", "checks"): TypeAdapter(list[Check]),
    ("qualytics", "anomalies"): TypeAdapter(list[Anomaly]),
}
