"""The Vault source through the engine: the Vault simulator over HTTP into moto's S3 server.

The demo Vault server holds the vault "Engineering" (checked-out, cloaked and empty files, a
folder link); the mirror lays it out as `{prefix}/vault/Engineering/{folder path}/{file}`.
"""

from __future__ import annotations

import pytest

from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.keys import VAULT_ROOT
from aps_mirror.mirror.sources import Source
from aps_mirror.mirror.sources.vault import VaultSource
from aps_mirror.simulator import SimulatorServer
from aps_mirror.vault import VaultClient
from tests.mirror.test_engine import PREFIX, mirrored, object_keys
from tests.vault.conftest import vault_client

GEARBOX = ("Designs", "Gearbox")


@pytest.fixture
def vault(simulator: SimulatorServer) -> VaultClient:
    return vault_client(simulator)


@pytest.fixture
def source(vault: VaultClient) -> VaultSource:
    return VaultSource(vault)


def run(sources, s3, bucket, **config) -> RunSummary:
    engine = MirrorEngine(sources, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config))
    return RunSummary.combine(engine.mirror_projects(engine.list_projects()))


def content_requests(simulator: SimulatorServer) -> int:
    return sum(1 for e in simulator.sim.stats()["log"] if e["endpoint"] == "vault_content")


def assert_exact_vault_mirror(simulator: SimulatorServer, s3, bucket) -> dict[str, dict]:
    """Every file the Vault user may see is mirrored at its tip under the vault's root, byte for
    byte; returns the live entries by file id."""
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    truth = {e.file_id: e for e in sim.iter_files()}
    live = {i: e for i, e in mirrored(s3, bucket).items() if e.get("source_ids") and not e["deleted_at"]}
    assert set(live) == set(truth)
    for file_id, entry in live.items():
        tip = truth[file_id].tip
        assert entry["version_id"] == tip.id
        assert entry["key"] == "/".join([PREFIX, VAULT_ROOT, "Engineering", *truth[file_id].path, tip.file.name])
        obj = s3.get_object(Bucket=bucket, Key=entry["key"])
        assert obj["Body"].read() == sim.file_bytes(vault_id, tip.id), entry["key"]
    return live


def test_the_vault_source_keeps_the_protocol(source):
    assert isinstance(source, Source) and source.name == "vault"


def test_a_vault_is_copied_exactly_then_a_quiet_run_downloads_nothing(simulator, source, s3, bucket):
    first = run(source, s3, bucket)
    assert not first.errors
    live = assert_exact_vault_mirror(simulator, s3, bucket)
    assert first.files_copied == len(live)
    assert not [e for e in live.values() if "Salary Plan" in e["key"]], "cloaked files are not read"
    simulator.sim.reset_stats()
    again = run(source, s3, bucket)
    assert (again.files_copied, again.files_renamed, again.files_deleted, again.errors) == (0, 0, 0, [])
    assert again.files_skipped == len(live)
    assert content_requests(simulator) == 0, "nothing downloaded on a quiet night"
