"""Each injected fault kind happens as configured, counted or probabilistic, reproducibly from its seed."""

from __future__ import annotations

import json
import time

import pytest
import requests

from aps_mirror.simulator import Simulator, SimulatorServer
from .sim_helpers import Api, enc

HUBS = "/project/v1/hubs"


def _fault(api: Api, **body: object) -> dict:  # type: ignore[type-arg]
    r = requests.post(api.base + "/_sim/faults", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_connection_reset_then_recovers(fresh_api: Api) -> None:
    _fault(fresh_api, endpoint="hubs", kind="reset")
    with pytest.raises(requests.ConnectionError):
        fresh_api.get(HUBS)
    assert fresh_api.get(HUBS).status_code == 200
    statuses = [e["status"] for e in fresh_api.server.sim.stats()["log"] if e["endpoint"] == "hubs"]
    assert statuses == [0, 200]


def test_timeout_holds_longer_than_the_client_waits(fresh_api: Api) -> None:
    _fault(fresh_api, endpoint="hubs", kind="timeout", seconds=1.5)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        fresh_api.session.get(fresh_api.base + HUBS, headers={"Authorization": f"Bearer {fresh_api.token}"},
                              timeout=0.5)
    assert time.monotonic() - started < 1.4
    assert fresh_api.get(HUBS).status_code == 200


def test_slow_response_still_answers(fresh_api: Api) -> None:
    fresh_api.server.sim.inject_fault("hubs", kind="slow", seconds=0.6)
    started = time.monotonic()
    assert fresh_api.get(HUBS).status_code == 200
    assert time.monotonic() - started >= 0.6


def test_truncated_body_announces_more_than_it_sends(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    tip = next(e.tip for e in sim.iter_files() if e.tip.name == "Structural Calcs.pdf")
    key = (tip.storage_urn or "").split("/", 1)[1]
    url = fresh_api.ok(f"/oss/v2/buckets/wip.dm.prod/objects/{enc(key)}/signeds3download")["url"]
    sim.inject_fault("download", kind="truncate", fraction=0.25)
    with requests.get(url, stream=True) as r:
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == tip.size
        got = bytearray()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for piece in r.iter_content(65536):
                got.extend(piece)
    assert len(got) == tip.size // 4 and bytes(got) == sim.file_bytes(tip.id)[:len(got)]
    assert requests.get(url).content == sim.file_bytes(tip.id)


def test_utf8_bom_prefix(fresh_api: Api) -> None:
    _fault(fresh_api, endpoint="folder_contents", kind="bom")
    sim = fresh_api.server.sim
    pid = sim.project_id("Drone Gimbal")
    fid = sim.folder_id(pid, ("Electronics",))
    r = fresh_api.get(f"/data/v1/projects/{enc(pid)}/folders/{enc(fid)}/contents")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    assert int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content.decode("utf-8"))
    assert json.loads(r.content.decode("utf-8-sig"))["data"]


def test_403_on_a_later_range_of_a_signed_url(fresh_api: Api) -> None:
    sim = fresh_api.server.sim
    tip = next(e.tip for e in sim.iter_files() if e.tip.name == "Structural Calcs.pdf")
    key = (tip.storage_urn or "").split("/", 1)[1]
    url = fresh_api.ok(f"/oss/v2/buckets/wip.dm.prod/objects/{enc(key)}/signeds3download")["url"]
    _fault(fresh_api, endpoint="download", kind="range403")
    assert requests.get(url, headers={"Range": "bytes=0-99"}).status_code == 206  # first range: fine
    later = requests.get(url, headers={"Range": "bytes=100-199"})
    assert later.status_code == 403 and "<Code>AccessDenied</Code>" in later.text
    assert requests.get(url, headers={"Range": "bytes=100-199"}).status_code == 206  # count was 1


def test_status_fault_for_oss_with_retry_after(fresh_api: Api) -> None:
    _fault(fresh_api, endpoint="*", status=503, count=2, retry_after=3)
    for _ in range(2):
        r = fresh_api.get(HUBS)
        assert r.status_code == 503 and r.headers["Retry-After"] == "3"
    assert fresh_api.get(HUBS).status_code == 200


def _probabilistic_run(seed: int) -> list[int]:
    with SimulatorServer(Simulator(seed="empty", rate_scale=0)) as server:
        api = Api(server)
        api.client_credentials()
        _fault(api, endpoint="hubs", status=500, rate=0.3, seed=seed)
        return [api.get(HUBS).status_code for _ in range(40)]


def test_probabilistic_faults_are_reproducible_from_the_seed() -> None:
    first, again, other = _probabilistic_run(7), _probabilistic_run(7), _probabilistic_run(8)
    assert first == again
    assert first != other
    assert 4 <= first.count(500) <= 24 and set(first) == {200, 500}


def test_rate_with_count_bounds_the_hits(fresh_api: Api) -> None:
    fresh_api.server.sim.seed_faults(1)
    fresh_api.server.sim.inject_fault("hubs", 502, count=3, rate=0.5)
    statuses = [fresh_api.get(HUBS).status_code for _ in range(30)]
    assert statuses.count(502) == 3
    assert requests.get(fresh_api.base + "/_sim/faults").json()["faults"] == {}


def test_pending_lists_the_rules_and_bad_kinds_are_refused(fresh_api: Api) -> None:
    listed = _fault(fresh_api, endpoint="item", kind="slow", seconds=0.1, count=2)
    rule = listed["faults"]["item"][0]
    assert (rule["kind"], rule["remaining"], rule["seconds"]) == ("slow", 2, 0.1)
    assert requests.post(fresh_api.base + "/_sim/faults", json={"endpoint": "hubs", "kind": "nope"}).status_code == 400
    assert requests.post(fresh_api.base + "/_sim/faults",
                         json={"endpoint": "hubs", "status": 500, "rate": 2}).status_code == 400
