"""`Problems`: what world validation found, the first few listed, all counted."""

from __future__ import annotations

from qatlan.sandbox.errors import WorldError

__all__ = ["MAX_LISTED", "Problems"]

MAX_LISTED = 5
_HINT = "fix the world file, or start from a generated one: qatlan sandbox up --generate tables=100"


class Problems:
    """Collects problems; keeps the first few, counts them all."""

    def __init__(self, limit: int = MAX_LISTED):
        self.listed: list[str] = []
        self.total = 0
        self._limit = limit

    def add(self, path: str, message: str) -> None:
        self.total += 1
        if len(self.listed) < self._limit:
            self.listed.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if not self.total:
            return
        lines = [f"invalid world ({self.total} problem{'s' if self.total > 1 else ''}):"]
        lines += [f"  {p}" for p in self.listed]
        if self.total > len(self.listed):
            lines.append(f"  ... and {self.total - len(self.listed)} more")
        raise WorldError("\n".join(lines), hint=_HINT)
