"""One mirror prefix, many hazards: other accounts, look-alike hubs, renamed projects,
concurrent runs, and a crash followed by a rename. Simulator over HTTP, moto's S3 server."""

from __future__ import annotations

import threading

import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.lease import MirrorLocked
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.conftest import FAST_RETRY, connection_for
from tests.mirror.test_crash import killed_run, sync_all
from tests.mirror.test_engine import ALL_TOP_FOLDERS, PREFIX, assert_exact_mirror, mirrored, object_keys, run
from tests.mirror.test_key_space import assert_keys_distinct


def engine(aps, s3, bucket, **config) -> MirrorEngine:
    config.setdefault("top_folders", ALL_TOP_FOLDERS)
    return MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config))


def snapshot(s3, bucket) -> dict[str, bytes]:
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in object_keys(s3, bucket)}


@pytest.fixture
def other_account():
    """A second Autodesk account whose hub and project have the demo's names (other ids)."""
    sim = Simulator(seed="empty", rate_scale=0)
    hub = sim.add_hub("Northwind Construction")
    project = sim.add_project("Riverside Tower", hub_id=hub)
    sim.add_file(project, sim.folder_id(project, ("Project Files",)), "Site plan.pdf", size=2000)
    with SimulatorServer(sim) as server:
        yield server


def test_another_account_is_refused_unless_told(simulator, aps, s3, bucket, other_account):
    run(aps, s3, bucket)
    before = snapshot(s3, bucket)
    other = ApsClient(ApsTransport(connection_for(other_account), retry_policy=FAST_RETRY))
    with pytest.raises(ConfigError, match="holds the mirror of hubs Fusion Design Team, Northwind Construction; .*allow-other-account"):
        engine(other, s3, bucket).list_projects()
    assert snapshot(s3, bucket) == before

    summary = run(other, s3, bucket, allow_other_account=True)
    assert summary.files_copied == 1 and not summary.errors
    after = snapshot(s3, bucket)
    assert {k: after[k] for k in before} == before, "the first account's mirror is untouched"
    assert_keys_distinct(s3, bucket)
    new_keys = set(after) - set(before)
    assert len(new_keys) == 1 and not new_keys.pop().startswith(f"{PREFIX}/Northwind Construction/")


def test_a_second_hub_with_the_same_name_gets_its_own_root(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    keys_before = assert_keys_distinct(s3, bucket)
    sim = simulator.sim
    twin = sim.add_hub("Northwind Construction")
    project = sim.add_project("Riverside Tower", hub_id=twin)
    sim.add_file(project, sim.folder_id(project, ("Project Files",)), "Site plan.pdf", size=2000)
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 1 and summary.files_renamed == 0
    keys = assert_keys_distinct(s3, bucket)
    assert {i: keys[i] for i in keys_before} == keys_before, "the first hub keeps every key"
    assert_exact_mirror(simulator, s3, bucket)


def test_a_renamed_project_moves_inside_s3_and_its_old_root_is_emptied(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    sim = simulator.sim
    project_id = sim.project_id("Riverside Tower")
    old_root = f"{PREFIX}/Northwind Construction/Riverside Tower/"
    with sim.lock:
        sim.account.project(project_id).name = "Riverside Tower (archived)"
    downloads = sim.stats()["downloads"]
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 0 and summary.files_renamed > 0
    assert sim.stats()["downloads"] == downloads, "moved inside S3, nothing downloaded"
    assert not [k for k in object_keys(s3, bucket) if k.startswith(old_root)]
    assert_exact_mirror(simulator, s3, bucket)
    # A newcomer named like the old project never gets the old root (its objects were moving).
    newcomer = sim.add_project("Riverside Tower", hub_id=sim.account.hubs[0].id)
    sim.add_file(newcomer, sim.folder_id(newcomer, ("Project Files",)), "new.txt", size=10)
    run(aps, s3, bucket)
    assert not [k for k in object_keys(s3, bucket) if k.startswith(old_root)]
    assert_keys_distinct(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_a_second_run_on_the_prefix_waits_or_refuses_and_never_breaks_the_first(simulator, aps, s3, bucket):
    first = engine(aps, s3, bucket)
    with first.locked():
        with pytest.raises(MirrorLocked, match="is being mirrored by run .* --break-lock"):
            with engine(aps, s3, bucket).locked(wait_seconds=0.3):
                pass
        with pytest.raises(MirrorLocked):  # the engine takes the lease itself: no caller can skip it
            engine(aps, s3, bucket, lock_wait_seconds=0.3).list_projects()


def test_concurrent_runs_on_one_prefix_never_abort_each_others_uploads(simulator, aps, s3, bucket):
    """Two whole runs at once (say a CLI run during the nightly DAG), neither taking a lock
    itself: each of their steps waits for the other's, and the mirror comes out exact."""
    results: dict[str, RunSummary] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def mirror(name: str) -> None:
        try:
            start.wait()
            results[name] = run(aps, s3, bucket)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=mirror, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(not r.errors and r.files_failed == 0 for r in results.values())
    files = len(list(simulator.sim.iter_files()))
    assert sum(r.files_copied for r in results.values()) == files, "every file copied once, by one of them"
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert_exact_mirror(simulator, s3, bucket)


def test_a_crash_then_a_rename_leaves_no_orphan(simulator, s3, s3_endpoint, bucket):
    sim = simulator.sim
    killed_run(simulator, s3_endpoint, bucket, at_s3_call=20)  # some objects copied, no manifest commit
    written = object_keys(s3, bucket)
    assert written, "the kill came after some uploads"
    victim = next(f for f in sim.iter_files() if any(k.endswith("/" + f.tip.name) for k in written))
    sim.rename_item(victim.item_id, "renamed after the crash.pdf")
    sync_all(simulator, s3_endpoint, bucket)
    assert_exact_mirror(simulator, s3, bucket)
    referenced = {e["key"] for e in mirrored(s3, bucket).values()}
    assert object_keys(s3, bucket) == referenced, "orphan objects left behind"


def test_a_damaged_record_cannot_widen_where_a_project_deletes(simulator, aps, s3, bucket):
    """mirror.json naming another project's segment (or a climbing one) as a project's former
    segment, with that project's journal naming the other's objects: nothing of them goes."""
    import json

    run(aps, s3, bucket)
    record_key = f"{PREFIX}/_aps_mirror/mirror.json"
    record = json.loads(s3.get_object(Bucket=bucket, Key=record_key)["Body"].read())
    tower = simulator.sim.project_id("Riverside Tower")
    record["projects"][tower]["former"] = ["Harbor Bridge Retrofit", "..", "_aps_mirror"]
    s3.put_object(Bucket=bucket, Key=record_key, Body=json.dumps(record).encode())
    victims = sorted(k for k in object_keys(s3, bucket) if "/Harbor Bridge Retrofit/" in k)[:3]
    manifests = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")["Contents"]
    for obj in manifests:
        body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        if body["project_id"] == tower:
            body["pending_deletes"] = victims
            s3.put_object(Bucket=bucket, Key=obj["Key"], Body=json.dumps(body).encode())
    run(aps, s3, bucket, full_walk=True)
    for key in victims:
        s3.head_object(Bucket=bucket, Key=key)  # still there
    assert_exact_mirror(simulator, s3, bucket)
