"""Synthetic accounts: ``generate:...`` builds nested folders fast; bodies are generated on demand."""

from __future__ import annotations

import time

import pytest

from aps_mirror.simulator import Simulator, SimulatorServer
from aps_mirror.simulator.generate import parse
from .sim_helpers import Api, truth


def test_small_generated_account_shape_and_walk() -> None:
    started = time.monotonic()
    sim = Simulator(seed="generate:projects=4,folders=30,files=2,versions=2", rate_scale=0)
    assert time.monotonic() - started < 2
    projects = [p for h in sim.account.hubs for p in h.projects]
    assert len(projects) == 4
    files = list(sim.iter_files())
    assert len(files) == 4 * 30 * 2 and all(e.tip.number == 2 for e in files)
    assert max(len(e.path) for e in files) >= 4  # nested several levels deep
    assert {e.path[0] for e in files} == {"Project Files"}
    some = files[17].tip
    assert len(sim.file_bytes(some.id)) == some.size
    with SimulatorServer(sim) as server:
        api = Api(server)
        api.client_credentials()
        assert api.walk() == truth(sim)


def test_generation_is_deterministic_and_scales_linearly() -> None:
    spec = "generate:projects=50,folders=100,files=2"
    started = time.monotonic()
    one = Simulator(seed=spec)
    elapsed = time.monotonic() - started
    assert elapsed < 5  # 10,000 items; the benchmark measures the 1,000 x 100 account
    two = Simulator(seed=spec)
    a = [(e.item_id, e.tip.size, e.tip.storage_urn) for e in one.iter_files()]
    assert a == [(e.item_id, e.tip.size, e.tip.storage_urn) for e in two.iter_files()] and len(a) == 10_000
    assert len(one.account._folders) == 50 * 101  # 100 folders + the hidden root per project


def test_bad_generate_settings() -> None:
    with pytest.raises(ValueError):
        parse("projects=1,bogus=2")
    with pytest.raises(ValueError):
        parse("projects")
    with pytest.raises(ValueError):
        Simulator(seed="generate:fanout=0")
    assert parse("")["projects"] == 10
