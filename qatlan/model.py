"""Plain, immutable records of what qatlan reads from both sides.

A `Snapshot` is what one `qatlan refresh` saw: Qualytics datastores, containers and fields
and Atlan connections, assets, links, domains and definitions. Matching and planning are pure
functions over these records. Every record has a `kind` and a `key`; `(kind, key)` identifies
it within a snapshot and is how the state shares unchanged rows between snapshots.

The state stores records as JSON (pydantic-core serialises the dataclasses in field order;
`qatlan.state.snapshots` validates them back). `Skip` (an asset or change left alone, and
why) and the custom metadata table (`CM_SCHEMA`) are plain data shared by matching, planning
and apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

#: the eight quality dimensions, in Qualytics' API spelling
DIMENSIONS: tuple[str, ...] = (
    "completeness",
    "coverage",
    "conformity",
    "consistency",
    "precision",
    "timeliness",
    "volumetrics",
    "accuracy",
)
SCORE_KEYS: tuple[str, ...] = ("total", *DIMENSIONS)


@dataclass(frozen=True, slots=True)
class QualityScore:
    """A Qualytics quality score: the total and the 8 dimensions, each 0–100 or None."""

    total: float | None = None
    completeness: float | None = None
    coverage: float | None = None
    conformity: float | None = None
    consistency: float | None = None
    precision: float | None = None
    timeliness: float | None = None
    volumetrics: float | None = None
    accuracy: float | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> "QualityScore | None":
        if not data:
            return None
        values = {k: _num(data.get(k)) for k in SCORE_KEYS}
        if all(v is None for v in values.values()):
            return None
        return cls(**values)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- Qualytics


@dataclass(frozen=True, slots=True)
class QTag:
    """A tag on a Qualytics asset. `type` is `global`, `entity`, `lineage` or `external`."""

    name: str
    type: str = "global"
    #: for external tags: the Qualytics integration they came from
    integration_id: int | None = None

    @property
    def external(self) -> bool:
        return self.type == "external"


@dataclass(frozen=True, slots=True)
class QDatastore:
    kind: ClassVar[str] = "q.datastore"
    id: int
    name: str
    store_type: str  # jdbc | dfs | native
    connector: str  # the datastore `type`, e.g. snowflake, postgresql, s3
    host: str | None = None
    database: str | None = None
    schema: str | None = None
    tags: tuple[QTag, ...] = ()
    score: QualityScore | None = None
    active_checks: int | None = None
    active_anomalies: int | None = None

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class QContainer:
    kind: ClassVar[str] = "q.container"
    id: int
    datastore_id: int
    name: str
    container_type: str  # table | file | computed_table | computed_file | computed_join
    table_type: str | None = None  # table | view (table containers only)
    status: str | None = None
    tags: tuple[QTag, ...] = ()
    score: QualityScore | None = None
    active_checks: int | None = None
    active_anomalies: int | None = None
    last_profiled: str | None = None
    last_scanned: str | None = None

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class QField:
    kind: ClassVar[str] = "q.field"
    id: int
    container_id: int
    name: str
    tags: tuple[QTag, ...] = ()
    score: QualityScore | None = None
    active_checks: int | None = None
    active_anomalies: int | None = None
    status: str | None = None

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True, slots=True)
class QTagDef:
    """A tag defined in Qualytics (`/api/global-tags`), attached to assets by name."""

    kind: ClassVar[str] = "q.tagdef"
    name: str
    type: str = "global"  # global | entity | lineage | external
    integration_id: int | None = None

    @property
    def key(self) -> str:
        return self.name


# --------------------------------------------------------------------------- Atlan


@dataclass(frozen=True, slots=True)
class Announcement:
    type: str  # information | warning | issue
    title: str | None = None
    message: str | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class AConnection:
    kind: ClassVar[str] = "a.connection"
    guid: str
    qualified_name: str
    name: str
    connector: str | None = None

    @property
    def key(self) -> str:
        return self.guid


@dataclass(frozen=True, slots=True)
class AAsset:
    """An Atlan Schema, Table, View, MaterialisedView or Column (or Database)."""

    kind: ClassVar[str] = "a.asset"
    guid: str
    type_name: str
    qualified_name: str
    name: str
    connection_qn: str
    #: qualifiedName of the parent: database for a schema, schema for a table, table for a column
    parent_qn: str | None = None
    status: str = "ACTIVE"
    domain_guids: tuple[str, ...] = ()
    #: hashed names of the tags attached directly to this asset (propagated ones excluded), sorted
    tags: tuple[str, ...] = ()
    announcement: Announcement | None = None
    #: values of the qatlan custom metadata set: ((attribute hashed name, value), ...) sorted
    cm: tuple[tuple[str, Any], ...] = ()
    update_time: int | None = None
    updated_by: str | None = None

    @property
    def key(self) -> str:
        return self.guid


@dataclass(frozen=True, slots=True)
class ALink:
    kind: ClassVar[str] = "a.link"
    guid: str
    qualified_name: str
    name: str
    url: str | None
    asset_guid: str | None

    @property
    def key(self) -> str:
        return self.guid


@dataclass(frozen=True, slots=True)
class ADomain:
    kind: ClassVar[str] = "a.domain"
    guid: str
    qualified_name: str
    name: str
    parent_qn: str | None = None

    @property
    def key(self) -> str:
        return self.guid


@dataclass(frozen=True, slots=True)
class ATagDef:
    kind: ClassVar[str] = "a.tagdef"
    hashed_name: str
    display_name: str

    @property
    def key(self) -> str:
        return self.hashed_name


@dataclass(frozen=True, slots=True)
class ACMAttribute:
    hashed_name: str
    display_name: str
    type_name: str = "string"


@dataclass(frozen=True, slots=True)
class ACMDef:
    """A custom metadata (business metadata) set and its attributes."""

    kind: ClassVar[str] = "a.cmdef"
    hashed_name: str
    display_name: str
    attributes: tuple[ACMAttribute, ...] = ()

    @property
    def key(self) -> str:
        return self.hashed_name

    def attr_hash(self, display_name: str) -> str | None:
        for a in self.attributes:
            if a.display_name == display_name:
                return a.hashed_name
        return None


# --------------------------------------------------------------------------- custom metadata

#: qatlan's custom metadata set, one row per attribute: (display name, kind, source).
#: `source` is a QualityScore key (`score.<key>`) or what else fills it; the planner, apply
#: and the renderers all read this one table.
CM_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("Quality Score", "float", "score.total"),
    ("Completeness", "float", "score.completeness"),
    ("Coverage", "float", "score.coverage"),
    ("Conformity", "float", "score.conformity"),
    ("Consistency", "float", "score.consistency"),
    ("Precision", "float", "score.precision"),
    ("Timeliness", "float", "score.timeliness"),
    ("Volume", "float", "score.volumetrics"),
    ("Accuracy", "float", "score.accuracy"),
    ("Active Checks", "int", "active_checks"),
    ("Active Anomalies", "int", "active_anomalies"),
    ("Qualytics URL", "url", "url"),
    ("Last Scanned", "date", "last_scanned"),
)
#: (display name, kind) of each attribute, in the set's order
CM_ATTRIBUTES: tuple[tuple[str, str], ...] = tuple((name, kind) for name, kind, _ in CM_SCHEMA)
#: display name → kind (`float`, `int`, `url`, `date`)
CM_KIND: dict[str, str] = dict(CM_ATTRIBUTES)
#: (display name, QualityScore key) of the score attributes
SCORE_ATTRIBUTES: tuple[tuple[str, str], ...] = tuple(
    (name, source[len("score."):]) for name, _, source in CM_SCHEMA if source.startswith("score."))


# --------------------------------------------------------------------------- skips


@dataclass(frozen=True, slots=True)
class Skip:
    """An asset (or, in a plan, a change) that is left alone, and why.

    `inherited` is True when the reason is the parent's (a container of a skipped datastore,
    a field of a skipped container); plans list only the skips that are not inherited.
    """

    level: str  # datastore | container | field | change
    id: Any
    name: str
    reason: str
    hint: str | None = None
    inherited: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level, "id": self.id, "name": self.name, "reason": self.reason,
            "hint": self.hint, "inherited": self.inherited,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Skip":
        return cls(
            data["level"], data["id"], data["name"], data["reason"],
            data.get("hint"), bool(data.get("inherited", False)),
        )


RECORD_TYPES: dict[str, type] = {
    t.kind: t
    for t in (QDatastore, QContainer, QField, QTagDef, AConnection, AAsset, ALink, ADomain, ATagDef, ACMDef)
}


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Snapshot:
    """Everything one refresh saw of both sides.

    `complete` is False when any page failed or part of the scope was refused; `missing`
    says what could not be read. A plan built on an incomplete snapshot removes nothing.
    """

    id: int | None = None
    taken_at: str | None = None
    complete: bool = True
    missing: tuple[str, ...] = ()
    datastores: Mapping[int, QDatastore] = field(default_factory=dict)
    containers: Mapping[int, QContainer] = field(default_factory=dict)
    fields: Mapping[int, QField] = field(default_factory=dict)
    connections: Mapping[str, AConnection] = field(default_factory=dict)
    assets: Mapping[str, AAsset] = field(default_factory=dict)
    links: Mapping[str, ALink] = field(default_factory=dict)
    domains: Mapping[str, ADomain] = field(default_factory=dict)
    tag_defs: Mapping[str, ATagDef] = field(default_factory=dict)
    cm_defs: Mapping[str, ACMDef] = field(default_factory=dict)
    #: Qualytics' tag registry by name (global and external tags, attached or not)
    q_tags: Mapping[str, QTagDef] = field(default_factory=dict)

    def records(self):
        """Every record, in a stable order (kind, then insertion order)."""
        for mapping in (
            self.datastores, self.containers, self.fields, self.connections,
            self.assets, self.links, self.domains, self.tag_defs, self.cm_defs, self.q_tags,
        ):
            yield from mapping.values()

    @classmethod
    def from_records(cls, records, **meta: Any) -> "Snapshot":
        buckets: dict[str, dict] = {k: {} for k in RECORD_TYPES}
        for r in records:
            bucket = buckets[r.kind]
            bucket[r.id if r.kind in ("q.datastore", "q.container", "q.field") else r.key] = r
        return cls(
            datastores=buckets["q.datastore"],
            containers=buckets["q.container"],
            fields=buckets["q.field"],
            connections=buckets["a.connection"],
            assets=buckets["a.asset"],
            links=buckets["a.link"],
            domains=buckets["a.domain"],
            tag_defs=buckets["a.tagdef"],
            cm_defs=buckets["a.cmdef"],
            q_tags=buckets["q.tagdef"],
            **meta,
        )
