"""The client-side request budget: against the simulator's real limits, and shared via Redis."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.ratelimit import LocalRateBudget, RedisRateBudget
from aps_mirror.aps.transport import ApsTransport
from tests.conftest import FAST_RETRY, connection_for

REDIS_URL = "redis://127.0.0.1:6379/12"


class FakeClock:
    """Virtual time: sleeping advances it, so rates are measured exactly and instantly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_local_budget_holds_the_documented_rate():
    clock = FakeClock()
    budget = LocalRateBudget(1.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(600):
        budget.acquire("hubs")  # 50 requests per minute
    minutes = (clock.now - start) / 60
    assert 600 / minutes <= 50 * 1.1  # the 5-second burst aside, never faster than documented
    assert 600 / minutes >= 50 * 0.95


def test_a_429_pauses_and_slows_the_budget_then_it_recovers():
    clock = FakeClock()
    budget = LocalRateBudget(1.0, clock=clock, sleep=clock.sleep)
    budget.acquire("folder_contents")
    budget.throttled("folder_contents", 7.0)
    before = clock.now
    budget.acquire("folder_contents")
    assert clock.now - before >= 7.0, "the Retry-After is honoured by every caller"
    slowed = budget._buckets["folder_contents"].rate
    assert slowed < 300 / 60
    for _ in range(3000):
        budget.acquire("folder_contents")
    assert budget._buckets["folder_contents"].rate > slowed


def test_a_429_from_the_simulator_pauses_the_whole_budget(simulator):
    # One injected 429 asks for 2 s; the budget makes every worker of the class wait it out.
    client = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
    hub = client.hubs()[0]
    project = next(client.projects(hub.id))
    folder = client.top_folders(hub.id, project.id)[0]
    simulator.sim.inject_fault("folder_contents", 429, count=1, retry_after=2)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: list(client.folder_contents(project.id, folder.id)), range(4)))
    assert time.monotonic() - started >= 2.0
    assert client.transport.counter.throttled["folder_contents"] == 1
    bucket = client.transport.budget._buckets["folder_contents"]
    assert bucket.rate < bucket.nominal, "the rate was lowered after the 429"


def _hammer(client_id: str, n: int, out) -> None:
    budget = RedisRateBudget(REDIS_URL, client_id, rate_scale=1.0)
    for _ in range(n):
        budget.acquire("hubs")
        out.put(time.time())


def test_redis_budget_is_shared_by_processes():
    redis.Redis.from_url(REDIS_URL).flushdb()
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    out = multiprocessing.get_context("spawn").Queue()
    workers = [multiprocessing.get_context("spawn").Process(target=_hammer, args=(client_id, 4, out))
               for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    stamps = sorted(out.get(timeout=5) for _ in range(12))
    # hubs: 50/min = one per 1.2 s after a burst of ~4: 12 requests take >= (12 - 5) * 1.2 s together.
    assert stamps[-1] - stamps[0] >= 7 * 1.2 * 0.9
    assert all(w.exitcode == 0 for w in workers)
