"""`qatlan plan --json`: the documented, versioned plan document (docs/plan-format.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qatlan import __version__
from qatlan.plan import Plan, iter_json, plan_checksum

__all__ = ["json", "json_pieces"]


def json(plan: Plan) -> dict[str, Any]:  # noqa: A001 - the name users expect (`--json`)
    """The documented JSON form: `plan.to_dict()` plus `qatlan_version` and `checksum`."""
    data = plan.to_dict()
    return _document(data, plan_checksum(data))


def json_pieces(plan: Plan, *, checksum: str | None = None) -> Iterator[str]:
    """`json.dumps(json(plan), ensure_ascii=False)` in pieces (joined, exactly that text),
    without a dict copy of every change; `checksum` is `plan_checksum(plan)` if known."""
    return iter_json(_document(plan.json_parts(), checksum or plan_checksum(plan)), ensure_ascii=False)


def _document(parts: dict[str, Any], checksum: str) -> dict[str, Any]:
    """The plan's parts with `qatlan_version` and `checksum` after `format_version`."""
    out: dict[str, Any] = {"format_version": parts.pop("format_version"),
                           "qatlan_version": __version__, "checksum": checksum}
    out.update(parts)
    return out
