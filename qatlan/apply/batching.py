"""Sending in batches: shrink when calls are slow, split a refused batch to isolate the culprit.

A bulk request is all-or-nothing on both APIs: one bad item (a 403 on one asset, a 404 on
one id) refuses the whole request. `send_split` then halves the batch until the bad items
stand alone, so one refused item does not fail its neighbours. Server trouble (5xx, timeouts)
is not split: the clients already retried it, and halving would only multiply the load.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from qatlan.clients import last_call_seconds, reset_call_seconds
from qatlan.errors import ApiConnectionError, ApiError, ApiResponseError, ApiStatusError, ServerError

__all__ = ["SLOW_CALL_S", "UNSURE_WRITE", "BatchSizer", "Sent", "error_text", "send_split"]

T = TypeVar("T")
#: a write that takes longer than this shrinks the following batches
SLOW_CALL_S = 5.0
#: failures after which a write may or may not have landed: read it back to know
UNSURE_WRITE = (ServerError, ApiConnectionError, ApiResponseError)
#: statuses that blame the content of the request (so a smaller batch may succeed)
_SPLIT_STATUSES = frozenset({400, 403, 404, 409, 422})


@dataclass
class Sent(Generic[T]):
    """One request that went out: its items, the parsed answer, or the error."""

    items: list[T]
    answer: Any = None
    error: ApiError | None = None
    seconds: float = 0.0


class BatchSizer:
    """The current batch size: starts at `size`, halves (down to `floor`) after a call slower
    than `SLOW_CALL_S`, and doubles back (up to `size`) after `grow_after` calls in a row
    faster than half of that, so a passing stall does not shrink the rest of a long run."""

    def __init__(self, size: int, floor: int = 5, grow_after: int = 20):
        self.initial = self.size = max(1, size)
        self.floor = max(1, min(floor, self.size))
        self.grow_after = max(1, grow_after)
        self._fast = 0

    def observe(self, seconds: float) -> None:
        if seconds > SLOW_CALL_S:
            self._fast = 0
            self.size = max(self.floor, self.size // 2) if self.size > self.floor else self.size
        elif seconds < SLOW_CALL_S / 2 and self.size < self.initial:
            self._fast += 1
            if self._fast >= self.grow_after:
                self.size, self._fast = min(self.initial, self.size * 2), 0


async def send_split(items: list[T], send: Callable[[list[T]], Awaitable[Any]]) -> list[Sent[T]]:
    """Send `items` in one request; on a content error, split in halves and retry each."""
    started = time.monotonic()
    reset_call_seconds()

    def took() -> float:
        # the request's time on the wire; waits for the rate limit or a slot do not count
        seconds = last_call_seconds()
        return seconds if seconds is not None else time.monotonic() - started

    try:
        answer = await send(items)
        return [Sent(items, answer, None, took())]
    except ApiStatusError as exc:
        if len(items) > 1 and exc.status in _SPLIT_STATUSES:
            half = len(items) // 2
            return await send_split(items[:half], send) + await send_split(items[half:], send)
        return [Sent(items, None, exc, took())]
    except ApiError as exc:
        return [Sent(items, None, exc, took())]


def error_text(exc: BaseException) -> str:
    """One line for the journal: the message and, when there is one, the hint."""
    hint = getattr(exc, "hint", None)
    return f"{exc} ({hint})" if hint else str(exc)
