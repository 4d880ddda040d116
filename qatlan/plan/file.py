"""Saved plan files (`qatlan plan --out FILE`): write atomically, read with every check.

The file is JSON (docs/plan-format.md):

    {"format_version": 1, "qatlan_version": "0.1.0", "plan": {...},
     "checksum": "<sha256 hex>", "signature": "<hmac-sha256 hex, only with a key>"}

The plan object is written in its canonical form (sorted keys), piece by piece, while the
same pieces are hashed (and, by `qatlan plan --out`, compressed into the state): a plan is
encoded once however many copies are kept, so its checksum comes after it.

`checksum` is `qatlan.plan.plan_checksum` of `plan`; reading recomputes it over the
stored plan object, so an accidental edit is refused. A deliberate edit can recompute the
checksum: what makes a plan applicable is that the state recorded that checksum when it made
the plan, or (for plans that travel between machines) a `signature` made with a key only the
plan and apply jobs hold (`sign` / `signature_ok`). Each failure is its own PlanFileError
message: missing or unreadable file, not JSON, not a plan file, unknown format_version, edited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from qatlan import __version__, addresses
from qatlan.errors import PlanFileError
from qatlan.plan.checksum import canonical_pieces, plan_checksum
from qatlan.plan.encode import split_array
from qatlan.plan.model import Action, Change, Plan, StreamedChanges, Tally

__all__ = ["PLAN_FILE_VERSION", "FileChanges", "PlanFileWriter", "SavedPlan", "open_plan_file",
           "peek_plan_file", "read_plan_file", "read_saved_plan", "sign", "signature_ok",
           "write_plan_file"]

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


def write_plan_file(plan: Plan, path: str | os.PathLike[str], *, key: str | None = None) -> Path:
    """Write `plan` to `path` atomically (temp file in the same folder, then rename).

    The JSON is written piece by piece (never held whole) and hashed as it goes. With `key`,
    the file carries a signature of the checksum (`sign`). `qatlan plan --out` writes the
    file from the pieces it stores in the state instead (`qatlan.pipeline.make_stored_plan`).
    """
    digest = hashlib.sha256()
    with PlanFileWriter(path) as out:
        for piece in canonical_pieces(plan):
            digest.update(piece)
            out.write(piece)
        return out.commit(digest.hexdigest(), key)


class PlanFileWriter:
    """A plan file written from a plan's canonical pieces as they are produced.

    Opening creates the temp file (so a folder that cannot be written is refused before any
    work); `write` takes each piece of the plan object; `commit` adds the checksum (and the
    signature) and renames the file into place. Leaving the `with` block without `commit`
    (an error, a refused plan) removes the temp file: there is never a half-written plan.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        if not self.path.parent.is_dir():  # a typo in the folder must not create folders
            what = "is not a folder" if self.path.parent.exists() else "does not exist"
            raise PlanFileError(f"cannot write the plan to {self.path}: {self.path.parent} {what}",
                                hint="create the folder first, or give --out a path in an existing one")
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                             dir=self.path.parent)
        except OSError as exc:
            raise self._error(exc) from None
        self._fp = os.fdopen(fd, "wb")
        self._done = False
        head = {"format_version": PLAN_FILE_VERSION, "qatlan_version": __version__}
        try:
            self._put(json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"plan":')
        except BaseException:
            self.abort()
            raise

    def _error(self, exc: OSError) -> PlanFileError:
        return PlanFileError(f"cannot write the plan to {self.path}: {exc.strerror or exc}")

    def _put(self, data: bytes) -> None:
        try:
            self._fp.write(data)
        except OSError as exc:
            raise self._error(exc) from None

    def write(self, piece: bytes) -> None:
        """One piece of the plan object's canonical JSON."""
        self._put(piece)

    def commit(self, checksum: str, key: str | None = None) -> Path:
        """Close the document with `checksum` (and its signature under `key`), make it durable
        and move it into place; returns the path."""
        tail: dict[str, Any] = {"checksum": checksum}
        if key:
            tail["signature"] = sign(checksum, key)
        self._put(b"," + json.dumps(tail, separators=(",", ":"))[1:].encode() + b"\n")
        try:
            self._fp.flush()
            os.fsync(self._fp.fileno())
            self._fp.close()
            os.chmod(self._tmp, 0o666 & ~_umask())
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise self._error(exc) from None
        self._done = True
        return self.path

    def abort(self) -> None:
        """Remove the temp file (nothing was committed)."""
        if not self._done:
            self._fp.close()
            Path(self._tmp).unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> "PlanFileWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abort()


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


#: how `PlanFileWriter` opens and closes a file, around the plan object's canonical JSON
_HEAD = re.compile(rb'\{"format_version":%d,"qatlan_version":"(?:[^"\\]|\\.)*","plan":' % PLAN_FILE_VERSION)
_TAIL = re.compile(rb',"checksum":"([0-9a-f]{64})"(?:,"signature":"([0-9a-f]{64})")?\}\n?\Z')
_EDGE = 512  # bytes read at each end to find them
_READ = 1 << 20


def peek_plan_file(path: str | os.PathLike[str]) -> tuple[str, str | None] | None:
    """(checksum, signature) of a plan file laid out as `qatlan plan --out` writes it, checked
    without parsing the plan: the bytes of its plan object are hashed as they are read and
    must hash to its checksum. Then the file holds exactly the plan whose canonical JSON has
    that checksum: a state that stored a plan with it has the same plan (`qatlan apply FILE`
    streams it from there). None for anything else (another layout, a file edited, unreadable):
    `read_saved_plan` reads it whole and says what is wrong."""
    found = _peek(path)
    return None if found is None else found[:2]


def _peek(path: str | os.PathLike[str]) -> tuple[str, str | None, int, int] | None:
    """`peek_plan_file`, with where the plan object starts and ends in the file."""
    try:
        with open(path, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            head = _HEAD.match(fp.read(_EDGE))
            fp.seek(max(0, size - _EDGE))
            edge = fp.tell()
            tail = _TAIL.search(fp.read())
            if head is None or tail is None or edge + tail.start() <= head.end():
                return None
            digest = hashlib.sha256()
            for chunk in _read(fp, head.end(), edge + tail.start()):
                digest.update(chunk)
    except (OSError, EOFError):
        return None
    checksum = tail.group(1).decode()
    if not hmac.compare_digest(digest.hexdigest(), checksum):
        return None
    return checksum, tail.group(2).decode() if tail.group(2) else None, head.end(), edge + tail.start()


def _read(fp: Any, start: int, end: int) -> Iterator[bytes]:
    """The bytes of open file `fp` from `start` to `end`, a chunk at a time."""
    fp.seek(start)
    left = end - start
    while left > 0:
        chunk = fp.read(min(_READ, left))
        if not chunk:
            raise EOFError(f"{fp.name} ends early")
        left -= len(chunk)
        yield chunk


def open_plan_file(path: str | os.PathLike[str]) -> SavedPlan:
    """`read_saved_plan` for reading a plan rather than applying it (`qatlan show FILE`):
    a file as `qatlan plan --out` writes it is checked by hashing it, then read one change
    at a time (counted, and its definitions noted); its changes stay in the file
    (`FileChanges`: listed, streamed or re-encoded from the file when asked). Memory then
    follows one change, not the plan. Any other file is read whole (`read_saved_plan`)."""
    found = _peek(path)
    if found is None:
        return read_saved_plan(path)
    checksum, signature, start, end = found
    try:
        with open(path, "rb") as fp:
            head = b"".join(_read(fp, start, min(end, start + _READ)))
            opening = b'{"base":'
            if not head.startswith(opening):
                return read_saved_plan(path)
            try:
                _, base_end = json.JSONDecoder().raw_decode(head.decode("ascii"), len(opening))
            except ValueError:  # a base longer than a chunk: not worth a special case
                return read_saved_plan(path)
            key = b',"changes":'
            if head[base_end:base_end + len(key) + 1] != key + b"[":
                return read_saved_plan(path)
            at = start + base_end + len(key)  # the changes' opening bracket
            tally, definitions, length, count = Tally(), [], 0, 0
            for data, text in split_array(_read(fp, at, end), 0):
                change = Change.from_dict(data)
                tally.add(change)
                if addresses.is_typedef(change.address):
                    definitions.append(change)
                length, count = length + len(text), count + 1
            closing = at + length + max(count - 1, 0) + 2  # after the changes' "]"
            rest = b"".join(_read(fp, closing, end))
    except (OSError, EOFError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return read_saved_plan(path)  # says what is wrong
    try:
        data = json.loads(head[:base_end + len(key)] + b"[]" + rest)
        plan = Plan.from_dict(data)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}", hint=exc.hint) from None
    except ValueError:
        return read_saved_plan(path)
    changes = FileChanges(str(path), at, closing, tally.result(), tuple(definitions))
    return SavedPlan(dataclasses.replace(plan, changes=changes), checksum, signature)


class FileChanges(StreamedChanges):
    """The changes of a plan file (`open_plan_file`), read from the file when asked.

    `len` and `tally()` were counted when the file was opened; `iter_groups()` (what
    `qatlan.render` lists, as far as it reads), `stream()` and `json_pieces()` read the
    file once each, a change at a time."""

    def __init__(self, path: str, start: int, end: int, counts: Mapping[str, Any],
                 definitions: tuple[Change, ...]):
        super().__init__(counts)
        self.path, self.start, self.end = path, start, end
        self._definitions = definitions

    def definitions(self, known: Iterable[Change] = ()) -> list[Change]:
        return list(self._definitions)

    def _scan(self) -> Iterator[tuple[Any, str]]:
        with open(self.path, "rb") as fp:
            yield from split_array(_read(fp, self.start, self.end), 0, self.end - self.start)

    def iter_groups(self) -> Iterator[tuple[str, list[tuple[Change, str]]]]:
        """Each definition alone and first, then each asset's changes (a plan's changes
        are in address order, so an asset's are side by side); no-ops are not listed."""
        for c in self._definitions:
            if c.action is not Action.NOOP:
                yield c.address, [(c, addresses.parse(c.address)[1])]
        asset, group = None, []
        for c in self.stream():
            if c.action is Action.NOOP or addresses.is_typedef(c.address):
                continue
            owner, part = addresses.parse(c.address)
            if owner != asset and group:
                yield asset, group
                group = []
            asset = owner
            group.append((c, part))
        if group:
            yield asset, group


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
