"""Progress of long reads and writes on stderr: one rewritten line on a terminal, plain
lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Progress for long reads: one rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.2):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._open = False

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        now = time.monotonic()
        if not finished and now - self._last.get(stage, 0.0) < (self.interval if self.tty else 5.0):
            return
        self._last[stage] = now
        text = f"{stage}: {done:,}" + (f"/{total:,}" if total is not None else "")
        if self.tty:
            bar = _bar(done, total) if total else ""
            self.stream.write(f"\r\033[K{text} {bar}")
            self._open = True
            if finished:
                self.stream.write("\n")
                self._open = False
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * min(done, total) / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"
