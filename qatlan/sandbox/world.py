"""The sandbox world: one document holding an Atlan tenant and a Qualytics deployment.

The format is documented in docs/world-format.md. `World` validates a document, hands each
side to its store (`AtlanStore`, `QualyticsStore`), and exports the current contents back to
one document. The API apps always reach the stores through `world.atlan` / `world.qualytics`
so that `World.replace()` can swap the contents under running servers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qatlan.sandbox.errors import WorldError

WORLD_VERSION = 1


class World:
    """Both sides of a sandbox world, validated and indexed."""

    def __init__(self, doc: dict[str, Any], *, clock: Callable[[], float] = time.time):
        self._clock = clock
        # one lock for both stores: uvicorn serves both apps from one event loop, but the
        # in-thread server used by tests and the admin API may touch the world concurrently
        self.lock = threading.RLock()
        #: change listeners per side, kept across `replace` (see `set_listener`)
        self._listeners: dict[str, Callable[..., None] | None] = {"atlan": None, "qualytics": None}
        self._load(doc)

    def _load(self, doc: dict[str, Any]) -> None:
        from qatlan.sandbox.atlan_store import AtlanStore
        from qatlan.sandbox.qualytics_store import QualyticsStore
        from qatlan.sandbox.schema import validate_world

        validate_world(doc)
        self.meta: dict[str, Any] = dict(doc.get("meta") or {})
        self.atlan = AtlanStore(doc["atlan"], clock=self._clock)
        self.qualytics = QualyticsStore(doc["qualytics"], clock=self._clock)
        self.atlan.on_change = self._listeners["atlan"]
        self.qualytics.on_change = self._listeners["qualytics"]

    def set_listener(self, side: str, listener: Callable[..., None] | None) -> None:
        """Call `listener` on every change to one side's store (its `on_change`), now and after
        a `replace`; None removes it. Loading a world is not a change and calls nothing.

        Listeners run under `lock`, inside the write: they must be quick (queue and return).
        """
        if side not in self._listeners:
            raise WorldError(f"side: must be 'atlan' or 'qualytics', not {side!r}")
        with self.lock:
            self._listeners[side] = listener
            getattr(self, side).on_change = listener

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "World":
        return cls(read_world_file(path), **kwargs)

    def replace(self, doc: dict[str, Any]) -> None:
        """Swap in a new document (validated first; on error the current world stays)."""
        with self.lock:
            old = (self.meta, self.atlan, self.qualytics)
            try:
                self._load(doc)
            except Exception:
                self.meta, self.atlan, self.qualytics = old
                raise

    def export(self) -> dict[str, Any]:
        with self.lock:
            return {
                "world_version": WORLD_VERSION,
                "meta": dict(self.meta),
                "atlan": self.atlan.export(),
                "qualytics": self.qualytics.export(),
            }

    def apply_changes(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply admin changes (see docs/sandbox.md); returns one result per change.

        Each change names its `side` (`atlan` or `qualytics`); the store validates the rest
        and raises WorldError naming the bad change.
        """
        from qatlan.sandbox import atlan_writes, qualytics_changes

        results = []
        with self.lock:
            for i, change in enumerate(changes):
                side = change.get("side") if isinstance(change, dict) else None
                if side not in ("atlan", "qualytics"):
                    raise WorldError(f"changes[{i}].side: must be 'atlan' or 'qualytics'")
                try:
                    if side == "qualytics":
                        results.append(qualytics_changes.apply_change(self.qualytics, change))
                    else:
                        results.append(atlan_writes.apply_change(self.atlan, change))
                except WorldError as exc:
                    raise WorldError(f"changes[{i}]: {exc}") from exc
        return results


def read_world_file(path: str | Path) -> dict[str, Any]:
    """Read a world JSON file, turning I/O and JSON errors into WorldError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorldError(f"cannot read world file {p}: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorldError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if not isinstance(doc, dict):
        raise WorldError(f"{p}: a world is a JSON object with 'atlan' and 'qualytics' keys")
    return doc


def write_world_file(doc: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")), encoding="utf-8")
