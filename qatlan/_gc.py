"""`gc_paused()`: pause the cyclic garbage collector around a pass over many small objects.

Matching, planning, rendering and the sandbox's store build or scan hundreds of thousands of
small acyclic objects (records, dicts, strings) while a large snapshot or world is alive.
Each automatic collection would rescan the whole heap; pausing roughly halves such passes.
Results are unaffected: nothing built there needs the cycle collector.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
