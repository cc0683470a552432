"""Progress of a long copy (files, bytes, rate, ETA), logged at a steady pace.

Listeners (`ProgressListener`) see every update as it happens: the CLI draws progress bars
with one, while the log lines keep Airflow task logs, pipes and `--json` runs informed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

log = logging.getLogger("aps_mirror.progress")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressListener:
    """Told of a `Progress` as it starts, moves and finishes; override what you need.

    `updated` is called from the copy threads, after every chunk and every finished file:
    keep it quick and thread-safe. An exception is logged once and otherwise ignored.
    """

    def started(self, progress: Progress) -> None:
        pass

    def updated(self, progress: Progress) -> None:
        pass

    def finished(self, progress: Progress) -> None:
        pass


class Progress:
    """Counts finished files and transferred bytes against a known total; thread-safe."""

    def __init__(self, label: str, total_files: int, total_bytes: int, *,
                 interval: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 listeners: Iterable[ProgressListener] = ()) -> None:
        self.label = label
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files = 0
        self.bytes = 0
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last_report = self._started
        self._lock = threading.Lock()
        self._listeners = list(listeners)
        self._notify("started")

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n
        self._notify("updated")
        self._maybe_report()

    def file_done(self) -> None:
        with self._lock:
            self.files += 1
        self._notify("updated")
        self._maybe_report()

    def _notify(self, event: str) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener, event)(self)
            except Exception as exc:  # a display must never fail a copy
                with self._lock:
                    dropped = listener in self._listeners
                    if dropped:
                        self._listeners.remove(listener)
                if dropped:  # once, though several copy threads may have seen it fail
                    log.warning("progress listener %r failed (%s); it gets no more updates", listener, exc)

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-6)
        rate = self.bytes / elapsed
        remaining = max(self.total_bytes - self.bytes, 0)
        eta = human_seconds(remaining / rate) if rate > 0 and remaining else "0s" if not remaining else "?"
        return (f"{self.label}: {self.files}/{self.total_files} files, "
                f"{human_bytes(self.bytes)}/{human_bytes(self.total_bytes)}, "
                f"{human_bytes(rate)}/s, ETA {eta}")

    def _maybe_report(self) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last_report < self._interval:
                return
            self._last_report = now
        log.info("%s", self.line())

    def finish(self) -> None:
        self._notify("finished")
        log.info("%s (done in %s)", self.line(), human_seconds(self._clock() - self._started))
