"""Outbound HTTP calls from the sandbox (Atlan webhooks, Qualytics Flow actions), with faults.

A `Deliverer` POSTs JSON bodies to one receiver on a background thread, so the API request
that caused an event never waits for the receiver. Real senders deliver at-least-once, maybe
late, maybe out of order, maybe not at all (reference events.md); the knobs make each of those
happen on purpose, from a seed:

    delay      seconds each event waits before it is sent
    loss       probability an event is dropped (counted as lost)
    duplicate  probability an event is sent twice (the second counted as duplicated)
    reorder    shuffle events within a small window (up to REORDER_WINDOW at a time)

Each send is one attempt: a receiver error or an unreachable receiver counts as failed and is
not retried (the real senders' retry policies are UNCONFIRMED). The worker thread starts on the
first event and ends after IDLE_EXIT seconds with nothing to do, so an unused or forgotten
deliverer leaves no thread behind.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from qatlan.sandbox.errors import WorldError

__all__ = ["IDLE_EXIT", "REORDER_WINDOW", "Deliverer", "DeliverySettings", "post_json"]

REORDER_WINDOW = 8
#: with reorder on, how long the worker lets a window fill before shuffling it
_GATHER = 0.05
IDLE_EXIT = 2.0
_TIMEOUT = 5.0


@dataclass(frozen=True)
class DeliverySettings:
    """Where to send and how badly; built from the admin API's JSON by `from_json`."""

    url: str
    secret: str = ""
    delay: float = 0.0
    duplicate: float = 0.0
    reorder: bool = False
    loss: float = 0.0
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any, extra_keys: tuple[str, ...] = ()) -> DeliverySettings:
        if not isinstance(doc, dict):
            raise WorldError("the settings are a JSON object with at least a 'url'")
        known = {"url", "secret", "delay", "duplicate", "reorder", "loss", "seed", *extra_keys}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise WorldError(f"unknown settings {unknown}; known: {', '.join(sorted(known))}")
        url = doc.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise WorldError("url: an http:// or https:// address of the receiver is required")
        secret = doc.get("secret", "")
        if not isinstance(secret, str):
            raise WorldError("secret: a string is required")
        reorder = doc.get("reorder", False)
        if not isinstance(reorder, bool):
            raise WorldError("reorder: true or false")
        seed = doc.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise WorldError("seed: a whole number is required")
        return cls(
            url=url, secret=secret, reorder=reorder, seed=seed,
            delay=_number(doc, "delay", 0.0, 3600.0),
            duplicate=_number(doc, "duplicate", 0.0, 1.0),
            loss=_number(doc, "loss", 0.0, 1.0),
            extra={k: doc[k] for k in extra_keys if k in doc},
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as shown by GET: the secret is never echoed, only whether one is set."""
        return {"url": self.url, "secret_set": bool(self.secret), "delay": self.delay, "duplicate": self.duplicate,
                "reorder": self.reorder, "loss": self.loss, "seed": self.seed, **self.extra}


def _number(doc: dict[str, Any], key: str, low: float, high: float) -> float:
    value = doc.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise WorldError(f"{key}: a number from {low:g} to {high:g} is required")
    return float(value)


def post_json(url: str, body: Any, headers: dict[str, str]) -> int | None:
    """One POST; the status code, or None when the receiver cannot be reached."""
    try:
        with httpx.Client(timeout=_TIMEOUT, trust_env=False) as client:
            return client.post(url, content=json.dumps(body).encode(), headers=_headers(headers)).status_code
    except httpx.HTTPError:
        return None


def _headers(extra: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": "qatlan-sandbox", **extra}


class Deliverer:
    """A queue of bodies for one receiver, sent on a background thread with `settings`' faults."""

    def __init__(self, settings: DeliverySettings, headers: dict[str, str]):
        self.settings = settings
        self._headers = _headers(headers)
        self._rng = random.Random(settings.seed)
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, Any]] = deque()
        self._inflight = 0
        self._worker: threading.Thread | None = None
        self._closed = False
        self.counts = dict.fromkeys(("queued", "sent", "lost", "duplicated", "failed"), 0)

    def submit(self, body: Any) -> None:
        """Queue one body (never blocks on the receiver)."""
        with self._lock:
            if self._closed:
                return
            self._pending.append((time.monotonic() + self.settings.delay, body))
            self.counts["queued"] += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="qatlan-sandbox-outbound", daemon=True)
                self._worker.start()

    def close(self) -> None:
        """Stop: pending bodies are dropped, a send in progress finishes."""
        with self._lock:
            self._closed = True
            self._pending.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counts, "pending": len(self._pending) + self._inflight}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or in flight (for tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats()["pending"] == 0:
                return True
            time.sleep(0.01)
        return False

    # ---- the worker ----

    def _run(self) -> None:
        with httpx.Client(timeout=_TIMEOUT, trust_env=False) as client:
            while True:
                batch = self._take()
                if batch is None:
                    return
                for due, body in batch:
                    time.sleep(max(0.0, due - time.monotonic()))
                    self._deliver(client, body)
                    with self._lock:
                        self._inflight -= 1

    def _take(self) -> list[tuple[float, Any]] | None:
        """The next bodies to send (one, or a shuffled window), or None when it is time to exit."""
        idle_since = time.monotonic()
        while True:
            with self._lock:
                if self._pending:
                    first_due = self._pending[0][0]
                    gather = self.settings.reorder and time.monotonic() < first_due + _GATHER
                    if not gather:
                        size = REORDER_WINDOW if self.settings.reorder else 1
                        batch = [self._pending.popleft() for _ in range(min(size, len(self._pending)))]
                        self._inflight += len(batch)
                        if self.settings.reorder:
                            self._rng.shuffle(batch)
                        return batch
                elif self._closed or time.monotonic() - idle_since > IDLE_EXIT:
                    self._worker = None
                    return None
            time.sleep(0.01)

    def _deliver(self, client: httpx.Client, body: Any) -> None:
        with self._lock:
            lost = self._rng.random() < self.settings.loss
            twice = not lost and self._rng.random() < self.settings.duplicate
            if lost:
                self.counts["lost"] += 1
            if twice:
                self.counts["duplicated"] += 1
        if lost:
            return
        content = json.dumps(body).encode()
        for _ in range(2 if twice else 1):
            try:
                ok = client.post(self.settings.url, content=content, headers=self._headers).is_success
            except httpx.HTTPError:
                ok = False
            with self._lock:
                self.counts["sent" if ok else "failed"] += 1
