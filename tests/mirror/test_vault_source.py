"""The Vault source through the engine: the Vault simulator over HTTP into moto's S3 server.

The demo Vault server holds the vault "Engineering" (checked-out, cloaked and empty files, a
folder link); the mirror lays it out as `{prefix}/vault/Engineering/{folder path}/{file}`.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from aps_mirror.mirror.engine import VERSIONS_DIR, MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.keys import VAULT_ROOT
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from aps_mirror.mirror.sources import Source
from aps_mirror.mirror.sources.vault import RANGE_CHUNK, VaultSource
from aps_mirror.simulator import SimulatorServer
from aps_mirror.mirror.sources.docs import DocsSource
from aps_mirror.mirror.sources.records import FileVersion
from aps_mirror.vault import GATEWAY_PAYLOAD_QUOTA, VaultClient
from tests.mirror.test_engine import PREFIX, mirrored, object_keys
from tests.mirror.test_key_space import assert_keys_distinct
from tests.mirror.test_sources import assert_deleted_by_policy
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
    engine = MirrorEngine(source, s3, MirrorConfig(bucket=bucket, prefix=PREFIX))
    [scan] = engine.scan_projects(engine.list_projects())
    assert scan.needs_walk == "listed every run (the source keeps no change dates)"


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
    templates = sim.folder_id(vault_id, ("Standards", "Templates"))
    sim.move_folder(vault_id, templates, sim.folder_id(vault_id, ("Designs",)))
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
    assert_deleted_by_policy(s3, bucket, doomed, key, policy)
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


@pytest.fixture
def s3_elsewhere() -> Iterator[Any]:
    """moto's server in a process of its own: in-process, tracemalloc would count the objects it
    holds (the 200 MB file, its parts) as the mirror's memory."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        deadline = time.monotonic() + 30
        while True:
            try:
                client.list_buckets()
                break
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_200_mb_file_goes_through_range_chunks_with_bounded_memory(simulator, source, s3_elsewhere):
    s3, bucket = s3_elsewhere, "mirror-big"
    s3.create_bucket(Bucket=bucket)
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    size = 200 * 1024 * 1024
    big = sim.add_file(vault_id, sim.folder_id(vault_id, ("Projects", "Archive")), "Site Scan.rcp", size=size)
    tip = sim.file(vault_id, big).tip.id
    run(source, s3, bucket, max_file_size=size - 1)  # the rest first, so the traced run holds the big file alone
    simulator.sim.reset_stats()
    tracemalloc.start()
    try:
        summary = run(source, s3, bucket)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not summary.errors
    # Measured: about 43 MiB (the transfer's 8 MiB parts in flight, the simulator serving them).
    assert peak < 64 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte file"
    entry = mirrored(s3, bucket)[big]
    assert entry["size"] == size
    digest = hashlib.sha256()
    for piece in s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].iter_chunks(1 << 20):
        digest.update(piece)
    assert digest.hexdigest() == sim.sha256(vault_id, tip)

    # Read whole, the source chains Range requests below the Gateway's quota (one over it is a 500).
    assert sim.gateway and size > GATEWAY_PAYLOAD_QUOTA
    simulator.sim.reset_stats()
    whole = hashlib.sha256()
    with source.open_download(source.download(FileVersion(tip, 1, "Site Scan.rcp", size, native=(
            vault_id, source.client.file_version(vault_id, tip)))).url) as stream:
        assert (stream.status_code, stream.headers["Content-Length"]) == (200, str(size))
        for piece in stream.iter_content(1 << 20):
            whole.update(piece)
    assert whole.hexdigest() == sim.sha256(vault_id, tip)
    assert content_requests(simulator) == -(-size // RANGE_CHUNK)


def test_injected_429s_are_honoured(simulator, source, s3, bucket):
    simulator.sim.inject_fault("vault_file_versions", 429, count=2, retry_after=0)
    simulator.sim.inject_fault("vault_content", 429, count=3, retry_after=0)
    summary = run(source, s3, bucket)
    assert not summary.errors
    assert_exact_vault_mirror(simulator, s3, bucket)
    statuses = [e["status"] for e in simulator.sim.stats()["log"] if e["endpoint"].startswith("vault_")]
    assert statuses.count(429) == 5


class Killed(BaseException):
    """The process dying mid-run: nothing in the engine catches it."""


def test_a_run_killed_mid_way_converges_without_reading_again_what_was_stored(simulator, vault, s3_endpoint, bucket):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    dying = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                         aws_access_key_id="test", aws_secret_access_key="test")
    uploads = itertools.count(1)

    def die_at_the_sixth_upload(params, **_: object) -> None:
        if not params["Key"].startswith(f"{PREFIX}/_aps_mirror/") and next(uploads) == 6:
            raise Killed()

    dying.meta.events.register("before-parameter-build.s3.PutObject", die_at_the_sixth_upload)
    with pytest.raises(Killed):
        run(VaultSource(vault), dying, bucket, workers=1, project_workers=1)
    stored = object_keys(s3, bucket)
    assert 0 < len(stored) < len(list(simulator.sim.vault.iter_files())), "killed mid-way"
    simulator.sim.reset_stats()
    summary = run(VaultSource(vault), s3, bucket)
    assert not summary.errors
    live = assert_exact_vault_mirror(simulator, s3, bucket)
    assert content_requests(simulator) == len(live) - len(stored), "what was stored is not read again"
    assert object_keys(s3, bucket) == {e["key"] for e in live.values()}
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "no unfinished upload left"


def test_docs_and_vault_share_one_mirror(simulator, aps, source, s3, bucket):
    """One run, both sources: each scope synced by its own source, under its own root."""
    sources = {"docs": DocsSource(aps), "vault": source}
    summary = run(sources, s3, bucket, top_folders=("*",))
    assert not summary.errors
    assert_keys_distinct(s3, bucket)
    vault_entries = assert_exact_vault_mirror(simulator, s3, bucket)
    docs_truth = {f.item_id: f for f in simulator.sim.iter_files()}
    docs_entries = {i: e for i, e in mirrored(s3, bucket).items() if i not in vault_entries}
    assert set(docs_entries) == set(docs_truth)
    for item_id, entry in docs_entries.items():
        assert entry["key"].split("/")[1] != VAULT_ROOT
        body = s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        assert body == simulator.sim.file_bytes(docs_truth[item_id].tip.id), entry["key"]
    assert summary.files_copied == len(vault_entries) + len(docs_entries)
    simulator.sim.reset_stats()
    again = run(sources, s3, bucket, top_folders=("*",))
    assert (again.files_copied, again.files_renamed, again.errors) == (0, 0, [])
    assert content_requests(simulator) == 0


def test_top_folder_globs_select_top_folders_of_the_vault(simulator, source, s3, bucket):
    summary = run(source, s3, bucket, top_folders=("Standards",))
    assert not summary.errors
    keys = {e["key"] for e in mirrored(s3, bucket).values()}
    expected = {"/".join([PREFIX, VAULT_ROOT, "Engineering", *e.path, e.tip.file.name])
                for e in simulator.sim.vault.iter_files() if e.path[:1] == ("Standards",)}
    assert keys == expected and len(expected) == 4


def test_versions_all_keeps_every_earlier_vault_version(simulator, source, s3, bucket):
    sim = simulator.sim.vault
    vault_id = sim.vault_id("Engineering")
    gear = sim.file_id(vault_id, GEARBOX, "Gear 32T.ipt")
    summary = run(source, s3, bucket, versions="all")
    assert not summary.errors
    entry = assert_exact_vault_mirror(simulator, s3, bucket)[gear]
    kept = {h["version_number"]: h["kept_key"] for h in entry["history"]}
    assert sorted(kept) == [1, 2, 3]
    for version in sim.file(vault_id, gear).versions[:-1]:
        key = kept[version.number]
        assert f"/{VERSIONS_DIR}/Designs/Gearbox/Gear 32T.v{version.number}.ipt" in key
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == sim.file_bytes(vault_id, version.id)
