"""Crash consistency of the Vault source: SIGKILL a forked run at a Vault request or an S3 call;
a normal rerun converges.

As tests/mirror/test_crash.py does for the Docs source (its `killed_run`), the child runs
`MirrorEngine(VaultSource(...))` over the simulator's vault "Engineering" into moto's S3 server
and dies by SIGKILL: killed by the test once the simulator has served its k-th request, or by
itself right before its k-th S3 call. The rerun must leave an exact mirror (each file at its tip,
byte for byte), no orphan object, no stale multipart upload, no pending delete; and it must not
read again a version whose object the killed run had stored. The manifest is saved every 5 files
here, so checkpoint saves are kill points too.
"""

from __future__ import annotations

import functools
from urllib.parse import unquote

import pytest

from aps_mirror.mirror import engine as engine_module
from aps_mirror.mirror.engine import RunSummary
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from aps_mirror.mirror.sources.vault import VaultSource
from aps_mirror.mirror.transfer import PART_SIZE
from aps_mirror.simulator import SimulatorServer
from aps_mirror.vault import VaultClient
from tests.mirror.test_crash import assert_nothing_left_over, killed_run, s3_client
from tests.mirror.test_engine import mirrored, object_keys
from tests.mirror.test_vault_source import GEARBOX, assert_exact_vault_mirror, content_requests, run
from tests.vault.conftest import vault_client

DELETES = dict(delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=100))
MULTIPART = PART_SIZE + 1024 * 1024  # two parts
CUSTOMER = ("Projects", "2024-117 Customer #42 & Partners")


def sync_vault(simulator: SimulatorServer, s3_endpoint: str, bucket: str, kill_at_s3_call: int | None = None,
               *, client: VaultClient | None = None) -> RunSummary:
    """A whole run of the Vault source, in the shape `killed_run` calls."""
    client = client or vault_client(simulator)
    summary = run(VaultSource(client), s3_client(s3_endpoint, kill_at_s3_call), bucket, **DELETES)
    assert not summary.errors, summary.errors  # a child that fails tells why
    return summary


def killed_vault_run(simulator: SimulatorServer, s3_endpoint: str, bucket: str, **kill_point: int | None) -> None:
    """`killed_run` of the Vault source. Its client connects here, before the fork: made in the
    child, it would take the demo user's refresh token from the child's copy of the simulator
    (`user_tokens` issues it in memory), which the serving simulator, in this process, never issued."""
    sync = functools.partial(sync_vault, client=vault_client(simulator))
    killed_run(simulator, s3_endpoint, bucket, sync=sync, **kill_point)


@pytest.fixture(autouse=True)
def checkpoint_every_five_files(monkeypatch):
    monkeypatch.setattr(engine_module, "CHECKPOINT_FILES", 5)  # the forked run inherits it
    monkeypatch.setattr(engine_module, "SAVE_SHARE", 0)  # however long a save took


@pytest.fixture
def vault_id(simulator: SimulatorServer) -> str:
    return simulator.sim.vault.vault_id("Engineering")


@pytest.fixture
def a_multipart_file(simulator: SimulatorServer, vault_id: str) -> None:
    """One file of the first copy goes up in parts."""
    sim = simulator.sim.vault
    sim.add_file(vault_id, sim.folder_id(vault_id, ("Projects", "Archive")), "Site Scan.rcp", size=MULTIPART)


def change_one_of_each_kind(simulator: SimulatorServer, vault_id: str) -> set[str]:
    """A new (multipart) version, a file and a folder renamed, a file moved, one deleted and one
    added; returns the versions with new bytes: the only ones a run may read."""
    sim = simulator.sim.vault
    shaft = sim.file_id(vault_id, GEARBOX, "Shaft.ipt")
    new_version = sim.check_in(vault_id, shaft, size=MULTIPART)
    sim.rename_file(vault_id, sim.file_id(vault_id, GEARBOX, "Gear 32T.ipt"), "Gear 36T.ipt")
    sim.move_file(vault_id, sim.file_id(vault_id, CUSTOMER, "O'Brien's Bracket.ipt"),
                  sim.folder_id(vault_id, ("Projects", "Archive")))
    conveyor = sim.folder_id(vault_id, ("Designs", "Conveyor"))
    sim.rename_folder(vault_id, conveyor, "Conveyor Line")
    sim.delete_file(vault_id, sim.file_id(vault_id, ("Standards",), "Materials Library.xlsx"))
    added = sim.add_file(vault_id, conveyor, "Idler.ipt", size=5000)
    return {new_version, sim.file(vault_id, added).tip.id}


def stored_versions(s3, bucket: str, *, unrecorded_only: bool = False) -> set[str]:
    """The versions held by objects in S3 (their metadata says); with `unrecorded_only`, those
    no manifest records: at a key none references, or a newer version over a recorded key."""
    recorded = {(e["key"], e["version_id"]) for e in mirrored(s3, bucket).values()} if unrecorded_only else set()
    held = {key: unquote(s3.head_object(Bucket=bucket, Key=key)["Metadata"]["aps-version-id"])
            for key in object_keys(s3, bucket)}
    return {version for key, version in held.items() if (key, version) not in recorded}


def versions_read(simulator: SimulatorServer) -> set[str]:
    """The versions whose content the simulator served since its stats were reset."""
    return {unquote(e["path"].split("/file-versions/")[1].split("/")[0])
            for e in simulator.sim.stats()["log"] if e["endpoint"] == "vault_content"}


def rerun(simulator: SimulatorServer, s3, s3_endpoint: str, bucket: str) -> set[str]:
    """A normal run after the kill, which must converge; returns the versions it read."""
    simulator.sim.reset_stats()
    sync_vault(simulator, s3_endpoint, bucket)
    assert_exact_vault_mirror(simulator, s3, bucket)
    assert_nothing_left_over(s3, bucket)
    return versions_read(simulator)


def assert_first_copy_resumed(simulator: SimulatorServer, s3, s3_endpoint: str, bucket: str) -> None:
    stored = stored_versions(s3, bucket)
    read = rerun(simulator, s3, s3_endpoint, bucket)
    tips = {e.tip.id for e in simulator.sim.vault.iter_files()}
    assert not read & stored, "a version the killed run stored is read again"
    assert read <= tips
    assert content_requests(simulator) <= len(tips - stored), "each missing version is read once"


# Of the first copy's 28 requests (the client connected before the fork): the file-versions
# listing, content early and late.
FIRST_COPY_REQUESTS = [7, 10, 22]
# Of its 47 S3 calls (worker threads shuffle them a little): the manifest save marking the run
# interrupted, a checkpoint among uploads, the multipart upload's span, the commit.
FIRST_COPY_S3_CALLS = [16, 24, 30, 45]
# Of an incremental run's 9: the last content.
INCREMENTAL_REQUESTS = [9]
# Of its 44 S3 calls (worker threads shuffle them a little): among the server-side copies, the
# multipart upload's span, the manifest save after the transfers, the deletes of old places.
INCREMENTAL_S3_CALLS = [21, 29, 34, 38]


@pytest.mark.parametrize("at_request", FIRST_COPY_REQUESTS)
def test_a_first_copy_killed_at_a_vault_request_resumes(simulator, a_multipart_file, s3, s3_endpoint, bucket,
                                                        at_request):
    killed_vault_run(simulator, s3_endpoint, bucket, at_request=at_request)
    assert_first_copy_resumed(simulator, s3, s3_endpoint, bucket)


@pytest.mark.parametrize("at_s3_call", FIRST_COPY_S3_CALLS)
def test_a_first_copy_killed_at_an_s3_call_resumes(simulator, a_multipart_file, s3, s3_endpoint, bucket, at_s3_call):
    killed_vault_run(simulator, s3_endpoint, bucket, at_s3_call=at_s3_call)
    assert_first_copy_resumed(simulator, s3, s3_endpoint, bucket)


@pytest.mark.parametrize(("at_request", "at_s3_call"), [(r, None) for r in INCREMENTAL_REQUESTS]
                         + [(None, c) for c in INCREMENTAL_S3_CALLS])
def test_an_incremental_run_killed_midway_converges(simulator, vault_id, s3, s3_endpoint, bucket,
                                                     at_request, at_s3_call):
    sync_vault(simulator, s3_endpoint, bucket)
    new_bytes = change_one_of_each_kind(simulator, vault_id)
    killed_vault_run(simulator, s3_endpoint, bucket, at_request=at_request, at_s3_call=at_s3_call)
    unrecorded = stored_versions(s3, bucket, unrecorded_only=True)
    read = rerun(simulator, s3, s3_endpoint, bucket)
    assert read <= new_bytes, "renames, moves and deletes read no content, even after a crash"
    # Including a new version the killed run stored over its file's recorded key.
    assert not read & unrecorded, "a version the killed run stored is read again"
