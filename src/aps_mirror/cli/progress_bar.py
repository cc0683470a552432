"""Progress bars for `aps-mirror sync` in a terminal: one per project, drawn with rich.

The engine knows nothing of rich: it tells a `ProgressListener` of every update, and
`RichProgressListener` turns those into bars (files, bytes, rate, ETA). Outside a terminal
(Airflow task logs, pipes, `--json`) the CLI does not use it and the log lines stay.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress, TaskID, TaskProgressColumn,
                           TextColumn, TimeRemainingColumn, TransferSpeedColumn)

from aps_mirror.mirror.progress import Progress, ProgressListener

# The periodic "files, bytes, rate, ETA" lines: the bars say the same, and stay on screen.
_PROGRESS_LOGGER = "aps_mirror.progress"


class RichProgressListener(ProgressListener):
    """One rich task per engine `Progress` (a project's copies), kept up to date."""

    def __init__(self, bars: RichProgress) -> None:
        self.bars = bars
        self._tasks: dict[int, TaskID] = {}
        self._lock = threading.Lock()

    def started(self, progress: Progress) -> None:
        task = self.bars.add_task(progress.label, total=_total(progress), files=_files(progress))
        with self._lock:
            self._tasks[id(progress)] = task

    def updated(self, progress: Progress) -> None:
        with self._lock:
            task = self._tasks.get(id(progress))
        if task is not None:
            self.bars.update(task, completed=_done(progress), files=_files(progress))

    def finished(self, progress: Progress) -> None:
        with self._lock:
            task = self._tasks.pop(id(progress), None)
        if task is not None:
            self.bars.update(task, completed=_done(progress), files=_files(progress))
            self.bars.stop_task(task)


def _total(progress: Progress) -> int:
    # Bytes measure the work, unless every file is empty: then files do.
    return progress.total_bytes or progress.total_files


def _done(progress: Progress) -> int:
    return progress.bytes if progress.total_bytes else progress.files


def _files(progress: Progress) -> str:
    return f"{progress.files}/{progress.total_files} files"


def wants_progress_bars(stream=None) -> bool:
    """Bars only on a terminal (and not on a dumb one); elsewhere the log lines stay."""
    console = Console(file=stream or sys.stderr)
    return console.is_terminal and not console.is_dumb_terminal


@contextmanager
def progress_bars(console: Console | None = None) -> Iterator[RichProgressListener]:
    """Show bars on stderr while the block runs; yields the listener to give the engine.

    Log records keep flowing: the handlers writing to stderr print above the bars for the
    duration, and the periodic progress lines (which the bars replace) are muted.
    """
    console = console or Console(stderr=True)
    bars = RichProgress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[files]}"), DownloadColumn(binary_units=True),
        TransferSpeedColumn(), TimeRemainingColumn(),
        console=console, redirect_stdout=True, redirect_stderr=True,
    )
    progress_log = logging.getLogger(_PROGRESS_LOGGER)
    level = progress_log.level
    original_stderr = sys.stderr
    moved: list[logging.StreamHandler] = []
    bars.start()
    try:
        progress_log.setLevel(logging.WARNING)
        if sys.stderr is not original_stderr:  # rich now proxies stderr to print above the bars
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is original_stderr:
                    handler.setStream(sys.stderr)
                    moved.append(handler)
        yield RichProgressListener(bars)
    finally:
        bars.stop()
        for handler in moved:
            handler.setStream(original_stderr)
        progress_log.setLevel(level)
