"""Fixtures for the APS simulator tests: live simulator servers over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from .sim_helpers import Api


@pytest.fixture(scope="session")
def demo_server() -> Iterator[SimulatorServer]:
    """A read-only demo server without rate limits; tests must not change its data."""
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as server:
        yield server


@pytest.fixture
def demo_api(demo_server: SimulatorServer) -> Api:
    api = Api(demo_server)
    api.client_credentials()
    return api


@pytest.fixture
def fresh_server() -> Iterator[SimulatorServer]:
    """A private demo server on a frozen clock, for tests that change data, faults or time."""
    with SimulatorServer(Simulator(seed="demo", rate_scale=0, clock=Clock(start=1_800_000_000.0))) as server:
        yield server


@pytest.fixture
def fresh_api(fresh_server: SimulatorServer) -> Api:
    api = Api(fresh_server)
    api.client_credentials()
    return api
