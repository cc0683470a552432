"""Fixtures for the Vault client: the simulator over HTTP, an APS 3-legged connection beside it,
and a client built from the connection's Vault settings, as a mirror run builds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import AuthMode, VaultSettings
from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from aps_mirror.vault import VaultClient
from tests.conftest import FAST_RETRY, connection_for

MakeClient = Callable[..., VaultClient]


def vault_client(server: SimulatorServer, *, user: str | None = None, password: str | None = None,
                 auth_mode: AuthMode = AuthMode.AUTHORIZATION_CODE, page_limit: int = 1000) -> VaultClient:
    """A client over the simulator: a Vault account when ``user`` is given, else the connection's
    APS token (3-legged: the demo user, mapped to the Vault user sam.builder)."""
    refresh = server.sim.user_tokens()["refresh_token"] if auth_mode is AuthMode.AUTHORIZATION_CODE else None
    aps = ApsTransport(connection_for(server, auth_mode=auth_mode, refresh_token=refresh), retry_policy=FAST_RETRY)
    settings = VaultSettings(conn_id="autodesk_test", url=server.base_url, user=user, password=password)
    return VaultClient.connect(settings, aps, page_limit=page_limit)


@pytest.fixture
def make_client(simulator: SimulatorServer) -> MakeClient:
    """Clients of the per-test demo simulator (real clock, rate limits off)."""
    return lambda **kwargs: vault_client(simulator, **kwargs)


@pytest.fixture
def client(make_client: MakeClient) -> VaultClient:
    return make_client()


@pytest.fixture
def frozen_simulator() -> Iterator[SimulatorServer]:
    """A demo simulator on a frozen clock, for tests that move time (the gateway's window)."""
    with SimulatorServer(Simulator(seed="demo", rate_scale=0, clock=Clock(start=1_800_000_000.0))) as server:
        yield server
