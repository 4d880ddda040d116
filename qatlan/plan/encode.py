"""Plan JSON in pieces: the same text as `json.dumps`, never held whole.

`iter_json` walks dicts key by key and encodes long lists (or `LazyList`s, converted a
chunk at a time) `chunk_size` items per `json.dumps` call. The plan file, the plan's
checksum, the stored plan body and `qatlan plan --json` are all written through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

__all__ = ["LazyList", "RawList", "change_json", "iter_json", "split_array"]


def change_json(change: Any) -> dict[str, Any]:
    """`change.to_dict()` for encoding only: the target dict is not copied."""
    target = change.target
    return {
        "address": change.address,
        "action": change.action.value,
        "before": change.before,
        "after": change.after,
        "reason": change.reason,
        "target": target if type(target) is dict else dict(target),
    }


class LazyList:
    """A list `iter_json` encodes as `[convert(item), ...]`, converting one chunk at a time."""

    __slots__ = ("convert", "items")

    def __init__(self, items: Sequence[Any], convert: Callable[[Any], Any]):
        self.items = items
        self.convert = convert

    def __len__(self) -> int:
        return len(self.items)


class RawList:
    """A list whose items come already encoded in the canonical form (sorted keys, no spaces,
    ASCII): `pieces()` yields each item's text. `iter_json` writes them as they are when it
    encodes canonically, and decodes them (`convert`) for any other form."""

    __slots__ = ("convert", "pieces", "size")

    def __init__(self, pieces: Callable[[], Iterator[str]], size: int,
                 convert: Callable[[Any], Any]):
        self.pieces, self.size, self.convert = pieces, size, convert

    def __len__(self) -> int:
        return self.size


def iter_json(value: Any, *, sort_keys: bool = False,
              separators: tuple[str, str] = (", ", ": "), ensure_ascii: bool = True,
              chunk_size: int = 100) -> Iterator[str]:
    """The text of `json.dumps(value, ...)` in pieces; joined, they are exactly that text.

    Dicts with string keys are walked key by key; a `LazyList`, or a list longer than
    `chunk_size`, is encoded `chunk_size` items at a time, so neither the whole text nor a
    converted copy of every item is held at once. Everything else goes to `json.dumps`.
    (The standard library's `JSONEncoder.iterencode` streams too, but only with its pure-Python
    encoder, which yields every token separately and is many times slower than `json.dumps`
    over chunks of 100 changes.)
    """
    dumps = partial(json.dumps, sort_keys=sort_keys, separators=separators,
                    ensure_ascii=ensure_ascii)
    return _walk(value, dumps, separators, sort_keys, max(1, chunk_size))


def _walk(value: Any, dumps: Callable[[Any], str], separators: tuple[str, str],
          sort_keys: bool, size: int) -> Iterator[str]:
    kind = type(value)
    if kind is dict and value and all(type(k) is str for k in value):
        items = sorted(value.items(), key=itemgetter(0)) if sort_keys else value.items()
        opening = "{"
        for key, item in items:
            yield opening + dumps(key) + separators[1]
            yield from _walk(item, dumps, separators, sort_keys, size)
            opening = separators[0]
        yield "}"
    elif kind is RawList:
        yield from _walk_raw(value, dumps, separators, sort_keys, size)
    elif kind is LazyList or (kind is list and len(value) > size):
        yield from _walk_list(value, dumps, separators[0], size)
    else:
        yield dumps(value)


def _walk_list(value: Any, dumps: Callable[[Any], str], separator: str,
               size: int) -> Iterator[str]:
    items, convert = (value.items, value.convert) if type(value) is LazyList else (value, None)
    opening = "["
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        if convert is not None:
            chunk = [convert(x) for x in chunk]
        yield opening + dumps(chunk)[1:-1]
        opening = separator
    yield "]" if opening != "[" else "[]"


def _walk_raw(value: RawList, dumps: Callable[[Any], str], separators: tuple[str, str],
              sort_keys: bool, size: int) -> Iterator[str]:
    canonical = separators == (",", ":") and sort_keys and dumps("\u00e9") == '"\\u00e9"'
    opening, batch = "[", []
    for text in value.pieces():
        batch.append(text if canonical else dumps(value.convert(json.loads(text))))
        if len(batch) >= size:
            yield opening + separators[0].join(batch)
            opening, batch = separators[0], []
    if batch:
        yield opening + separators[0].join(batch)
        opening = separators[0]
    yield "]" if opening != "[" else "[]"


def split_array(chunks: Iterable[bytes], start: int, end: int | None = None) -> Iterator[tuple[Any, str]]:
    """(decoded, text) of each item of the JSON array whose `[` and `]` sit at offsets
    `start` and `end - 1` of a compact ASCII text given in `chunks` (a plan's canonical JSON,
    as it is inflated or read): items are cut and decoded one at a time, none held after.
    Without `end`, the array ends at its closing bracket."""
    scan = json.JSONDecoder().raw_decode
    start = start + 1  # inside the brackets
    stop_at = None if end is None else end - 1
    buf, pos, at = "", 0, 0
    for chunk in chunks:
        lo = max(start - at, 0)
        hi = len(chunk) if stop_at is None else min(stop_at - at, len(chunk))
        at += len(chunk)
        if lo >= hi:
            if stop_at is not None and at >= stop_at:
                break
            continue
        buf = buf[pos:] + chunk[lo:hi].decode("ascii")
        pos = 0
        while pos < len(buf):
            if buf[pos] == ",":
                pos += 1
            elif buf[pos] == "]" and stop_at is None:
                return
            try:
                data, stop = scan(buf, pos)
            except ValueError:
                if stop_at is not None and at >= stop_at:  # nothing more to come: damaged
                    raise
                break  # the item goes on in the next chunk
            yield data, buf[pos:stop]
            pos = stop
