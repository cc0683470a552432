"""Callback delivery: a background thread POSTs each event's signed body to its hook's callback URL,
retries failures with backoff, and carries out the test switches (duplicates, reordering, delays,
drops, failing URLs). Delays and backoff are real seconds; the thread exists only while there is
work, and :meth:`Deliverer.drain` waits until there is none."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import requests

from .clock import Clock, iso
from .webhook_registry import INACTIVE

log = logging.getLogger("aps_mirror.simulator.webhooks")
LOG_SIZE = 10_000


@dataclass(frozen=True)
class Delivery:
    """One event for one hook. ``delivery_id`` stays the same for its retries; a duplicate is another
    delivery of the same event, with its own id (GUESS: Autodesk's ids end in a fresh UUID per
    delivery, and at-least-once repeats of a delivered event are not retries of a failed one)."""

    delivery_id: str
    hook_id: str
    event: str
    url: str
    body: bytes
    one_time: bool = False  # a reactivated hook's single attempt
    duplicate: bool = False  # an extra copy from the duplicate switch (never counts for the hook)
    attempt: int = 1


@dataclass
class Switches:
    """What the deliverer does besides delivering (all off by default)."""

    duplicate: float = 0.0  # chance that an event is delivered twice, each with its own id (1: every event)
    reorder_window: int = 0  # hold this many first attempts, then send them shuffled (0 or 1: in order)
    delay: float = 0.0  # seconds before an event's first attempt
    drop: float = 0.0  # chance that an event is never sent
    drop_next: int = 0  # the next n events are never sent
    retries: int = 3  # attempts after a failed one (Autodesk: 8 over 48 hours)
    retry_backoff: float = 0.05  # seconds before the first retry, doubled for each further one
    timeout: float = 7.0  # seconds a callback has to answer 2xx (Autodesk: 7)

    def check(self) -> None:
        if not (0.0 <= self.duplicate <= 1.0 and 0.0 <= self.drop <= 1.0):
            raise ValueError("duplicate and drop are fractions between 0 and 1")
        if min(self.reorder_window, self.drop_next, self.retries) < 0 or min(self.delay, self.retry_backoff) < 0:
            raise ValueError("counts and seconds cannot be negative")
        if self.timeout <= 0:
            raise ValueError("timeout must be more than 0 seconds")


class Ledger(Protocol):
    """What the deliverer asks of the hooks' owner (the registry)."""

    def signing(self, hook_id: str) -> tuple[str, str | None] | None: ...

    def settle(self, hook_id: str, delivered: bool, one_time: bool) -> None: ...


def signature(secret: str, body: bytes) -> str:
    """``x-adsk-signature``: ``sha1hash=`` and the hex HMAC-SHA1 of the raw body keyed by the secret."""
    return "sha1hash=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class Deliverer:
    """The queue, the worker thread, the switches and the log of every attempt."""

    def __init__(self, ledger: Ledger, clock: Clock, seed: int | str = 0) -> None:
        self._ledger = ledger
        self._clock = clock
        self.switches = Switches()
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []  # heap of (due, order, delivery), monotonic time
        self._held: list[Delivery] = []  # first attempts waiting to be shuffled (reorder switch)
        self._ready: deque[Delivery] = deque()
        self._order = itertools.count()
        self._busy = False
        self._draining = 0
        self._worker: threading.Thread | None = None
        self._rng = random.Random(seed)
        self.seed_value: int | str = seed
        self._failing: dict[str, list[Any]] = {}  # url -> [status, remaining or None]
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._session = requests.Session()
        self._session.trust_env = False  # callbacks go straight to their URL, never through a proxy

    # ---- controls
    def configure(self, **changes: Any) -> dict[str, Any]:
        """Set switches by name (``duplicate=1.0``, ``reorder_window=4``, ...); returns them all."""
        with self._cond:
            unknown = sorted(set(changes) - set(asdict(self.switches)))
            if unknown:
                raise ValueError(f"unknown webhook switch(es): {', '.join(unknown)}")
            updated = replace(self.switches, **changes)
            updated.check()
            self.switches = updated
            self._cond.notify_all()
            return asdict(updated)

    def seed(self, seed: int | str) -> None:
        """Restart the random draws of the duplicate, drop and reorder switches."""
        with self._cond:
            self._rng = random.Random(seed)
            self.seed_value = seed

    def fail_url(self, url: str, status: int = 500, count: int | None = None) -> None:
        """Deliveries to ``url`` are not sent and count as failures with ``status`` (``count``: the next n)."""
        with self._cond:
            self._failing[url] = [status, count]

    def clear_failing(self) -> None:
        with self._cond:
            self._failing.clear()

    def failing(self) -> dict[str, dict[str, Any]]:
        with self._cond:
            return {url: {"status": s, "count": n} for url, (s, n) in self._failing.items()}

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt (and every event not sent), oldest first."""
        with self._cond:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._cond:
            self._log.clear()

    # ---- queue
    def enqueue(self, deliveries: list[Delivery]) -> None:
        """Queue events (called during the change: nothing is sent here)."""
        if not deliveries:
            return
        with self._cond:
            switches = self.switches
            due = time.monotonic() + switches.delay
            for delivery in deliveries:
                if switches.drop_next > 0:
                    self.switches = switches = replace(switches, drop_next=switches.drop_next - 1)
                    self._record(delivery, "dropped", None)
                    continue
                if switches.drop > 0 and self._rng.random() < switches.drop:
                    self._record(delivery, "dropped", None)
                    continue
                self._push(delivery, due)
                if switches.duplicate > 0 and self._rng.random() < switches.duplicate:
                    copy_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
                    self._push(replace(delivery, delivery_id=copy_id, duplicate=True), due)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="aps-simulator-webhooks", daemon=True)
                self._worker.start()
            self._cond.notify_all()

    def _push(self, delivery: Delivery, due: float) -> None:
        heapq.heappush(self._queue, (due, next(self._order), delivery))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued event was delivered or given up (held ones are released at once);
        False if that takes longer than ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._draining += 1
            self._cond.notify_all()
            try:
                while self._queue or self._held or self._ready or self._busy:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._draining -= 1

    # ---- the worker
    def _next(self) -> Delivery | None:
        """The next delivery to attempt (waiting for it), or None when there is no work left."""
        while True:
            if self._ready:
                return self._ready.popleft()
            now = time.monotonic()
            window = self.switches.reorder_window
            while self._queue and self._queue[0][0] <= now:
                _due, _order, delivery = heapq.heappop(self._queue)
                (self._held if window > 1 and delivery.attempt == 1 else self._ready).append(delivery)
            if self._held and (len(self._held) >= window or self._draining or window <= 1):
                self._rng.shuffle(self._held)
                self._ready.extend(self._held)
                self._held.clear()
            if self._ready:
                continue
            if not self._queue and not self._held:
                return None
            self._cond.wait(self._queue[0][0] - now if self._queue else None)

    def _run(self) -> None:
        while True:
            with self._cond:
                delivery = self._next()
                if delivery is None:
                    self._worker = None
                    self._cond.notify_all()
                    return
                self._busy = True
            try:
                self._deliver(delivery)
            except Exception:  # the worker must survive anything a delivery does
                log.exception("webhook delivery %s failed unexpectedly", delivery.delivery_id)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        state = self._ledger.signing(delivery.hook_id)
        if state is None or state[0] == INACTIVE:
            with self._cond:
                self._record(delivery, "hook deleted" if state is None else "hook inactive", None)
            return
        headers = {"Content-Type": "application/json", "x-adsk-delivery-id": delivery.delivery_id}
        if state[1] is not None:
            headers["x-adsk-signature"] = signature(state[1], delivery.body)
        status, outcome, error = self._send(delivery, headers)
        delivered = outcome == "delivered"
        with self._cond:
            self._record(delivery, outcome, status, headers, error)
            switches = self.switches
            retry = not delivered and not delivery.one_time and delivery.attempt <= switches.retries
            if retry:
                wait = switches.retry_backoff * 2 ** (delivery.attempt - 1)
                self._push(replace(delivery, attempt=delivery.attempt + 1), time.monotonic() + wait)
        if not retry and not delivery.duplicate:
            self._ledger.settle(delivery.hook_id, delivered, delivery.one_time)

    def _send(self, delivery: Delivery, headers: dict[str, str]) -> tuple[int | None, str, str | None]:
        """(HTTP status, outcome, error): delivered, failed (non-2xx), timeout, error, injected."""
        with self._cond:
            rule = self._failing.get(delivery.url)
            if rule is not None:
                if rule[1] is not None:
                    rule[1] -= 1
                    if rule[1] <= 0:
                        del self._failing[delivery.url]
                return int(rule[0]), "injected", None
            timeout = self.switches.timeout
        try:
            answer = self._session.post(delivery.url, data=delivery.body, headers=headers, timeout=timeout,
                                        allow_redirects=False)
            answer.close()
        except requests.Timeout:
            return None, "timeout", f"no answer within {timeout} s"
        except requests.RequestException as exc:
            return None, "error", type(exc).__name__
        return answer.status_code, "delivered" if 200 <= answer.status_code < 300 else "failed", None

    def _record(self, delivery: Delivery, outcome: str, status: int | None,
                headers: dict[str, str] | None = None, error: str | None = None) -> None:
        self._log.append({"delivery_id": delivery.delivery_id, "hook_id": delivery.hook_id, "event": delivery.event,
                          "url": delivery.url, "attempt": delivery.attempt, "duplicate": delivery.duplicate,
                          "outcome": outcome, "status": status, "error": error, "headers": dict(headers or {}),
                          "body": delivery.body.decode(), "at": iso(self._clock.now())})
