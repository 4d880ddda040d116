"""Saved plan files (`qatlan plan --out FILE`): write atomically, read with every check.

The file is JSON (docs/plan-format.md):

    {"format_version": 1, "qatlan_version": "0.1.0", "checksum": "<sha256 hex>",
     "signature": "<hmac-sha256 hex, only with a key>", "plan": {...}}

`checksum` is `qatlan.plan.plan_checksum` of `plan`; reading recomputes it over the
stored plan object, so an accidental edit is refused. A deliberate edit can recompute the
checksum: what makes a plan applicable is that the state recorded that checksum when it made
the plan, or (for plans that travel between machines) a `signature` made with a key only the
plan and apply jobs hold (`sign` / `signature_ok`). Each failure is its own PlanFileError
message: missing or unreadable file, not JSON, not a plan file, unknown format_version, edited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from qatlan import __version__
from qatlan.errors import PlanFileError
from qatlan.plan.checksum import plan_checksum
from qatlan.plan.encode import iter_json
from qatlan.plan.model import Plan

__all__ = ["PLAN_FILE_VERSION", "SavedPlan", "read_plan_file", "read_saved_plan", "sign",
           "signature_ok", "write_plan_file"]

#: the plan file wrapper's major version; readers reject any other
PLAN_FILE_VERSION = 1


class SavedPlan(NamedTuple):
    """A plan file's plan, its checksum and its signature (None: unsigned)."""

    plan: Plan
    checksum: str
    signature: str | None


def sign(checksum: str, key: str) -> str:
    """The HMAC-SHA256 (hex) of a plan's checksum under `key`."""
    return hmac.new(key.encode(), checksum.encode(), hashlib.sha256).hexdigest()


def signature_ok(saved: SavedPlan, key: str) -> bool:
    """Whether the file was signed with `key` (constant-time comparison)."""
    return saved.signature is not None and hmac.compare_digest(saved.signature, sign(saved.checksum, key))


def write_plan_file(plan: Plan, path: str | os.PathLike[str], *,
                    checksum: str | None = None, key: str | None = None) -> Path:
    """Write `plan` to `path` atomically (temp file in the same folder, then rename).

    The JSON is written piece by piece (never held whole). `checksum` is
    `plan_checksum(plan)` when the caller already has it (`make_stored_plan` returns it).
    With `key`, the file carries a signature of the checksum (`sign`).
    """
    path = Path(path)
    checksum = checksum or plan_checksum(plan)
    doc: dict[str, Any] = {"format_version": PLAN_FILE_VERSION, "qatlan_version": __version__,
                           "checksum": checksum}
    if key:
        doc["signature"] = sign(checksum, key)
    doc["plan"] = plan.json_parts()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PlanFileError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            _write_json(fp, doc)
            fp.flush()
            os.fsync(fp.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PlanFileError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_json(fp: TextIO, doc: dict[str, Any]) -> None:
    # keys in the plan's own order (the checksum sorts them; readers need not)
    write = fp.write
    for piece in iter_json(doc, separators=(",", ":")):
        write(piece)
    write("\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_plan_file(path: str | os.PathLike[str]) -> Plan:
    """Read and check a saved plan; PlanFileError says exactly what is wrong."""
    return read_saved_plan(path).plan


def read_saved_plan(path: str | os.PathLike[str]) -> SavedPlan:
    """`read_plan_file`, with the file's checksum and signature."""
    path = Path(path)
    doc = _load(path)
    version = doc.get("format_version")
    if version != PLAN_FILE_VERSION or isinstance(version, bool):
        raise PlanFileError(
            f"{path}: plan file format_version {version!r} is not supported; qatlan "
            f"{__version__} reads format_version {PLAN_FILE_VERSION} only (a new major version "
            "is a breaking change, and qatlan refuses versions it does not know)",
            hint="make the plan again with this qatlan (`qatlan plan --out FILE`), or use the "
                 f"qatlan that made it (qatlan_version {doc.get('qatlan_version')!r})",
        )
    data = doc.get("plan")
    if not isinstance(data, dict) or not isinstance(doc.get("checksum"), str):
        raise PlanFileError(f"{path} is not a qatlan plan file: it has no plan or no checksum",
                            hint="make one with `qatlan plan --out FILE`")
    if plan_checksum(data) != doc["checksum"]:
        raise PlanFileError(
            f"{path}: the plan file was edited after it was saved; make a new plan",
            hint="its checksum does not match its content; run `qatlan plan --out FILE` again",
        )
    signature = doc.get("signature")
    try:
        return SavedPlan(Plan.from_dict(data), doc["checksum"], signature if isinstance(signature, str) else None)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}", hint=exc.hint) from None


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanFileError(f"plan file {path} not found",
                            hint="make one with `qatlan plan --out FILE`") from None
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        raise PlanFileError(f"{path} is not a qatlan plan file: it is not JSON{where}",
                            hint="give the file written by `qatlan plan --out FILE`") from None
    if not isinstance(doc, dict) or "format_version" not in doc:
        raise PlanFileError(f"{path} is not a qatlan plan file: it has no format_version",
                            hint="give the file written by `qatlan plan --out FILE`")
    return doc
