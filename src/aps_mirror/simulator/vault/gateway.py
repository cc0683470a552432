"""The Vault Gateway's limits: 40,000 requests per 5 minutes for all its APIs, and a payload quota.

Autodesk documents both (vault-notes.md §5): excess requests get HTTP 429; a request or a
response over 39,313,920 bytes gets HTTP 500. Whether the window is fixed or sliding is not
documented: this one slides. No Retry-After is documented, so none is sent.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

from ..clock import Clock
from .errors import GatewayError

GATEWAY_REQUESTS = 40_000
GATEWAY_WINDOW_SECONDS = 300.0
PAYLOAD_LIMIT = 39_313_920  # Autodesk: "~37.5 MB"


class GatewayLimiter:
    """A sliding window shared by every caller: ``GATEWAY_REQUESTS * rate_scale`` per window
    (``rate_scale`` read on each request; 0 disables the limit, as for the APS limits)."""

    def __init__(self, clock: Clock, rate_scale: Callable[[], float]) -> None:
        self.clock = clock
        self._rate_scale = rate_scale
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()

    @property
    def limit(self) -> int | None:
        scale = self._rate_scale()
        # the epsilon keeps 3/40000 of 40,000 at 3, not 2.9999...
        return None if scale <= 0 else max(1, math.floor(GATEWAY_REQUESTS * scale + 1e-9))

    def take(self) -> None:
        """Count one request, or raise the gateway's 429."""
        limit = self.limit
        if limit is None:
            return
        now = self.clock.now()
        with self._lock:
            while self._sent and self._sent[0] <= now - GATEWAY_WINDOW_SECONDS:
                self._sent.popleft()
            if len(self._sent) >= limit:
                raise GatewayError(f"Rate limit exceeded: {limit} requests per {int(GATEWAY_WINDOW_SECONDS)} "
                                   "seconds.", 429, "429")
            self._sent.append(now)

    def reset(self) -> None:
        with self._lock:
            self._sent.clear()


def payload_too_large(what: str, size: int, limit: int = PAYLOAD_LIMIT) -> GatewayError:
    """Autodesk: a too-large request and a request for a too-large resource both get 500."""
    return GatewayError(f"The {what} ({size} bytes) exceeds the gateway's payload quota of {limit} bytes.",
                        500, "500")
