"""429s are honoured: injected bursts with Retry-After, and the gateway's own 429 (40,000 requests
per 5 minutes, no Retry-After) waited out with backoff until its window moves; the Vault calls
draw from the APS transport's rate budget, in its ``vault`` bucket."""

from __future__ import annotations

import threading
import time

from aps_mirror.aps.endpoints import budget_of, classify
from aps_mirror.aps.ratelimit import nominal_rate
from aps_mirror.simulator import SimulatorServer
from aps_mirror.simulator.vault.gateway import GATEWAY_REQUESTS
from aps_mirror.vault import VaultClient
from .conftest import vault_client


def test_an_injected_429_burst_is_retried(client: VaultClient, simulator: SimulatorServer) -> None:
    simulator.sim.inject_fault("vault_file_versions", 429, count=2, retry_after=0)
    assert len(list(client.file_versions("106"))) == 21
    assert client.transport.counter.throttled_snapshot() == {"vault_file_versions": 2}
    assert client.transport.counter.snapshot()["vault_file_versions"] == 3


def test_the_gateways_429_is_waited_out(frozen_simulator: SimulatorServer) -> None:
    sim = frozen_simulator.sim
    client = vault_client(frozen_simulator, page_limit=5)
    client.vaults()
    sim.rate_scale = 3 / GATEWAY_REQUESTS  # 3 requests per 5 minutes
    rows: list[object] = []
    walker = threading.Thread(target=lambda: rows.extend(client.file_versions("106")))
    walker.start()
    deadline = time.monotonic() + 30
    while not any(e["status"] == 429 for e in sim.stats()["log"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    # The window is full and stays full on the frozen clock: the client backs off (its retries
    # last seconds) and every retry is a 429 until the window moves, which happens only here.
    sim.advance_clock(300)
    walker.join(20)
    assert not walker.is_alive() and len(rows) == 21
    statuses = [e["status"] for e in sim.stats()["log"] if e["endpoint"] == "vault_file_versions"]
    assert statuses.count(200) == 5 and 429 in statuses  # 21 rows in pages of 5
    assert client.transport.counter.throttled_snapshot()["vault_file_versions"] == statuses.count(429)


def test_vault_calls_share_the_connections_rate_budget(client: VaultClient) -> None:
    budget = budget_of(classify("/AutodeskDM/Services/api/vault/v2/vaults/106/file-versions"))
    assert budget == "vault" and nominal_rate(budget, 1.0) == GATEWAY_REQUESTS / 300
    every_class = {classify(f"/AutodeskDM/Services/api/vault/v2{p}") for p in (
        "/vaults", "/vaults/1/folders/root", "/vaults/1/folders/1/sub-folders", "/vaults/1/file-versions/2/content",
        "/sessions", "/vaults/1:advanced-search", "/vaults/1/files/2/versions")}
    assert {budget_of(c) for c in every_class} == {"vault"} and len(every_class) == 7
