"""Crash consistency: SIGKILL the syncing process at 20+ points; a rerun converges exactly.

The worker runs in a forked process. It is killed either by the test when the simulator has
served its k-th request (listing, signing or downloading), or by itself right before its k-th
S3 call (uploads, multipart parts, manifest commits, removals). After each kill a normal run
must leave an exact mirror: every file byte-identical, no orphan object, no stale upload.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import threading
from typing import Any

import boto3
import pytest

from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from tests.conftest import FAST_RETRY, connection_for
from tests.mirror.test_engine import ALL_TOP_FOLDERS, PREFIX, assert_exact_mirror, mirrored, object_keys

CONFIG = dict(prefix=PREFIX, delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit(count=100),
              top_folders=ALL_TOP_FOLDERS)


def s3_client(s3_endpoint: str, kill_at_s3_call: int | None = None) -> Any:
    """A client of the S3 server; with `kill_at_s3_call`, its process SIGKILLs itself right
    before that S3 call (counted over the client's calls, from 1)."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    if kill_at_s3_call:
        calls = itertools.count(1)
        lock = threading.Lock()

        def maybe_die(**_: object) -> None:
            with lock:
                if next(calls) == kill_at_s3_call:
                    os.kill(os.getpid(), signal.SIGKILL)

        s3.meta.events.register("before-call.s3", maybe_die)
    return s3


def sync_all(simulator, s3_endpoint: str, bucket: str, kill_at_s3_call: int | None = None) -> None:
    s3 = s3_client(s3_endpoint, kill_at_s3_call)
    aps = ApsClient(ApsTransport(connection_for(simulator), retry_policy=FAST_RETRY))
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, **CONFIG))
    for project in engine.list_projects():
        engine.sync_project(project)


def killed_run(simulator, s3_endpoint, bucket, *, at_request=None, at_s3_call=None, sync=sync_all) -> None:
    """Run `sync` (called as `sync_all` is) in a child process and SIGKILL it at the chosen point."""
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=sync, args=(simulator, s3_endpoint, bucket, at_s3_call))
    traffic = simulator.sim.traffic
    original = traffic.record
    served = itertools.count(1)

    def record(*args, **kwargs):
        original(*args, **kwargs)
        if at_request and next(served) == at_request and child.pid:
            os.kill(child.pid, signal.SIGKILL)

    traffic.record = record
    try:
        child.start()
        child.join(120)
    finally:
        traffic.record = original
    assert child.exitcode == -signal.SIGKILL, "the kill point was never reached"


def assert_converged(simulator, s3, s3_endpoint, bucket) -> None:
    sync_all(simulator, s3_endpoint, bucket)
    assert_exact_mirror(simulator, s3, bucket)
    assert_nothing_left_over(s3, bucket)


def assert_nothing_left_over(s3, bucket) -> None:
    """No orphan object, no stale multipart upload, no delete left pending in any manifest."""
    referenced = {e["key"] for e in mirrored(s3, bucket).values()}
    assert object_keys(s3, bucket) == referenced, "orphan objects left behind"
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "stale multipart uploads"
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")["Contents"]:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        assert manifest["pending_deletes"] == []


def change_everything(simulator) -> None:
    """One change of each kind, for kills during an incremental run."""
    files = [f for f in simulator.sim.iter_files() if f.project == "Riverside Tower"]
    sim = simulator.sim
    project_id = sim.project_id("Riverside Tower")
    sim.rename_item(files[0].item_id, "renamed.pdf")
    sim.move_item(files[1].item_id, sim.folder_id(project_id, ("Project Files",)))
    sim.delete_item(files[2].item_id)
    sim.add_version(files[3].item_id, size=12 * 1024 * 1024)  # multipart
    sim.add_file(project_id, sim.folder_id(project_id, files[4].path), "added.txt", size=5000)


FIRST_RUN_REQUESTS = [2, 4, 7, 10, 16, 25, 40, 60, 85, 110]
FIRST_RUN_S3_CALLS = [1, 3, 6, 12, 20, 35, 50, 62]
INCREMENTAL_REQUESTS = [5, 9, 14]
INCREMENTAL_S3_CALLS = [2, 5, 8, 11, 14]


@pytest.mark.parametrize("at_request", FIRST_RUN_REQUESTS)
def test_kill_during_first_copy_at_an_api_request(simulator, s3, s3_endpoint, bucket, at_request):
    killed_run(simulator, s3_endpoint, bucket, at_request=at_request)
    assert_converged(simulator, s3, s3_endpoint, bucket)


@pytest.mark.parametrize("at_s3_call", FIRST_RUN_S3_CALLS)
def test_kill_during_first_copy_at_an_s3_call(simulator, s3, s3_endpoint, bucket, at_s3_call):
    killed_run(simulator, s3_endpoint, bucket, at_s3_call=at_s3_call)
    assert_converged(simulator, s3, s3_endpoint, bucket)


@pytest.mark.parametrize("at_request", INCREMENTAL_REQUESTS)
def test_kill_during_incremental_run_at_an_api_request(simulator, s3, s3_endpoint, bucket, at_request):
    sync_all(simulator, s3_endpoint, bucket)
    change_everything(simulator)
    killed_run(simulator, s3_endpoint, bucket, at_request=at_request)
    assert_converged(simulator, s3, s3_endpoint, bucket)


@pytest.mark.parametrize("at_s3_call", INCREMENTAL_S3_CALLS)
def test_kill_during_incremental_run_at_an_s3_call(simulator, s3, s3_endpoint, bucket, at_s3_call):
    sync_all(simulator, s3_endpoint, bucket)
    change_everything(simulator)
    killed_run(simulator, s3_endpoint, bucket, at_s3_call=at_s3_call)
    assert_converged(simulator, s3, s3_endpoint, bucket)
