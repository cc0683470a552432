"""A sync through every kind of fault the simulator injects still ends in an exact mirror."""

from __future__ import annotations

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.retry import RetryPolicy
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from tests.conftest import connection_for
from tests.mirror.test_engine import ALL_TOP_FOLDERS, PREFIX, assert_exact_mirror, mirrored, object_keys


def test_faults_everywhere_still_end_exact(simulator, s3, bucket):
    sim = simulator.sim
    sim.seed_faults(7)
    sim.inject_fault("folder_contents", 503, count=None, rate=0.2)  # flaky listings
    sim.inject_fault("folder_contents", kind="bom", count=None, rate=0.3)  # BOM-prefixed JSON
    sim.inject_fault("folder_contents", kind="timeout", count=2, seconds=4)  # a hung answer
    sim.inject_fault("signeds3download", kind="reset", count=None, rate=0.1)  # dropped connections
    sim.inject_fault("download", kind="truncate", count=None, rate=0.05, fraction=0.5)  # cut bodies
    sim.inject_fault("download", kind="reset", count=None, rate=0.05)
    sim.inject_fault("*", 429, count=20, retry_after=1, rate=0.2)  # a 429 storm
    sim.inject_fault("top_folders", kind="slow", count=3, seconds=1)
    transport = ApsTransport(connection_for(simulator), timeout=(2.0, 3.0),
                             retry_policy=RetryPolicy(attempts=8, backoff_initial=0.05, backoff_max=0.5))
    engine = MirrorEngine(ApsClient(transport), s3, MirrorConfig(bucket=bucket, prefix=PREFIX,
                                                                 top_folders=ALL_TOP_FOLDERS))
    summary = RunSummary.combine(engine.sync_project(p) for p in engine.list_projects())

    assert summary.files_failed == 0 and not summary.errors, summary.errors
    served = [r for r in sim.stats()["log"] if r["status"] >= 400]
    assert len(served) >= 10, "the faults really happened"
    assert transport.counter.throttled.total() > 0
    assert_exact_mirror(simulator, s3, bucket)
    assert object_keys(s3, bucket) == {e["key"] for e in mirrored(s3, bucket).values()}
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_an_expired_signed_url_is_signed_again(simulator, s3, bucket):
    sim = simulator.sim
    # Two downloads meet S3's 403 (as for an expired URL); a freshly signed URL works. Fewer
    # faults than a file's attempts (3): with parallel transfers, one file's quick retries may
    # meet them all, and must still succeed.
    sim.inject_fault("download", 403, count=2)
    engine = MirrorEngine(ApsClient(ApsTransport(connection_for(simulator))), s3,
                          MirrorConfig(bucket=bucket, prefix=PREFIX, project_filter=("Drone*",)))
    summary = RunSummary.combine(engine.sync_project(p) for p in engine.list_projects())
    assert summary.files_failed == 0
    assert sim.stats()["requests"]["signeds3download"] > summary.files_copied
    assert_exact_mirror_of_project(simulator, s3, bucket, "Drone Gimbal")


def assert_exact_mirror_of_project(simulator, s3, bucket, project: str) -> None:
    entries = mirrored(s3, bucket)
    for f in simulator.sim.iter_files():
        if f.project == project:
            body = s3.get_object(Bucket=bucket, Key=entries[f.item_id]["key"])["Body"].read()
            assert body == simulator.sim.file_bytes(f.tip.id)
