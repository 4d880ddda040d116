"""One line per validation problem, naming the key path as the user wrote it."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any, Mapping

from pydantic import BaseModel

from qatlan.config.models import Config, clip

__all__ = ["describe", "path_str"]


def describe(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    typ, value = err["type"], err.get("input")
    where = path_str(loc) or "(top level)"
    field, parent = _field_at(loc)
    if typ == "missing":
        desc = field.description if field is not None else ""
        if field is not None and _model_of(field.annotation) is not None:
            return f"{where}: section [{where}] is missing — {desc}"
        return f"{where}: field required" + (f" — {desc}" if desc else "")
    if typ == "extra_forbidden":
        return f"{where}: unknown key; " + _valid_keys(parent, str(loc[-1]))
    if typ.endswith(("_type", "_parsing")) or typ == "int_from_float":
        return f"{where}: expected {_EXPECTED.get(typ.split('_')[0], typ)}, got {_show(value)}"
    if typ in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{where}: {_show(value)} is out of range; allowed {_bounds(field)}"
    if typ == "string_too_short":
        return f"{where}: must not be empty"
    if typ == "value_error":
        return f"{where}: {err['ctx']['error']}"
    return f"{where}: {err['msg']}"


_EXPECTED = {
    "path": "a path",
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "string": "a string",
    "list": "a list",
    "tuple": "a list",
    "dict": "a table",
    "model": "a table",
}


def path_str(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", str(part)) else json.dumps(str(part))
            out += f".{name}" if out else name
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside an annotation like `X`, `X | None` or `tuple[X, ...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _field_at(loc: tuple) -> tuple[Any, type[BaseModel] | None]:
    """The pydantic FieldInfo at `loc` and the model class holding that key (or None)."""
    model: type[BaseModel] | None = Config
    field, parent = None, Config
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:  # inside a plain table such as mappings[0].tables
            return None, None
        field = {f.alias or n: f for n, f in model.model_fields.items()}.get(str(part))
        parent = model
        if field is None:
            return None, model
        model = _model_of(field.annotation)
    return field, parent


def _valid_keys(model: type[BaseModel] | None, wrong: str) -> str:
    if model is None:
        return "this table takes no keys"
    keys = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(wrong, keys, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{hint}valid keys: {', '.join(keys)}"


def _bounds(field: Any) -> str:
    limits = {}
    for m in getattr(field, "metadata", ()):
        limits.update({k: getattr(m, k) for k in ("ge", "gt", "le", "lt") if hasattr(m, k)})
    if "gt" in limits:
        upper = f", up to {limits['le']}" if "le" in limits else ""
        return f"more than {limits['gt']}{upper}"
    return f"{limits.get('ge', '')}..{limits.get('le', '')}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(clip(value), ensure_ascii=False)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
