"""The query part of the sandbox Atlan index search: field mapping and clause compilation.

Index fields map to stored entities as in reference §2.2 (`__typeName.keyword`,
`__superTypeNames.keyword`, `__state`, `__guid`, `__timestamp` = createTime,
`__modificationTimestamp` = updateTime, `__traitNames` = direct hashed tags,
`__propagatedTraitNames`, `__classificationNames`, `<setHash>.<attrHash>` = custom metadata,
any other name = that attribute; a `.keyword` suffix means the same field). Clauses: bool
(filter/must/should/must_not, minimum_should_match), term, terms, prefix, range, exists,
match_all, match_none; anything else is a 400. The keyword form of values (`atlan_index.keyword`)
is shared with the index that narrows a search (`atlan_index`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from qatlan.sandbox.atlan_index import keyword as _norm  # one keyword form for queries and the index
from qatlan.sandbox.atlan_store import AtlasApiError

__all__ = [
    "SUPERTYPES",
    "always",
    "check_keys",
    "clauses",
    "compile_query",
    "field_getter",
    "in_range",
    "number",
    "query_error",
    "range_bounds",
    "raw_getter",
]

Entity = dict[str, Any]
Predicate = Callable[[Entity], bool]
Getter = Callable[[Entity], list[Any]]
RawGetter = Callable[[Entity], Any]

_SQL = ("SQL", "Catalog", "Asset", "Referenceable")
_MESH = ("DataMesh", "Catalog", "Asset", "Referenceable")
_RESOURCE = ("Resource", "Catalog", "Asset", "Referenceable")
#: `__superTypeNames` per type; other types are ("Asset", "Referenceable")
SUPERTYPES: dict[str, tuple[str, ...]] = {
    "Connection": ("Asset", "Referenceable"),
    **{t: _SQL for t in ("Database", "Schema", "Table", "View", "MaterialisedView", "Column")},
    "DataDomain": _MESH,
    "DataProduct": _MESH,
    "Link": _RESOURCE,
    "Readme": _RESOURCE,
}
_DEFAULT_SUPERTYPES = ("Asset", "Referenceable")
_SUPPORTED = "bool, term, terms, prefix, range, exists, match_all, match_none"
_RANGE_OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def query_error(message: str) -> AtlasApiError:
    """An Elasticsearch 400 as the metastore passes it on (INDEX_SEARCH_FAILED_WITH_RESPONSE_CODE)."""
    return AtlasApiError(
        400, "ATLAS-400-00-503",
        f"ES query failed with response: Elasticsearch returned status code: 400, message: {message}",
    )


# ---- fields ------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [v for v in value if v is not None]
    return [value]


def _direct_tags(e: Entity) -> list[str]:
    g = e["guid"]
    return [c["typeName"] for c in e["classifications"] if c.get("entityGuid", g) == g]


def _propagated_tags(e: Entity) -> list[str]:
    g = e["guid"]
    return [c["typeName"] for c in e["classifications"] if c.get("entityGuid", g) != g]


def _all_tags(e: Entity) -> list[str]:
    return list(dict.fromkeys(c["typeName"] for c in e["classifications"]))


#: raw values (a scalar, a list/tuple, or None) of the index fields that are not attributes
_SPECIAL: dict[str, RawGetter] = {
    "__typeName": lambda e: e["typeName"],
    "__superTypeNames": lambda e: SUPERTYPES.get(e["typeName"], _DEFAULT_SUPERTYPES),
    "__state": lambda e: e["status"],
    "__guid": lambda e: e["guid"],
    "__timestamp": lambda e: e["createTime"],
    "__modificationTimestamp": lambda e: e["updateTime"],
    "__createdBy": lambda e: e.get("createdBy"),
    "__modifiedBy": lambda e: e.get("updatedBy"),
    "__traitNames": _direct_tags,
    "__propagatedTraitNames": _propagated_tags,
    "__classificationNames": _all_tags,
    "__classificationsText": _all_tags,
    "__propagatedClassificationNames": _propagated_tags,
}
_NO_SET: dict[str, Any] = {}


def raw_getter(field: Any) -> RawGetter:
    """The raw value of an index field on a stored entity (`.keyword` means the same field)."""
    if not isinstance(field, str) or not field:
        raise query_error("[parsing_exception] a field name must be a non-empty string")
    name = field[: -len(".keyword")] if field.endswith(".keyword") else field
    special = _SPECIAL.get(name)
    if special is not None:
        return special
    if "." in name:  # custom metadata: <setHash>.<attrHash>
        set_name, attr = name.split(".", 1)
        return lambda e: e["businessAttributes"].get(set_name, _NO_SET).get(attr)
    return lambda e: e["attributes"].get(name)


def field_getter(field: Any) -> Getter:
    """The values of an index field on a stored entity (always a list; empty when absent)."""
    raw = raw_getter(field)
    return lambda e: _as_list(raw(e))


def _any_value(raw: RawGetter, test: Callable[[Any], bool]) -> Predicate:
    """True when any non-null value of the field passes `test`."""
    def pred(e: Entity) -> bool:
        value = raw(e)
        if value is None:
            return False
        if value.__class__ is list or value.__class__ is tuple:
            for x in value:
                if x is not None and test(x):
                    return True
            return False
        return test(value)

    return pred


# ---- query compilation -------------------------------------------------------------------

def compile_query(query: Any, path: str = "query") -> Predicate:
    """Compile one query clause (and everything under it) into a predicate."""
    if not isinstance(query, dict) or len(query) != 1:
        raise query_error(f"[parsing_exception] query malformed at {path}: a clause is an object with one key")
    kind, body = next(iter(query.items()))
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise query_error(f"[parsing_exception] unknown query [{kind}] at {path} (the sandbox supports {_SUPPORTED})")
    return builder(body, f"{path}.{kind}")


def check_keys(spec: dict[str, Any], allowed: set[str], path: str) -> None:
    for key in spec:
        if key not in allowed:
            raise query_error(f"[parsing_exception] [{path}] unknown field [{key}]")


def _one_field(body: Any, path: str) -> tuple[str, Any]:
    if not isinstance(body, dict):
        raise query_error(f"[parsing_exception] [{path}] expects an object")
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise query_error(f"[parsing_exception] [{path}] expects exactly one field, got {fields}")
    return fields[0], body[fields[0]]


def _scalar(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (dict, list)):
        raise query_error(f"[parsing_exception] [{path}] needs a scalar value")
    return value


def _term(body: Any, path: str) -> Predicate:
    field, spec = _one_field(body, path)
    if isinstance(spec, dict):
        check_keys(spec, {"value", "case_insensitive", "boost", "_name"}, path)
        value, ci = spec.get("value"), bool(spec.get("case_insensitive", False))
    else:
        value, ci = spec, False
    target, raw = _norm(_scalar(value, path)), raw_getter(field)
    if ci:
        low = target.lower()
        return _any_value(raw, lambda x: _norm(x).lower() == low)
    return _any_value(raw, lambda x: (x if x.__class__ is str else _norm(x)) == target)


def _terms(body: Any, path: str) -> Predicate:
    field, values = _one_field(body, path)
    if not isinstance(values, list):
        raise query_error(f"[parsing_exception] [{path}] needs a list of values (terms lookup is not supported)")
    targets, raw = {_norm(_scalar(v, path)) for v in values}, raw_getter(field)
    return _any_value(raw, lambda x: (x if x.__class__ is str else _norm(x)) in targets)


def _prefix(body: Any, path: str) -> Predicate:
    field, spec = _one_field(body, path)
    if isinstance(spec, dict):
        check_keys(spec, {"value", "case_insensitive", "boost", "_name", "rewrite"}, path)
        value, ci = spec.get("value"), bool(spec.get("case_insensitive", False))
    else:
        value, ci = spec, False
    prefix, raw = _norm(_scalar(value, path)), raw_getter(field)
    if ci:
        low = prefix.lower()
        return _any_value(raw, lambda x: x.__class__ is str and x.lower().startswith(low))
    return _any_value(raw, lambda x: x.__class__ is str and x.startswith(prefix))


def range_bounds(spec: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(spec, dict):
        raise query_error(f"[parsing_exception] [{path}] expects an object of bounds")
    check_keys(spec, {"gt", "gte", "lt", "lte", "boost", "format", "_name"}, path)
    return [(op, _scalar(spec[op], path)) for op in _RANGE_OPS if spec.get(op) is not None]


def number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return x
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def in_range(value: Any, bounds: list[tuple[str, Any]]) -> bool:
    for op, bound in bounds:
        if isinstance(value, str) and isinstance(bound, str):
            a, b = value, bound
        else:
            a, b = number(value), number(bound)
            if a is None or b is None:
                return False
        if not _RANGE_OPS[op](a, b):
            return False
    return True


def _range(body: Any, path: str) -> Predicate:
    field, spec = _one_field(body, path)
    bounds = range_bounds(spec, path)
    return _any_value(raw_getter(field), lambda x: in_range(x, bounds))


def _exists(body: Any, path: str) -> Predicate:
    if not isinstance(body, dict):
        raise query_error(f"[parsing_exception] [{path}] expects an object")
    check_keys(body, {"field", "boost", "_name"}, path)
    return _any_value(raw_getter(body.get("field")), lambda x: True)


def _match_all(body: Any, path: str) -> Predicate:
    return always


def always(e: Entity) -> bool:
    return True


def clauses(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise query_error(f"[parsing_exception] [{path}] expects a clause or a list of clauses")


def _min_should(raw: Any, count: int, default: int, path: str) -> int:
    if raw is None:
        return default
    text = str(raw).strip()
    try:
        if text.endswith("%"):
            pct = int(text[:-1])
            n = count * abs(pct) // 100
            return n if pct >= 0 else count - n
        n = int(text)
    except ValueError:
        raise query_error(f"[parsing_exception] [{path}] bad minimum_should_match {raw!r}") from None
    return n if n >= 0 else count + n


def _bool(body: Any, path: str) -> Predicate:
    if not isinstance(body, dict):
        raise query_error(f"[parsing_exception] [{path}] expects an object")
    check_keys(body, {"filter", "must", "should", "must_not", "minimum_should_match", "boost", "_name"}, path)

    def compiled(key: str) -> list[Predicate]:
        return [compile_query(c, f"{path}.{key}[{i}]") for i, c in enumerate(clauses(body.get(key), path))]

    musts, nots, shoulds = compiled("filter") + compiled("must"), compiled("must_not"), compiled("should")
    default = 1 if shoulds and not musts else 0
    msm = _min_should(body.get("minimum_should_match"), len(shoulds), default, path)

    if not nots and msm <= 0:
        return _all_of(musts)

    def pred(e: Entity) -> bool:
        for m in musts:
            if not m(e):
                return False
        for n in nots:
            if n(e):
                return False
        return msm <= 0 or sum(1 for s in shoulds if s(e)) >= msm

    return pred


def _all_of(musts: list[Predicate]) -> Predicate:
    if not musts:
        return always
    if len(musts) == 1:
        return musts[0]

    def pred(e: Entity) -> bool:
        for m in musts:
            if not m(e):
                return False
        return True

    return pred


_BUILDERS: dict[str, Callable[[Any, str], Predicate]] = {
    "bool": _bool,
    "term": _term,
    "terms": _terms,
    "prefix": _prefix,
    "range": _range,
    "exists": _exists,
    "match_all": _match_all,
    "match_none": lambda body, path: (lambda e: False),
}
