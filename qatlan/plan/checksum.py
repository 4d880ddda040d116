"""A plan's identity: the SHA-256 of its canonical JSON.

The canonical JSON is `Plan.to_dict()` with sorted keys and no spaces. Everything in the
plan counts, `created_at` and each change's `target` included, so two plans made at
different times are different plans. It is hashed piece by piece, never held whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from qatlan.plan.encode import iter_json
from qatlan.plan.model import Plan

__all__ = ["canonical_pieces", "canonical_sections", "plan_checksum"]


def canonical_pieces(data: Plan | Mapping[str, Any]) -> Iterator[bytes]:
    """The canonical JSON (sorted keys, no spaces) of a plan or plan dict, in pieces."""
    for _, piece in canonical_sections(data):
        yield piece


def canonical_sections(data: Plan | Mapping[str, Any]) -> Iterator[tuple[str | None, bytes]]:
    """`canonical_pieces`, each with the top-level key whose value it belongs to (None: the
    braces, commas and keys between the values), so a reader can note where a value sits."""
    parts = data.json_parts() if isinstance(data, Plan) else data
    if not parts:
        yield None, b"{}"
        return
    opening = b"{"
    for key in sorted(parts):
        yield None, opening + json.dumps(key).encode() + b":"
        for text in iter_json(parts[key], sort_keys=True, separators=(",", ":")):
            yield key, text.encode()
        opening = b","
    yield None, b"}"


def plan_checksum(plan: Plan | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the plan's canonical JSON; a mapping is taken as a plan dict."""
    digest = hashlib.sha256()
    for piece in canonical_pieces(plan):
        digest.update(piece)
    return digest.hexdigest()
