"""Injected faults, rate limits and statistics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from .sim_helpers import Api


def test_injected_429_with_retry_after(fresh_api: Api) -> None:
    r = requests.post(fresh_api.base + "/_sim/faults", json={"endpoint": "hubs", "status": 429, "count": 2,
                                                             "retry_after": 7})
    assert r.status_code == 200
    for _ in range(2):
        hit = fresh_api.get("/project/v1/hubs")
        assert hit.status_code == 429 and hit.headers["Retry-After"] == "7"
        assert hit.json() == {"developerMessage": "Quota limit exceeded."}
    assert fresh_api.get("/project/v1/hubs").status_code == 200
    log = fresh_api.server.sim.stats()["log"]
    assert [e["status"] for e in log if e["endpoint"] == "hubs"] == [429, 429, 200]


def test_injected_5xx_and_clear(fresh_api: Api) -> None:
    fresh_api.server.sim.inject_fault("hubs", 503, count=5)
    assert fresh_api.get("/project/v1/hubs").status_code == 503
    requests.delete(fresh_api.base + "/_sim/faults").raise_for_status()
    assert fresh_api.get("/project/v1/hubs").status_code == 200


def test_bad_fault_request(fresh_api: Api) -> None:
    assert requests.post(fresh_api.base + "/_sim/faults", json={"endpoint": "hubs"}).status_code == 400


def test_rate_limit_gives_429_then_recovers() -> None:
    clock = Clock(start=1_800_000_000.0)
    # hubs: 50 rpm * 0.1 = 5 per minute, burst 5
    with SimulatorServer(Simulator(seed="empty", rate_scale=0.1, clock=clock)) as server:
        api = Api(server)
        api.client_credentials()
        statuses = [api.get("/project/v1/hubs").status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        limited = api.get("/project/v1/hubs")
        assert limited.json() == {"developerMessage": "Quota limit exceeded."}
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 12
        # other budgets are independent
        hub_id = server.sim.account.hubs[0].id
        assert api.get(f"/project/v1/hubs/{hub_id}/projects").status_code == 200
        clock.advance(retry_after)
        assert api.get("/project/v1/hubs").status_code == 200


def test_parallel_clients_and_stats(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    sim.reset_stats()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: fresh_api.get("/project/v1/hubs").status_code, range(40)))
    assert statuses == [200] * 40
    stats = requests.get(fresh_api.base + "/_sim/stats").json()
    assert stats["requests"] == {"hubs": 40} and stats["total"] == 40 and len(stats["log"]) == 40
    requests.post(fresh_api.base + "/_sim/reset-stats").raise_for_status()
    assert sim.stats()["total"] == 0


def test_rate_scale_can_change_at_run_time(fresh_api: Api) -> None:
    r = requests.post(fresh_api.base + "/_sim/rate-scale", json={"rate_scale": 0.001})  # < 1 call per minute
    assert r.json() == {"rate_scale": 0.001}
    assert fresh_api.get("/project/v1/hubs").status_code == 200  # a burst of at least one call
    limited = fresh_api.get("/project/v1/hubs")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    requests.post(fresh_api.base + "/_sim/rate-scale", json={"rate_scale": 0}).raise_for_status()
    assert fresh_api.get("/project/v1/hubs").status_code == 200
