"""Validation of sandbox world documents (docs/world-format.md).

`validate_world(doc)` checks record shapes first (pydantic, see `_world_shapes`), then the
rules between records: unique ids, GUIDs, names and tokens, and every reference (container ->
datastore, field -> container, tag names -> tag definitions, ...). It raises WorldError
listing up to five problems, each with its JSON path:

    qualytics.containers[12].datastore_id: datastore 99 does not exist
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from qatlan.sandbox._problems import Problems
from qatlan.sandbox._util import gc_paused
from qatlan.sandbox._world_refs import check_atlan, check_qualytics
from qatlan.sandbox._world_shapes import BIG_LISTS, WORLD

__all__ = ["validate_world"]

_CHUNK = 5000


def validate_world(doc: Any) -> None:
    """Raise WorldError unless `doc` is a valid world document (world_version 1)."""
    problems = Problems()
    if not isinstance(doc, dict):
        problems.add("(document)", "a world is a JSON object with 'world_version', 'atlan' and 'qualytics'")
        problems.raise_if_any()
    version = doc.get("world_version")
    if version != 1 or isinstance(version, bool):
        found = f"must be 1, got {_show(version)}" if "world_version" in doc else "required (must be 1)"
        problems.add("world_version", found)
        problems.raise_if_any()
    with gc_paused():
        _check_shapes(doc, problems)
        problems.raise_if_any()
        check_atlan(doc["atlan"], problems)
        check_qualytics(doc["qualytics"], problems)
    problems.raise_if_any()


def _check_shapes(doc: dict[str, Any], problems: Problems) -> None:
    _collect(problems, WORLD, doc, ())
    for (side, key), adapter in BIG_LISTS.items():
        records = doc.get(side, {}).get(key) if isinstance(doc.get(side), dict) else None
        if not isinstance(records, list):
            continue  # absent, or already reported as not a list
        for start in range(0, len(records), _CHUNK):
            _collect(problems, adapter, records[start:start + _CHUNK], (side, key), start)


def _collect(problems: Problems, adapter: Any, value: Any, prefix: tuple[Any, ...], offset: int = 0) -> None:
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_context=True):
            loc = err["loc"]
            if prefix:
                loc = (*prefix, loc[0] + offset, *loc[1:])
            problems.add(json_path(loc), _message(err))


def json_path(loc: tuple[Any, ...]) -> str:
    """('qualytics', 'containers', 12, 'name') -> 'qualytics.containers[12].name'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


_TYPE_WORDS = {
    "int_type": "must be an integer", "float_type": "must be a number", "string_type": "must be a string",
    "bool_type": "must be true or false", "list_type": "must be a list", "dict_type": "must be an object",
    "typed_dict_type": "must be an object", "none_required": "must be null",
}


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        text = f"must be one of {expected}"
    elif kind in _TYPE_WORDS:
        text = _TYPE_WORDS[kind]
    else:
        msg = err["msg"]
        text = msg[:1].lower() + msg[1:]
    if any(str(part).endswith("token") for part in err["loc"]):
        return text  # never echo token values
    return f"{text}, got {_show(err.get('input'))}"


def _show(value: Any) -> str:
    """A short rendering of a bad value for a message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = "null" if value is None else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
