"""Small helpers the sandbox keeps to itself (it imports nothing from the rest of qatlan)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a pass over many small objects.

    Loading, validating, generating and searching a world build or scan hundreds of thousands of
    small acyclic objects; each automatic collection would rescan the whole heap. Nothing built
    there needs the cycle collector. Re-enabled afterwards only if it was enabled before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
