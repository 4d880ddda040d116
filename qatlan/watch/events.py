"""Webhook bodies from Atlan and Qualytics, read into work keys (pure: no I/O, no clock).

An event is a hint, never the new state (delivery is at-least-once, maybe out of order, maybe
lost; /work/shared/reference/events.md): all qatlan takes from one is *which* table to look
at again. That table is named by a work key, a plain string so that a queue can collapse
duplicates with a set:

    q:c:<container id>      a Qualytics container (one table)
    q:d:<datastore id>      a whole Qualytics datastore (an event that names no container)
    a:<qualifiedName>       an Atlan Table, View or MaterialisedView

`parse_atlan` and `parse_qualytics` raise `EventError` (a ValueError) for a body they cannot
read at all; the server answers it with 400. An Atlan event qatlan does not care about (a
Schema changed, an unknown operation type) is not an error: it is `kind="ignored"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ATLAN_OPERATIONS",
    "ATLAN_VALIDATION_BODY",
    "QUALYTICS_FLOW_TEMPLATE",
    "TABLE_TYPES",
    "AtlanEvent",
    "EventError",
    "ParsedKey",
    "QualyticsEvent",
    "atlan_key",
    "container_key",
    "datastore_key",
    "parse_atlan",
    "parse_key",
    "parse_qualytics",
]

#: the body Atlan sends once when a webhook is created; the receiver must answer it with 200
ATLAN_VALIDATION_BODY = {"atlan-webhook": "Hello, humans of data! It worked. Excited to see what you build!"}
#: the operation types that can change what qatlan syncs (others are ignored, not refused)
ATLAN_OPERATIONS = frozenset({
    "ENTITY_CREATE", "ENTITY_UPDATE", "ENTITY_DELETE", "BUSINESS_ATTRIBUTE_UPDATE",
    "CLASSIFICATION_ADD", "CLASSIFICATION_DELETE",
})
#: Atlan types that are one table (and one Qualytics container) for qatlan
TABLE_TYPES = frozenset({"Table", "View", "MaterialisedView"})
#: Atlan types whose `asset` attribute names the asset they hang off (UNCONFIRMED: whether a
#: notification carries the relationship with its uniqueAttributes; Atlas' AtlasObjectId does)
_ATTACHED_TYPES = frozenset({"Link", "Readme"})

#: The message template to paste into a Qualytics Flow's HTTP action (docs/watch.md). The
#: tokens are the documented Flow message variables; which ones a trigger fills in, and how an
#: unfilled one is sent, is UNCONFIRMED: `parse_qualytics` treats "" and an unrendered
#: "{{token}}" as absent. `container_link` names the table for anomaly triggers;
#: `target_link` / `datastore_link` name at least the datastore for operation triggers.
QUALYTICS_FLOW_TEMPLATE: dict[str, str] = {
    "event": "qualytics.flow.triggered",
    "flow_name": "{{flow_name}}",
    "datastore_name": "{{datastore_name}}",
    "datastore_link": "{{datastore_link}}",
    "container_name": "{{container_name}}",
    "container_link": "{{container_link}}",
    "target_link": "{{target_link}}",
    "operation_type": "{{operation_type}}",
    "operation_result": "{{operation_result}}",
    "anomaly_type": "{{anomaly_type}}",
}

_MAX_ID = 2**63 - 1
_CONTAINER_LINK = re.compile(r"/containers/(\d{1,19})(?![\d])")
_DATASTORE_LINK = re.compile(r"/datastores/(\d{1,19})(?![\d])")
#: how deep and how wide `parse_qualytics` looks into a user's template
_MAX_DEPTH = 6
_MAX_VALUES = 500
#: values of the `type` metrics label for Qualytics events (a template is free text: anything
#: else is counted as "other" so that a label never grows without bound)
_QUALYTICS_TYPES = frozenset({"sync", "catalog", "profile", "scan", "external_scan", "materialize", "export"})


class EventError(ValueError):
    """A webhook body that cannot be read; the receiver answers 400 with this message."""


# ---- work keys ---------------------------------------------------------------------------

class ParsedKey(NamedTuple):
    """A work key taken apart: kind is "container", "datastore" or "table"."""

    kind: str
    value: int | str


def container_key(container_id: int) -> str:
    return f"q:c:{_positive_id(container_id, 'container id')}"


def datastore_key(datastore_id: int) -> str:
    return f"q:d:{_positive_id(datastore_id, 'datastore id')}"


def atlan_key(qualified_name: str) -> str:
    if not isinstance(qualified_name, str) or not qualified_name:
        raise ValueError("an Atlan work key needs a non-empty qualifiedName")
    return f"a:{qualified_name}"


def parse_key(key: str) -> ParsedKey:
    """The inverse of the three builders; ValueError names the forms a key can take."""
    if isinstance(key, str):
        if key.startswith("a:") and len(key) > 2:
            return ParsedKey("table", key[2:])
        for prefix, kind in (("q:c:", "container"), ("q:d:", "datastore")):
            rest = key[len(prefix):]
            if key.startswith(prefix) and rest.isascii() and rest.isdigit() and rest[0] != "0":
                return ParsedKey(kind, int(rest))
    raise ValueError(f"not a work key: {key!r} (expected q:c:<id>, q:d:<id> or a:<qualifiedName>)")


def _positive_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID:
        raise ValueError(f"a {what} is a positive whole number, not {value!r}")
    return value


# ---- Atlan -------------------------------------------------------------------------------

@dataclass(frozen=True)
class AtlanEvent:
    """One Atlan webhook request, read.

    kind is "validation" (the hello Atlan sends on creation: answer 200, queue nothing),
    "event" (queue `keys`) or "ignored" (well-formed, but nothing qatlan syncs; `reason` says why).
    """

    kind: str
    operation: str | None = None
    type_name: str | None = None
    guid: str | None = None
    keys: tuple[str, ...] = ()
    reason: str = ""
    #: the entity's `updateTime` (epoch ms) as the event reports it, when it does
    update_time: int | None = None


def parse_atlan(body: bytes | str | Mapping[str, Any]) -> AtlanEvent:
    """Read an Atlan webhook body (raw bytes or already decoded) into an `AtlanEvent`."""
    doc = _decode(body) if isinstance(body, (bytes, bytearray, str)) else body
    if doc == ATLAN_VALIDATION_BODY:
        return AtlanEvent("validation")
    if not isinstance(doc, Mapping):
        raise EventError("an Atlan event is a JSON object with a 'message'")
    message = _mapping(doc.get("message"), "message")
    operation = _text(message.get("operationType"), "message.operationType")
    entity = _mapping(message.get("entity"), "message.entity")
    type_name = _text(entity.get("typeName"), "message.entity.typeName")
    guid = entity.get("guid") if isinstance(entity.get("guid"), str) else None
    attributes = _mapping(entity.get("attributes", {}), "message.entity.attributes")
    if operation not in ATLAN_OPERATIONS:
        return AtlanEvent("ignored", operation, type_name, guid, reason=f"operation type {operation} is not one qatlan syncs")
    table = _table_of(type_name, attributes)
    if table is None:
        return AtlanEvent("ignored", operation, type_name, guid, reason=f"a {type_name} is not a table qatlan syncs")
    ut = entity.get("updateTime")
    update_time = ut if isinstance(ut, int) and not isinstance(ut, bool) and ut > 0 else None
    return AtlanEvent("event", operation, type_name, guid, keys=(atlan_key(table),), update_time=update_time)


def _table_of(type_name: str, attributes: Mapping[str, Any]) -> str | None:
    """The qualifiedName of the table an entity is (or belongs to), or None for other types."""
    if type_name in TABLE_TYPES:
        return _text(attributes.get("qualifiedName"), f"the {type_name}'s attributes.qualifiedName")
    if type_name == "Column":
        for parent in ("tableQualifiedName", "viewQualifiedName"):
            value = attributes.get(parent)
            if isinstance(value, str) and value:
                return value
        qn = _text(attributes.get("qualifiedName"), "the Column's attributes.qualifiedName")
        return _parent_name(qn, "the Column's attributes.qualifiedName")
    if type_name in _ATTACHED_TYPES:
        return _attached_table(attributes.get("asset"))
    return None


def _attached_table(ref: Any) -> str | None:
    """The table a Link or Readme hangs off, when the event names it; None when it doesn't."""
    if not isinstance(ref, Mapping) or not isinstance(ref.get("typeName"), str):
        return None
    names = [ref.get("uniqueAttributes"), ref.get("attributes"), ref]
    qn = next((n.get("qualifiedName") for n in names if isinstance(n, Mapping) and isinstance(n.get("qualifiedName"), str)), None)
    if not qn:
        return None
    if ref["typeName"] in TABLE_TYPES:
        return qn
    if ref["typeName"] == "Column" and "/" in qn.strip("/"):
        return qn.rsplit("/", 1)[0]
    return None


def _parent_name(qn: str, where: str) -> str:
    parent = qn.rsplit("/", 1)[0] if "/" in qn else ""
    if not parent:
        raise EventError(f"{where} {qn!r} names no table (expected .../TABLE/COLUMN)")
    return parent


# ---- Qualytics ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QualyticsEvent:
    """One Qualytics Flow request, read. `keys` name containers, or else datastores.

    `event`, `operation_type`, `operation_result` and `anomaly_status` are what the template
    carried (absent or unrendered tokens are None); they are for metrics and logs only.
    """

    keys: tuple[str, ...]
    event: str | None = None
    operation_type: str | None = None
    operation_result: str | None = None
    anomaly_status: str | None = None
    anomaly_type: str | None = None

    @property
    def event_type(self) -> str:
        """A short, bounded label: the operation type, "anomaly", or "flow"."""
        if self.operation_type:
            kind = self.operation_type.strip().lower().replace(" ", "_")
            return kind if kind in _QUALYTICS_TYPES else "other"
        if self.anomaly_status or self.anomaly_type:
            return "anomaly"
        return "flow"


def parse_qualytics(body: bytes | str | Mapping[str, Any]) -> QualyticsEvent:
    """Read a Flow HTTP action body (a user's template, rendered) into a `QualyticsEvent`.

    The container comes from, in order: a `container_id` / `containerId` value, a link with
    `/containers/<id>` (Qualytics UI links: `.../datastores/<ds>/containers/<id>/...`); failing
    that the datastore, from `datastore_id` / `datastoreId` or a `/datastores/<id>` link.
    """
    doc = _decode(body) if isinstance(body, (bytes, bytearray, str)) else body
    if not isinstance(doc, Mapping):
        raise EventError("a Qualytics Flow body is a JSON object; paste the template from docs/watch.md")
    found: dict[str, list[int]] = {"container_id": [], "container_link": [], "datastore_id": [], "datastore_link": []}
    for key, value in _walk(doc, 0):
        _collect(found, key, value)
    if found["container_id"] or found["container_link"]:
        keys = [container_key(i) for i in found["container_id"] + found["container_link"]]
    elif found["datastore_id"] or found["datastore_link"]:
        keys = [datastore_key(i) for i in found["datastore_id"] + found["datastore_link"]]
    else:
        raise EventError(
            "the Qualytics Flow body names no container or datastore: add "
            '"container_link": "{{container_link}}" (and "target_link": "{{target_link}}") to the template'
        )
    return QualyticsEvent(
        keys=tuple(dict.fromkeys(keys)),
        event=_token(doc.get("event")),
        operation_type=_token(doc.get("operation_type")),
        operation_result=_token(doc.get("operation_result")),
        anomaly_status=_token(doc.get("anomaly_status")),
        anomaly_type=_token(doc.get("anomaly_type")),
    )


def _walk(doc: Any, depth: int) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs of a template, breadth first, bounded in depth and in count."""
    stack: list[tuple[Any, int]] = [(doc, depth)]
    seen = 0
    while stack and seen < _MAX_VALUES:
        node, level = stack.pop(0)
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        for key, value in items:
            seen += 1
            yield (key if isinstance(key, str) else ""), value
            if isinstance(value, (Mapping, list)) and level < _MAX_DEPTH:
                stack.append((value, level + 1))


def _collect(found: dict[str, list[int]], key: str, value: Any) -> None:
    if key in ("container_id", "containerId"):
        _add_id(found["container_id"], value)
    elif key in ("datastore_id", "datastoreId"):
        _add_id(found["datastore_id"], value)
    if isinstance(value, str):
        for match in _CONTAINER_LINK.finditer(value):
            _add_id(found["container_link"], match.group(1))
        for match in _DATASTORE_LINK.finditer(value):
            _add_id(found["datastore_link"], match.group(1))


def _add_id(into: list[int], value: Any) -> None:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ID and value not in into:
        into.append(value)


def _token(value: Any) -> str | None:
    """A rendered template value, or None when absent, empty or left as "{{token}}"."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and "{{" not in value else None


# ---- shared ------------------------------------------------------------------------------

def _decode(body: bytes | bytearray | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EventError(f"the body is not valid JSON: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EventError(f"{where} must be a JSON object")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventError(f"{where} must be a non-empty string")
    return value
