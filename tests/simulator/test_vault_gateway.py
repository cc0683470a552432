"""The Vault Gateway's rate limit (40,000 requests per 5 minutes, scaled by rate_scale; excess -> 429)
and the simulator's fault injection on Vault endpoint classes (429 bursts, 5xx, truncated bodies)."""

from __future__ import annotations

import pytest
import requests

from aps_mirror.simulator import SimulatorServer
from aps_mirror.simulator.vault.gateway import GATEWAY_REQUESTS
from .vault_helpers import VaultApi


def test_the_gateway_answers_429_over_its_rate_until_the_window_moves(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    sim.rate_scale = 5 / GATEWAY_REQUESTS  # 5 requests per 5 minutes
    api = VaultApi(fresh_server).aps_user()
    assert api.get("/vaults", auth=False).status_code == 200  # unauthenticated calls count too
    for _ in range(4):
        assert api.get(api.vault_path("/folders/root")).status_code == 200
    throttled = api.get(api.vault_path("/folders/root"))
    assert api.error(throttled, 429)["title"] == "Vault Gateway"
    assert "Retry-After" not in throttled.headers  # none is documented
    sim.advance_clock(299)
    api.error(api.get(api.vault_path("/folders/root")), 429)
    sim.advance_clock(1)
    assert api.get(api.vault_path("/folders/root")).status_code == 200


def test_the_server_itself_has_no_rate_limit(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    sim.rate_scale = 2 / GATEWAY_REQUESTS
    sim.vault.configure(gateway=False)
    api = VaultApi(fresh_server).aps_user()
    assert {api.get(api.vault_path("/folders/root")).status_code for _ in range(6)} == {200}
    sim.vault.configure(gateway=True)
    statuses = [api.get(api.vault_path("/folders/root")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_request_body_over_the_payload_quota_is_a_500(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    sim.vault.configure(payload_limit=1000)
    api = VaultApi(fresh_server).aps_user()
    big = {"searchCriterias": [], "sortCriterias": [], "padding": "x" * 2000}
    api.error(api.post(api.vault_path(":advanced-search"), json=big), 500)
    api.error(api.get(api.vault_path("/file-versions")), 500)  # a response over it too
    assert api.post(api.vault_path(":advanced-search"), json={"searchCriterias": []}, limit=1).status_code == 200


def test_injected_429_burst_then_success(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server).aps_user()
    fresh_server.sim.inject_fault("vault_file_versions", 429, count=2, retry_after=3)
    answers = [api.get(api.vault_path("/file-versions")) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"
    counted = fresh_server.sim.stats()["requests"]
    assert counted["vault_file_versions"] == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_injected_server_errors_on_content(fresh_server: SimulatorServer, status: int) -> None:
    api = VaultApi(fresh_server).aps_user()
    version = fresh_server.sim.vault.file(api.vault_id, fresh_server.sim.vault.file_id(
        api.vault_id, (), "Readme.txt")).tip.id
    fresh_server.sim.inject_fault("vault_content", status)
    assert api.get(api.vault_path(f"/file-versions/{version}/content")).status_code == status
    assert api.get(api.vault_path(f"/file-versions/{version}/content")).status_code == 200


def test_injected_truncated_content(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server).aps_user()
    vault = fresh_server.sim.vault
    file_id = vault.file_id(api.vault_id, ("Designs", "Conveyor"), "Conveyor Frame.iam")
    version = vault.file(api.vault_id, file_id).tip.id
    fresh_server.sim.inject_fault("vault_content", kind="truncate", fraction=0.25)
    with api.session.get(api.url(api.vault_path(f"/file-versions/{version}/content")), headers=api.headers(),
                         stream=True) as r:
        assert r.status_code == 200 and r.headers["Content-Length"] == "3100000"
        got = bytearray()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for piece in r.iter_content(65536):
                got.extend(piece)
    assert len(got) <= 3_100_000 // 4  # the connection closed a quarter in
