"""Traffic control: per-client token-bucket rate limits, injected faults and request statistics."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from aps_mirror.aps.endpoints import budget_of, documented_rpm

from .clock import Clock
from .errors import RateLimited

LOG_SIZE = 1000


class RateLimiter:
    """Token bucket per (client id, budget): ``documented_rpm * rate_scale`` per minute, burst
    of one minute's allowance. ``rate_scale`` 0 disables every limit."""

    def __init__(self, clock: Clock, rate_scale: float = 1.0) -> None:
        self.clock = clock
        self.rate_scale = rate_scale
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)

    def take(self, client_id: str, endpoint_class: str) -> None:
        """Spend one request or raise :class:`RateLimited` with the wait in whole seconds."""
        rpm = documented_rpm(endpoint_class)
        if not rpm or self.rate_scale <= 0:
            return
        per_second = rpm * self.rate_scale / 60.0
        capacity = max(1.0, rpm * self.rate_scale)  # burst: one minute's allowance (at least 1 call)
        key = (client_id, budget_of(endpoint_class))
        now = self.clock.now()
        with self._lock:
            tokens, at = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - at) * per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return
            self._buckets[key] = (tokens, now)
        raise RateLimited(max(1, math.ceil((1.0 - tokens) / per_second)))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: int | None = None


class FaultInjector:
    """Queues of forced failures per endpoint class (``"*"`` matches every class)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}

    def inject(self, endpoint: str, status: int, count: int = 1, retry_after: int | None = None) -> None:
        if status < 400 or count < 1:
            raise ValueError("a fault needs an error status (>= 400) and a count >= 1")
        with self._lock:
            self._faults.setdefault(endpoint, []).append(Fault(status, count, retry_after))

    def take(self, endpoint_class: str) -> Fault | None:
        """The fault to answer this request with, if any (consumes one use)."""
        with self._lock:
            for key in (endpoint_class, "*"):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                    return Fault(fault.status, 1, fault.retry_after)
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {k: [vars(f).copy() for f in v] for k, v in self._faults.items() if v}


class Stats:
    """Counts per endpoint class, signed-URL downloads and bytes, and the last 1000 requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._total = 0
            self._downloads = 0
            self._bytes = 0
            self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def record(self, method: str, path: str, status: int, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1
            self._total += 1
            self._log.append({"method": method, "path": path, "status": status, "endpoint": endpoint})

    def add_download(self) -> None:
        with self._lock:
            self._downloads += 1

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self._requests), "total": self._total, "downloads": self._downloads,
                    "bytes_served": self._bytes, "log": list(self._log)}
