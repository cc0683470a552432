"""When and how long to retry an APS request: one predicate, one wait, one comment per status."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset(
    {
        408,  # request timeout: the gateway gave up waiting; safe to send again
        429,  # rate limited: wait as told by Retry-After, then send again
        500,  # internal error: APS documents these as transient
        502,  # bad gateway: a back end behind Autodesk's gateway was unreachable
        503,  # unavailable: overload or maintenance, usually with Retry-After
        504,  # gateway timeout: the back end was too slow this time
    }
)


class RetryableResponse(Exception):
    """Raised inside the retry loop for a response worth sending again."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in all, exponential backoff bounds, the longest wait honoured."""

    attempts: int = 8
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    max_wait: float = 300.0


def server_wait_seconds(response: requests.Response, now: Callable[[], float] = time.time) -> float | None:
    """How long the server asked us to wait: Retry-After (seconds or HTTP date), else X-RateLimit-Reset."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        retry_after = retry_after.strip()
        if retry_after.isdigit():
            return float(retry_after)
        try:
            when = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0.0, when.timestamp() - now())
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and response.headers.get("X-RateLimit-Remaining", "").strip() == "0":
        try:
            value = float(reset)
        except ValueError:
            return None
        # Either an epoch timestamp or seconds from now; anything over a day is an epoch.
        return max(0.0, value - now()) if value > 86_400 else value
    return None


def make_retrying(policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep,
                  describe: str = "APS request") -> Retrying:
    """A tenacity loop that retries RetryableResponse and network errors per `policy`."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(policy.backoff_max, policy.backoff_initial * 2 ** (state.attempt_number - 1))
        jittered = random.uniform(backoff / 2, backoff)  # full jitter spreads parallel workers
        if isinstance(exc, RetryableResponse):
            asked = server_wait_seconds(exc.response)
            if asked is not None:
                # The server knows best; a little jitter stops every worker waking at once.
                return min(policy.max_wait, asked + random.uniform(0, 0.25))
        return jittered

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0
        log.warning("%s failed (%s); retry %d/%d in %.1fs", describe, _short(exc),
                    state.attempt_number, policy.attempts - 1, seconds)

    return Retrying(
        retry=retry_if_exception_type((RetryableResponse, requests.ConnectionError, requests.Timeout,
                                       requests.exceptions.ChunkedEncodingError)),
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def _short(exc: BaseException | None) -> str:
    if isinstance(exc, RetryableResponse):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ if exc else "unknown"

