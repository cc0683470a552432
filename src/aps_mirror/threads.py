"""Thread pools whose tasks run in the submitter's context (contextvars).

Per-scope request tallies (`aps.transport.CallCounter.tally`) follow the work into worker
threads this way: a project's copies and their ranged parts count as that project's calls.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class ContextThreadPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor that runs each task in a copy of the context it was submitted from."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
