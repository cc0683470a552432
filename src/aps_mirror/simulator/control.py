"""Traffic control: per-client token-bucket rate limits and request statistics (faults: faults.py)."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from typing import Any

from aps_mirror.aps.endpoints import budget_of, documented_rpm

from .clock import Clock
from .errors import RateLimited
from .faults import Fault, FaultInjector

__all__ = ["Fault", "FaultInjector", "RateLimiter", "Stats"]

LOG_SIZE = 1000


class RateLimiter:
    """Token bucket per (client id, budget): ``documented_rpm * rate_scale`` per minute, burst
    of one minute's allowance. ``rate_scale`` 0 disables every limit."""

    def __init__(self, clock: Clock, rate_scale: float = 1.0) -> None:
        self.clock = clock
        self.rate_scale = rate_scale
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)

    def take(self, client_id: str, endpoint_class: str) -> tuple[int, int, int] | None:
        """Spend one request or raise :class:`RateLimited` with the wait in whole seconds.

        Returns ``(limit per minute, remaining, seconds until full)`` for X-RateLimit-* headers,
        or None when the endpoint is not limited."""
        rpm = documented_rpm(endpoint_class)
        if not rpm or self.rate_scale <= 0:
            return None
        per_second = rpm * self.rate_scale / 60.0
        capacity = max(1.0, rpm * self.rate_scale)  # burst: one minute's allowance (at least 1 call)
        key = (client_id, budget_of(endpoint_class))
        now = self.clock.now()
        with self._lock:
            tokens, at = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - at) * per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                left = tokens - 1.0
                return int(capacity), int(left), math.ceil((capacity - left) / per_second)
            self._buckets[key] = (tokens, now)
        wait = max(1, math.ceil((1.0 - tokens) / per_second))
        raise RateLimited(wait, (int(capacity), 0, wait))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


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
