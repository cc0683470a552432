"""A request budget per APS rate-limit class, so parallel workers use the limits without 429 storms.

Autodesk limits each client id per endpoint class (requests per minute). Every request first
takes a token from its class's bucket, refilled at the documented rate times `rate_scale`.
A 429 pauses the whole class until its Retry-After and lowers the rate by a fifth (limits
"may drop under load"); the rate creeps back up while requests succeed.

`LocalRateBudget` shares the budget among the threads of one process. `RedisRateBudget`
shares it among every process of a deployment (Airflow's Celery workers already have Redis).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from aps_mirror.aps import endpoints

log = logging.getLogger(__name__)

BURST_SECONDS = 5.0  # a bucket holds this many seconds of requests: smooth, yet no idle start
DECREASE = 0.8  # on a 429, the rate is multiplied by this
RECOVER_PER_MINUTE = 0.05  # then grows back by this share of the documented rate per minute
FLOOR = 0.1  # never below this share of the documented rate
_EPSILON = 1e-9


class RateBudget(Protocol):
    def acquire(self, budget: str) -> None:
        """Block until a request of this budget may be sent."""

    def throttled(self, budget: str, retry_after: float | None) -> None:
        """A 429 was answered: pause the budget and slow it down."""


@dataclass
class _Bucket:
    rate: float  # tokens per second now
    nominal: float  # the documented rate (times rate_scale)
    tokens: float
    updated: float
    paused_until: float = 0.0
    last_throttle: float = 0.0


def nominal_rate(budget: str, rate_scale: float) -> float | None:
    """Requests per second allowed for a budget, or None when it is not rate-limited."""
    rpm = endpoints.documented_rpm(budget)
    if rpm is None or rate_scale <= 0:
        return None
    return rpm * rate_scale / 60.0


class LocalRateBudget:
    """Token buckets shared by the threads of this process."""

    def __init__(self, rate_scale: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate_scale = rate_scale
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, budget: str) -> None:
        while True:
            with self._lock:
                wait = self._take(budget)
            if wait <= 0:
                return
            self._sleep(wait)

    def throttled(self, budget: str, retry_after: float | None) -> None:
        with self._lock:
            bucket = self._bucket(budget)
            if bucket is None:
                return
            now = self._clock()
            bucket.paused_until = max(bucket.paused_until, now + (retry_after or 1.0))
            if now - bucket.last_throttle > 1.0:  # one 429 burst lowers the rate once
                bucket.rate = max(bucket.nominal * FLOOR, bucket.rate * DECREASE)
                bucket.last_throttle = now
                log.info("APS rate-limited %s: pausing %.1fs, now %.1f requests/min",
                         budget, retry_after or 1.0, bucket.rate * 60)
            bucket.tokens = 0.0

    def _bucket(self, budget: str) -> _Bucket | None:
        bucket = self._buckets.get(budget)
        if bucket is None:
            rate = nominal_rate(budget, self.rate_scale)
            if rate is None:
                return None
            bucket = self._buckets[budget] = _Bucket(rate, rate, rate * BURST_SECONDS, self._clock())
        return bucket

    def _take(self, budget: str) -> float:
        """Take a token and return 0, or return how long to wait for one."""
        bucket = self._bucket(budget)
        if bucket is None:
            return 0.0
        now = self._clock()
        if now < bucket.paused_until:
            return bucket.paused_until - now
        elapsed = now - bucket.updated
        bucket.updated = now
        if bucket.rate < bucket.nominal:  # recover slowly after a 429
            bucket.rate = min(bucket.nominal, bucket.rate + bucket.nominal * RECOVER_PER_MINUTE * elapsed / 60)
        bucket.tokens = min(bucket.rate * BURST_SECONDS, bucket.tokens + elapsed * bucket.rate)
        if bucket.tokens >= 1.0 - _EPSILON:  # a float hair short of 1 would wait forever
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return 0.0
        return (1.0 - bucket.tokens) / bucket.rate


# KEYS[1] = bucket hash; ARGV = now, nominal rate, burst seconds, mode (take|throttle), retry_after.
# Redis runs the script atomically: one bucket for every worker process of the deployment.
_BUCKET_SCRIPT = """
local now = tonumber(ARGV[1]); local nominal = tonumber(ARGV[2]); local burst = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'rate', 'tokens', 'updated', 'paused', 'throttle')
local rate = tonumber(b[1]) or nominal; local tokens = tonumber(b[2]) or nominal * burst
local updated = tonumber(b[3]) or now; local paused = tonumber(b[4]) or 0
local last_throttle = tonumber(b[5]) or 0
local result = 0
if ARGV[4] == 'throttle' then
  paused = math.max(paused, now + tonumber(ARGV[5]))
  if now - last_throttle > 1 then rate = math.max(nominal * %(floor)s, rate * %(decrease)s); last_throttle = now end
  tokens = 0
elseif now < paused then
  result = paused - now
else
  local elapsed = math.max(0, now - updated); updated = now
  if rate < nominal then rate = math.min(nominal, rate + nominal * %(recover)s * elapsed / 60) end
  tokens = math.min(rate * burst, tokens + elapsed * rate)
  if tokens >= 1 - 1e-9 then tokens = math.max(0, tokens - 1) else result = (1 - tokens) / rate end
end
redis.call('HSET', KEYS[1], 'rate', rate, 'tokens', tokens, 'updated', updated, 'paused', paused, 'throttle', last_throttle)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(result)
""" % {"floor": FLOOR, "decrease": DECREASE, "recover": RECOVER_PER_MINUTE}


class RedisRateBudget:
    """Token buckets in Redis, shared by every process that uses the same client id."""

    def __init__(self, url: str, client_id: str, rate_scale: float = 1.0, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from aps_mirror.extras import import_extra

        # only deployments that share a budget need the client
        redis = import_extra("redis", extra="redis", feature="A rate budget shared through Redis")

        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._client_id = client_id
        self.rate_scale = rate_scale
        self._sleep = sleep

    def _call(self, budget: str, mode: str, retry_after: float = 0.0) -> float:
        rate = nominal_rate(budget, self.rate_scale)
        if rate is None:
            return 0.0
        now = self._redis.time()  # one clock for every worker
        key = f"aps-mirror:rate:{self._client_id}:{budget}"
        answer = self._script(keys=[key], args=[now[0] + now[1] / 1e6, rate, BURST_SECONDS, mode, retry_after])
        return float(answer)

    def acquire(self, budget: str) -> None:
        while (wait := self._call(budget, "take")) > 0:
            self._sleep(wait)

    def throttled(self, budget: str, retry_after: float | None) -> None:
        self._call(budget, "throttle", retry_after or 1.0)
