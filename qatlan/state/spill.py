"""A plan's changes spilled to a temporary file while it is planned (issue 13).

`plan_partitioned(sink=ChangeSpill())` hands each datastore's finished changes to the spill
as soon as they are planned. Each batch is sorted, encoded once into what storing the plan
needs (the change's canonical JSON for the plan body and file, and its `plan_changes` row),
counted (`qatlan.plan.Tally`), and written to an unnamed temporary file as one sorted run
(marshalled and compressed: some 150 bytes a change); the `Change` objects are then
dropped. `result()` is a sequence over the runs, merged in plan order as they are read
(`heapq.merge`): storing a million-change plan reads the spill once, for its body and its
rows together (`passing_rows`), and holds one batch, not the million. The file disappears
when the spill is closed or collected.

A tag definition's spelling is settled only once every part is planned
(`qatlan.planner.finish.settle_tag_definitions`): the few changes that need a definition are
marked, and their JSON is rewritten on the way out when their definition moved.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import marshal
import operator
import os
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qatlan import addresses
from qatlan.plan import Change, Tally
from qatlan.planner import ChangeSink
from qatlan.state.plans import canonical_text, row_text

__all__ = ["ChangeSpill", "SpilledChanges"]

#: changes per marshal frame of a run
_FRAME = 2000

# a record: (address, action, canonical JSON, needs a definition, asset, part, before, after,
#            reason, source)
Record = tuple[str, str, str, bool, str, str, "str | None", "str | None", "str | None", "str | None"]
#: a plan's order (`qatlan.planner.finish.change_order`), on records
_ORDER = operator.itemgetter(0, 1)


def _record(c: Change, asset: str, part: str) -> Record:
    target = c.target
    return (c.address, c.action.value, canonical_text(c.to_dict()), bool(target.get("needs")),
            asset, part, None if c.before is None else row_text(c.before),
            None if c.after is None else row_text(c.after), c.reason, target.get("source"))


class ChangeSpill(ChangeSink):
    """A `qatlan.planner.ChangeSink` that keeps its changes in a temporary file."""

    def __init__(self, folder: str | None = None) -> None:  # not ChangeSink's list
        self._file = tempfile.TemporaryFile(dir=folder)
        self._runs: list[list[tuple[int, int]]] = []  # per run: (offset, size) of each frame
        self._end = 0
        self._tally = Tally()

    def add(self, changes: list[Change]) -> None:
        if not changes:
            return
        records = []
        for c in changes:
            asset, part = addresses.parse(c.address)
            self._tally.add(c, asset, part)
            records.append(_record(c, asset, part))
        records.sort(key=_ORDER)
        self._runs.append([self._write(records[i:i + _FRAME])
                           for i in range(0, len(records), _FRAME)])

    def _write(self, batch: list[Record]) -> tuple[int, int]:
        # compressed (JSON shrinks about tenfold): writing 1.5 GB for a million changes, on
        # top of the state's own writes, left the command waiting on the disk
        data = zlib.compress(marshal.dumps(batch), 1)
        self._file.write(data)
        at, self._end = self._end, self._end + len(data)
        return at, len(data)

    def result(self, moved: Mapping[str, str]) -> "SpilledChanges":
        self._file.flush()
        return SpilledChanges(self, dict(moved), self._tally.result())

    def records(self, moved: Mapping[str, str]) -> Iterator[Record]:
        """Every record, in plan order, with moved definitions applied."""
        merged = heapq.merge(*(self._run(frames) for frames in self._runs), key=_ORDER)
        if not moved:
            return merged
        return (_moved(r, moved) if r[3] else r for r in merged)

    def _run(self, frames: list[tuple[int, int]]) -> Iterator[Record]:
        fd = self._file.fileno()
        for at, size in frames:
            yield from marshal.loads(zlib.decompress(os.pread(fd, size, at)))

    def close(self) -> None:
        self._file.close()


def _moved(r: Record, moved: Mapping[str, str]) -> Record:
    data = json.loads(r[2])
    needs = data["target"].get("needs") or []
    if not any(n in moved for n in needs):
        return r
    data["target"]["needs"] = [moved.get(n, n) for n in needs]
    return (r[0], r[1], canonical_text(data), *r[3:])  # type: ignore[return-value]


class SpilledChanges(Sequence[Change]):
    """A plan's changes in a `ChangeSpill`: counted (`tally`), their canonical JSON (and
    their rows, `passing_rows`) streamed in plan order (`json_pieces`), and decoded one by
    one when walked."""

    def __init__(self, spill: ChangeSpill, moved: dict[str, str], counts: dict[str, Any]):
        self._spill, self._moved, self._tally = spill, moved, counts
        self._passing: tuple[list[tuple[Any, ...]] | None, int] = (None, 0)

    def __len__(self) -> int:
        return int(self._tally["changes"])

    def tally(self) -> dict[str, Any]:
        return self._tally

    def json_pieces(self) -> Iterator[str]:
        """Each change's canonical JSON, in plan order (within `passing_rows`, each change's
        `plan_changes` row is added to its list as its JSON goes by)."""
        rows, plan_id = self._passing
        for r in self._spill.records(self._moved):
            if rows is not None:
                rows.append((plan_id, r[0], r[4], r[5], r[1], r[6], r[7], r[8], r[9]))
            yield r[2]

    @contextlib.contextmanager
    def passing_rows(self, plan_id: int) -> Iterator[list[tuple[Any, ...]]]:
        """A list that receives the rows of plan `plan_id` while `json_pieces` runs: storing
        the plan reads the spill once for its body and its rows."""
        rows: list[tuple[Any, ...]] = []
        self._passing = (rows, plan_id)
        try:
            yield rows
        finally:
            self._passing = (None, 0)

    def __iter__(self) -> Iterator[Change]:
        for text in self.json_pieces():
            yield Change.from_dict(json.loads(text))

    def __getitem__(self, index: Any) -> Any:
        return tuple(self)[index]
