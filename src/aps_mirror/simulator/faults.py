"""Injected faults per endpoint class: counted or probabilistic, reproducible from a seed (no HTTP)."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

# What a fault does to a request (the HTTP layer in traffic.py carries it out).
STATUS = "status"  # answer with `status` (429 carries Retry-After)
TIMEOUT = "timeout"  # hold the request `seconds`, then close the connection without an answer
RESET = "reset"  # close the connection at once (TCP RST), no answer
TRUNCATE = "truncate"  # announce the full Content-Length, send `fraction` of the body, close
SLOW = "slow"  # wait `seconds`, then answer normally
RANGE_403 = "range403"  # a Range request that does not start at 0 gets S3's 403 AccessDenied
BOM = "bom"  # prefix the body with a UTF-8 byte-order mark
KINDS = (STATUS, TIMEOUT, RESET, TRUNCATE, SLOW, RANGE_403, BOM)


@dataclass
class Fault:
    """One fault rule. ``count`` None = unlimited; ``rate`` = chance that a matching request is hit."""

    status: int = 500
    remaining: int | None = 1
    retry_after: int | None = None
    kind: str = STATUS
    rate: float = 1.0
    seconds: float = 30.0
    fraction: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Rules per endpoint class (``"*"`` matches every class); random draws come from one seeded RNG,
    so the same seed and the same request sequence give the same faults."""

    def __init__(self, seed: int | str = 0) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}
        self._rng = random.Random(seed)
        self.seed_value: int | str = seed

    def seed(self, seed: int | str) -> None:
        """Restart the random sequence."""
        with self._lock:
            self._rng = random.Random(seed)
            self.seed_value = seed

    def inject(self, endpoint: str, status: int | None = None, count: int | None = 1,
               retry_after: int | None = None, kind: str = STATUS, rate: float = 1.0,
               seconds: float | None = None, fraction: float = 0.5) -> Fault:
        """Add a rule; ``count=None`` keeps it until cleared (use with ``rate`` < 1)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {', '.join(KINDS)}")
        if kind == STATUS and (status is None or status < 400):
            raise ValueError("a status fault needs an error status (>= 400)")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 (or null for unlimited)")
        if not 0.0 < rate <= 1.0:
            raise ValueError("rate must be in (0, 1]")
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        default_seconds = {TIMEOUT: 60.0, SLOW: 2.0}.get(kind, 0.0)
        fault = Fault(status if status is not None else (403 if kind == RANGE_403 else 500), count, retry_after,
                      kind, rate, default_seconds if seconds is None else float(seconds), fraction)
        with self._lock:
            self._faults.setdefault(endpoint, []).append(fault)
        return fault

    def take(self, endpoint_class: str, range_start: int | None = None) -> Fault | None:
        """The fault to apply to this request, if any (consumes one use). ``range_start``: the first
        byte of a Range request (``range403`` rules only match a Range that does not start at 0)."""
        with self._lock:
            for key in (endpoint_class, "*"):
                for fault in list(self._faults.get(key, ())):
                    if fault.kind == RANGE_403 and not range_start:
                        continue
                    if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults[key].remove(fault)
                    hit = Fault(**fault.to_dict())
                    hit.remaining = 1
                    return hit
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {k: [f.to_dict() for f in v] for k, v in self._faults.items() if v}
