"""A controllable clock shared by token expiry, signed URLs, rate limits and timestamps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class Clock:
    """Wall-clock time plus an offset that tests can advance; or frozen at a start time.

    ``Clock()`` follows real time (so a running server behaves naturally) and
    ``advance(s)`` jumps it forward. ``Clock(start=t)`` is frozen at epoch ``t`` and
    only moves when advanced.
    """

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen = start is not None
        self._base = float(start) if start is not None else 0.0
        self._offset = 0.0

    def now(self) -> float:
        """Current simulated time as epoch seconds."""
        with self._lock:
            if self._frozen:
                return self._base + self._offset
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()


def iso(ts: float) -> str:
    """Autodesk's timestamp format: ``2024-01-15T09:00:00.000Z``."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
