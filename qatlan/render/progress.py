"""Progress of long reads and writes on stderr.

On a terminal (not `TERM=dumb`, not `CI`): one live line drawn by rich (stage, bar, done/total,
rate, time left), and a plain line per finished stage; with colour off (`--no-color`,
`NO_COLOR`) the live line is plain text rewritten after a carriage return, so no escape code
is written. Elsewhere (a pipe, a CI log): a plain line every few seconds per stage, with the
rate and the time left, and one when it finishes.

    progress = Progress()
    progress("qualytics fields", 120, 5000)   # called as often as you like; it throttles
    progress.note("Atlan: ConnectError, retry 1 of 5 in 1.3 s")   # a line above the bar
    progress.close()
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from qatlan.render.term import interactive, use_color

__all__ = ["Progress"]

#: seconds between two plain lines of the same stage
PLAIN_INTERVAL = 5.0
#: seconds between two rewrites of the live line without colour
LINE_INTERVAL = 0.2


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _rate(done: int, elapsed: float) -> float | None:
    return done / elapsed if elapsed > 0.05 and done > 0 else None


class Progress:
    """Progress for long reads and writes: call it with (stage, done, total or None)."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = PLAIN_INTERVAL,
                 live: bool | None = None, clock: Any = time.monotonic):
        self.stream = stream or sys.stderr
        self.live = interactive(self.stream) if live is None else live
        self.interval = interval
        self._clock = clock
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._finished: set[str] = set()
        self._rich: Any = None
        self._task: Any = None
        self._stage: str | None = None
        self._width = 0  # of the open \r line (live without colour)
        self.color = use_color(self.stream)

    # ------------------------------------------------------------------ the callable

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = self._clock()
        finished = total is not None and done >= total
        if stage in self._finished:
            if finished:
                return  # said already
            self._finished.discard(stage)  # the same stage again (e.g. apply's next phase)
        started = self._started.setdefault(stage, now)
        if self.live and self.color:
            self._draw(stage, done, total)
        elif self.live:  # no colour, so no escape codes either: a line rewritten after \r
            if finished or now - self._last.get(stage, 0.0) >= LINE_INTERVAL:
                self._last[stage] = now
                self._line(self._plain(stage, done, total, now - started, False))
        elif finished or now - self._last.get(stage, started) >= self.interval:
            self._last[stage] = now
            self._write(self._plain(stage, done, total, now - started, finished))
        if finished:
            self._finished.add(stage)
            self._started.pop(stage, None)
            self._last.pop(stage, None)
            if self.live:
                self._end_stage(self._plain(stage, done, total, now - started, True))

    def note(self, text: str) -> None:
        """A line of its own (above the live line on a terminal)."""
        if self._rich is not None:
            self._rich.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._line(None)
            self._write(text)

    def close(self) -> None:
        self._line(None)
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
            self._task = None
            self._stage = None

    # ------------------------------------------------------------------ plain lines

    def _plain(self, stage: str, done: int, total: int | None, elapsed: float, finished: bool) -> str:
        text = f"{stage}: {done:,}" + (f"/{total:,}" if total is not None else "")
        rate = _rate(done, elapsed)
        if finished:
            return text + f" in {_duration(elapsed)}" + (f" ({rate:,.0f}/s)" if rate else "")
        extra = []
        if rate:
            extra.append(f"{rate:,.0f}/s")
            if total is not None and total > done:
                extra.append(f"about {_duration((total - done) / rate)} left")
        return text + (f" ({', '.join(extra)})" if extra else "")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _line(self, text: str | None) -> None:
        """Rewrite the current line with `text` after a carriage return, padded over the
        last one; None ends the line (if one is open)."""
        if text is None:
            if self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0
            return
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    # ------------------------------------------------------------------ rich, on a terminal

    def _draw(self, stage: str, done: int, total: int | None) -> None:
        if self._rich is None:
            self._rich = _rich_progress(self.stream)
            self._rich.start()
        if self._stage != stage or self._task is None:
            if self._task is not None:
                self._rich.remove_task(self._task)
            self._task = self._rich.add_task(stage, total=total)
            self._stage = stage
        self._rich.update(self._task, completed=done, total=total)

    def _end_stage(self, line: str) -> None:
        if self._rich is None:
            self.note(line)
            return
        if self._task is not None:
            self._rich.remove_task(self._task)
            self._task = None
            self._stage = None
            self._rich.refresh()  # else the note is followed by the last drawing of the bar
        self.note(line)


def _rich_progress(stream: TextIO) -> Any:
    """rich's Progress on `stream`: stage, bar, done/total, rate, time left; one line, removed
    when the stage ends (its plain line stays)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

    console = Console(file=stream, highlight=False)
    return RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        RateColumn(), TimeRemainingColumn(), console=console, transient=True,
                        refresh_per_second=5)
