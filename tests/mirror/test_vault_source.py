"""The Vault source through the engine: the Vault simulator over HTTP into moto's S3 server.

The demo Vault server holds the vault "Engineering" (checked-out, cloaked and empty files, a
folder link); the mirror lays it out as `{prefix}/vault/Engineering/{folder path}/{file}`.
"""

from __future__ import annotations

import pytest

from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.keys import VAULT_ROOT
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
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


def test_a_new_version_is_read_once_and_renames_and_moves_are_copies_inside_s3(simulator, source, s3, bucket):
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    run(source, s3, bucket)
    before = mirrored(s3, bucket)
    shaft, gear, bracket = (sim.file_id(vault_id, GEARBOX, "Shaft.ipt"), sim.file_id(vault_id, GEARBOX, "Gear 32T.ipt"),
                            sim.file_id(vault_id, ("Projects", "2024-117 Customer #42 & Partners"),
                                        "O'Brien's Bracket.ipt"))
    conveyor = sim.folder_id(vault_id, ("Designs", "Conveyor"))
    sim.check_in(vault_id, shaft, size=330_000)
    sim.rename_file(vault_id, gear, "Gear 36T.ipt")
    sim.move_file(vault_id, bracket, sim.folder_id(vault_id, ("Projects", "Archive")))
    sim.rename_folder(vault_id, conveyor, "Conveyor Line")
    sim.move_folder(vault_id, sim.folder_id(vault_id, ("Standards", "Templates")), sim.folder_id(vault_id, ("Designs",)))
    simulator.sim.reset_stats()
    summary = run(source, s3, bucket)
    assert not summary.errors
    assert summary.files_copied == 1 and summary.files_renamed == 2 + 4 + 2  # 2 files, 4 + 2 in moved folders
    assert content_requests(simulator) == 1, "only the new version is read"
    after = assert_exact_vault_mirror(simulator, s3, bucket)
    assert after[gear]["key"].endswith("/Designs/Gearbox/Gear 36T.ipt")
    assert after[bracket]["key"].endswith("/Projects/Archive/O'Brien's Bracket.ipt")
    assert after[shaft]["version_number"] == 2 and after[shaft]["key"] == before[shaft]["key"]
    moved = {i for i, e in after.items() if e["key"] != before[i]["key"]}
    assert not {before[i]["key"] for i in moved} & object_keys(s3, bucket), "old places removed"


@pytest.mark.parametrize("policy", list(DeletePolicy))
def test_delete_policies_apply_to_vault_files(simulator, source, s3, bucket, policy):
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    run(source, s3, bucket)
    doomed = sim.file_id(vault_id, GEARBOX, "Shaft.ipt")
    key = mirrored(s3, bucket)[doomed]["key"]
    sim.delete_file(vault_id, doomed)
    summary = run(source, s3, bucket, delete_policy=policy, max_delete=DeleteLimit(count=5))
    assert summary.files_deleted == 1 and not summary.deletes_refused
    trash = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/trash/")
             .get("Contents", [])}
    if policy is DeletePolicy.KEEP:
        assert mirrored(s3, bucket)[doomed]["deleted_at"] and key in object_keys(s3, bucket)
    else:
        assert doomed not in mirrored(s3, bucket) and key not in object_keys(s3, bucket)
        assert [t.endswith(f"/{key}") for t in trash] == ([True] if policy is DeletePolicy.TRASH else [])
    assert_exact_vault_mirror(simulator, s3, bucket)


def test_a_guard_refuses_deleting_a_vault_folder(simulator, source, s3, bucket):
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    run(source, s3, bucket)
    held = object_keys(s3, bucket)
    sim.delete_folder(vault_id, sim.folder_id(vault_id, ("Designs",)))
    summary = run(source, s3, bucket, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(percent=20.0))
    assert summary.files_deleted == 0 and "exceed max_delete=20%" in summary.deletes_refused
    assert object_keys(s3, bucket) == held, "nothing removed"


@pytest.mark.parametrize("what", ["file", "folder"])
def test_what_becomes_cloaked_stays_mirrored(simulator, source, s3, bucket, what):
    """Cloaking is the Vault user's permissions, not a deletion: the mirror keeps what it holds."""
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    run(source, s3, bucket)
    before = mirrored(s3, bucket)
    gearbox = {i for i, e in before.items() if "/Designs/Gearbox/" in e["key"]}
    shaft = sim.file_id(vault_id, GEARBOX, "Shaft.ipt")
    with sim.lock:
        if what == "file":
            sim.file(vault_id, shaft).cloaked = True
        else:
            sim.store.folder(sim.store.vault(vault_id), sim.folder_id(vault_id, GEARBOX)).cloaked = True
    summary = run(source, s3, bucket, delete_policy=DeletePolicy.DELETE)
    assert summary.files_deleted == 0 and not summary.errors
    after = mirrored(s3, bucket)
    for item_id in ({shaft} if what == "file" else gearbox):
        assert not after[item_id]["deleted_at"] and before[item_id]["key"] in object_keys(s3, bucket)
