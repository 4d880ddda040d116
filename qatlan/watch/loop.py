"""`qatlan watch`: the long-running reconcile loop (controller-runtime's shape).

    watcher = Watcher(config, "state/qatlan.db", atlan_secret=..., qualytics_secret=...)
    asyncio.run(watcher.run())          # until SIGTERM/SIGINT or watcher.stop()

One process, one event loop:

- the **listener** (uvicorn on `[watch] listen`) turns webhooks into work keys and queues
  them in the state (`watch_queue`), due `[watch] debounce` seconds after a table's last event;
- the **poller** queues the keys of tables that changed on either side, every
  `[watch] poll_interval` (`qatlan.watch.poll`): events may be lost;
- the **worker** takes due keys (`[watch] batch_size` at a time) and reconciles them on a
  thread (`Reconciler.tables`); a key leaves the queue only when its reconcile finished, so a
  kill loses nothing; a failed reconcile puts its keys back after a backoff that doubles;
- every `[watch] resync_every` (and first, when the state has no snapshot), the worker runs a
  full refresh, plan and apply of the `auto_apply` kinds, which catches whatever events and
  polls missed; at start it also finishes an apply that a kill interrupted.

Only one `qatlan watch` runs per state (an OS lock on `<state>.watch.lock`, released when
the process dies, even by SIGKILL). SIGTERM lets the current batch finish; queued keys stay
in the state for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import uvicorn

from qatlan.config import Config
from qatlan.errors import ConfigError
from qatlan.state import State
from qatlan.watch.metrics import WatchMetrics
from qatlan.watch.poll import PollStopped
from qatlan.watch.reconcile import Outcome, Reconciler
from qatlan.watch.server import build_app, check_listen, is_loopback

__all__ = ["JsonFormatter", "TextFormatter", "Watcher"]

LOG = logging.getLogger("qatlan.watch")
#: when the last full resync finished (epoch seconds), in `watch_marks`
RESYNC_MARK = "last_resync"


class JsonFormatter(logging.Formatter):
    """`--log-format json`: one JSON object per line: time, level, message and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
               "message": record.getMessage(), **getattr(record, "fields", {})}
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """`--log-format text`: time, level, message, then the fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        tail = "".join(f" {k}={v}" for k, v in fields.items())
        return f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S%z')} {record.levelname} {record.getMessage()}{tail}"


def _log(level: int, message: str, **fields: Any) -> None:
    LOG.log(level, message, extra={"fields": fields})


class Watcher:
    """See the module doc. `transports` are the clients' test seams; `now` the clock."""

    def __init__(self, config: Config, state_path: str | Path, *, atlan_secret: str | None = None,
                 qualytics_secret: str | None = None, transports: Mapping[str, Any] | None = None,
                 metrics: WatchMetrics | None = None, now: Callable[[], float] = time.time,
                 lock_timeout: float = 600.0):
        self.config, self.path = config, Path(state_path)
        self.w = config.watch
        check_listen(self.w.host, atlan_secret, qualytics_secret)
        self.secrets = (atlan_secret, qualytics_secret)
        self.transports = dict(transports or {})
        self.metrics = metrics or WatchMetrics()
        self.now = now
        self.reconciler = Reconciler(config, self.path, lock_timeout=lock_timeout, now=now,
                                     transports=self.transports)
        self._stop = asyncio.Event()
        self._stopping = threading.Event()  # the same, for the poll's thread
        self._wake = asyncio.Event()
        self._st: State | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._os_lock: Any = None
        self.server: uvicorn.Server | None = None
        self.reconciles = 0
        self.last_error: str | None = None
        self._resyncing = False  # the worker runs a full resync: polls wait

    # ---- life cycle
    def stop(self) -> None:
        """Stop after the current batch (from the watcher's own event loop); a poll in
        progress gives up at its next page."""
        self._stop.set()
        self._stopping.set()
        self._wake.set()

    def stop_threadsafe(self) -> None:
        """`stop()` from another thread (tests, an embedding program)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.stop)

    async def run(self) -> None:
        self._claim()
        sock = None
        try:
            sock = self._bind()
            with State.open(self.path) as st:
                self._st = st
                st.rebase_queue(self.w.debounce)
                loop = self._loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, self.stop)
                self.server = self._server()
                tasks = [asyncio.create_task(self.server.serve(sockets=[sock]), name="listener"),
                         asyncio.create_task(self._poller(), name="poller"),
                         asyncio.create_task(self._worker(), name="worker")]
                _log(logging.INFO, "watching", listen=self.w.listen, state=str(self.path),
                     queued=st.queue_depth())
                await self._stop.wait()
                self.server.should_exit = True
                await asyncio.gather(*tasks, return_exceptions=True)
                _log(logging.INFO, "stopped", queued=st.queue_depth())
        finally:
            self._st = None
            if sock is not None:
                sock.close()
            self._release()

    def _claim(self) -> None:
        """One watch per state: an OS lock beside the state file, gone with the process."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path.with_name(self.path.name + ".watch.lock"), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"another `qatlan watch` runs on {self.path} ({other})",
                              hint="one watch per state: stop it first, or use another --state") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._os_lock = handle

    def _release(self) -> None:
        if self._os_lock is not None:
            self._os_lock.close()
            self._os_lock = None

    def _bind(self) -> socket.socket:
        """The listening socket, bound here so that a port in use is a one-line error."""
        family = socket.AF_INET6 if ":" in self.w.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.w.host, self.w.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.w.listen}: {exc.strerror or exc}",
                              hint="choose another [watch] listen (or --listen HOST:PORT)") from None
        sock.listen(128)
        sock.set_inheritable(True)
        return sock

    def _server(self) -> uvicorn.Server:
        atlan_secret, qualytics_secret = self.secrets
        app = build_app(self.on_keys, atlan_secret=atlan_secret, qualytics_secret=qualytics_secret,
                        metrics=self.metrics, health=self.health, max_body=self.w.max_body,
                        allow_unsigned=is_loopback(self.w.host), logger=LOG)
        config = uvicorn.Config(app, host=self.w.host, port=self.w.port, log_level="warning",
                                lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours stop it
        return server

    # ---- the queue
    def on_keys(self, source: str, event_type: str, keys: tuple[str, ...],
                updates: tuple[tuple[str, int], ...] = ()) -> None:
        """The listener's and poller's way in: queue the keys (in the state), wake the worker.
        `updates`: the (GUID, updateTime) an Atlan event reported, by which a key that only
        qatlan's own writes queued is dropped when it comes due."""
        if self._st is None:
            raise RuntimeError("not running")
        debounce = self.w.debounce if source != "poll" else 0.0
        self._st.enqueue(keys, now=self.now(), debounce=debounce, source=source,
                         updates={k: updates for k in keys} if updates else None)
        self.metrics.queue_depth.set(self._st.queue_depth())
        self._wake.set()

    def health(self) -> dict[str, Any]:
        depth = self._st.queue_depth() if self._st is not None else None
        return {"ok": self.last_error is None, "queued": depth, "reconciles": self.reconciles,
                "last_error": self.last_error}

    # ---- the poller, beside the worker (they split Atlan's request budget: Reconciler)
    async def _poller(self) -> None:
        while not self._stop.is_set():
            await self._sleep(self.w.poll_interval)
            # a full resync reads everything: a poll beside it would page through what the
            # resync reads and writes; the next poll starts from the snapshot it saved
            if not self._stop.is_set() and not self._resyncing:
                await self._poll()

    # ---- the worker: resyncs and reconciles, one at a time
    async def _worker(self) -> None:
        await self._resume_or_resync()
        while not self._stop.is_set():
            if self._resync_due():
                await self._resync()
            elif due := self._st.due_keys(self.now(), self.w.batch_size):
                await self._reconcile(due)
            else:
                await self._sleep(self._next_due(), wake=True)

    async def _poll(self) -> None:
        started = self.now()
        try:
            keys, requests, throttled = await asyncio.to_thread(self.reconciler.poll,
                                                                self._stopping.is_set)
        except PollStopped:
            return
        except Exception as exc:  # noqa: BLE001 - a side down: the next poll tries again
            self._failed("poll failed", exc)
            return
        for side in requests:
            self.metrics.requests.labels(side=side).inc(requests[side])
            self.metrics.throttled.labels(side=side).inc(throttled[side])
        if keys:
            self.metrics.event("poll", "changed")
            self.on_keys("poll", "changed", tuple(keys))
            _log(logging.INFO, "poll found changed tables", keys=len(keys),
                 seconds=round(self.now() - started, 3), requests=sum(requests.values()))
        self._up(True)

    async def _reconcile(self, due: list[dict[str, Any]]) -> None:
        st = self._st
        echoes = st.own_writes(due)  # events of qatlan's own writes: nothing to read again
        if echoes:
            st.keys_done(echoes)
            self.metrics.own_writes.inc(len(echoes))
            _log(logging.DEBUG, "dropped keys queued by qatlan's own writes", keys=len(echoes))
            dropped = {d["key"] for d in echoes}
            due = [d for d in due if d["key"] not in dropped]
            if not due:
                self.metrics.queue_depth.set(st.queue_depth())
                return
        keys, started = [d["key"] for d in due], self.now()
        for d in due:
            self.metrics.debounce.observe(max(0.0, started - d["first_seen"]))
        try:
            outcome = await asyncio.to_thread(self.reconciler.tables, keys)
        except Exception as exc:  # noqa: BLE001 - anything: the keys come back later
            st.keys_retry(keys, now=self.now())
            self._failed("reconcile failed; its keys come back after a backoff", exc, keys=len(keys))
            return
        st.keys_done(due)
        self._record(outcome, self.now() - started, first_seen=min(d["first_seen"] for d in due))

    async def _resume_or_resync(self) -> None:
        """At start: a state with no snapshot (or an old one) is resynced whole; otherwise an
        apply a kill interrupted is finished first."""
        if self._st.latest_snapshot_id() is None or self._resync_due():
            await self._resync()
            return
        try:
            outcome = await asyncio.to_thread(self.reconciler.resume)
        except Exception as exc:  # noqa: BLE001
            self._failed("finishing an interrupted apply failed", exc)
            return
        if outcome.note:
            self._record(outcome, 0.0)

    def _resync_due(self) -> bool:
        last = self._st.watch_mark(RESYNC_MARK)
        return last is None or self.now() - float(last) >= self.w.resync_every

    async def _resync(self) -> None:
        started = self.now()
        _log(logging.INFO, "full resync")
        self._resyncing = True
        try:
            outcome = await asyncio.to_thread(self.reconciler.everything, full=True)
        except Exception as exc:  # noqa: BLE001
            self._resyncing = False
            self._failed("full resync failed; trying again after the poll interval", exc)
            await self._sleep(self.w.poll_interval)
            return
        self._resyncing = False
        self._st.set_watch_mark(RESYNC_MARK, started)
        self._record(outcome, self.now() - started)

    def _record(self, outcome: Outcome, seconds: float, first_seen: float | None = None) -> None:
        self.reconciles += 1
        self.last_error = None
        m = self.metrics
        m.reconcile.observe(seconds)
        m.last_reconcile.set(time.time())
        for side, n in outcome.requests.items():
            m.requests.labels(side=side).inc(n)
        for side, n in outcome.rate_limited.items():
            m.throttled.labels(side=side).inc(n)
        for name, n in (("applied", outcome.applied), ("failed", outcome.failed), ("held", outcome.held)):
            if n:
                m.apply_outcomes.labels(outcome=name).inc(n)
        m.queue_depth.set(self._st.queue_depth())
        self._up(True)
        fields: dict[str, Any] = {"keys": len(outcome.keys), "containers": outcome.containers,
                                  "tables": outcome.tables, "applied": outcome.applied,
                                  "failed": outcome.failed, "held": outcome.held,
                                  "seconds": round(seconds, 3)}
        if first_seen is not None:
            fields["since_event"] = round(self.now() - first_seen, 3)
        if outcome.held_file:
            fields["held_plan"] = outcome.held_file
        if outcome.note:
            fields["note"] = outcome.note
        _log(logging.INFO, "reconciled", **fields)

    def _failed(self, message: str, exc: BaseException, **fields: Any) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._up(False)
        _log(logging.WARNING, message, error=self.last_error, **fields)

    def _up(self, up: bool) -> None:
        for side in ("atlan", "qualytics"):
            self.metrics.side_up.labels(side=side).set(1 if up else 0)

    def _next_due(self) -> float:
        """Seconds until the next key is due (at most a poll interval)."""
        due = self._st.next_due()
        return self.w.poll_interval if due is None else max(0.05, min(self.w.poll_interval, due - self.now()))

    async def _sleep(self, seconds: float, wake: bool = False) -> None:
        """Sleep, cut short by stop() (and, with `wake`, by a new key)."""
        waiters = [asyncio.create_task(self._stop.wait())]
        if wake:
            self._wake.clear()
            waiters.append(asyncio.create_task(self._wake.wait()))
        done, pending = await asyncio.wait(waiters, timeout=seconds,
                                           return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
