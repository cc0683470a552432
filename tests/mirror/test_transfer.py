"""Ranged parallel part downloads: simulator over HTTP -> moto's S3 server, no mocks.

The threshold and part size are lowered (and moto's 5 MiB minimum part size with them, for
these tests only) so a file of a few MiB goes as four ranged parts and the tests stay fast.
"""

from __future__ import annotations

import hashlib
import threading

from typing import Iterator

import pytest

from aps_mirror.errors import ApiError, TransferError
from aps_mirror.mirror.sources.docs import DocsSource
from aps_mirror.mirror.sources.records import RemoteFile
from aps_mirror.mirror.transfer import PART_ATTEMPTS, copy_version
from aps_mirror.mirror.walk import file_version
from tests.iam_moto import moto_process

MIB = 1024 * 1024
PART = MIB
SIZE = 3 * PART + PART // 2 + 123  # four parts, the last one short and odd-sized
PARTS = 4
KEY = "mirror/big model.rvt"
RANGED = dict(ranged_threshold=MIB, part_size=PART)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto server of this module's own that accepts 256 KiB parts (real S3 wants 5 MiB; the
    engine tests keep that on the shared server)."""
    with moto_process(part_min_size=256 * 1024) as endpoint:
        yield endpoint


class Progress:
    """on_bytes as the engine uses it: called from several threads, must net to the size."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.calls = 0

    def __call__(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.calls += 1


def add_file(simulator, aps, size: int = SIZE, name: str = "big model.rvt") -> RemoteFile:
    """A new file of `size` bytes in the simulator, as the walk would list it."""
    sim = simulator.sim
    some = next(f for f in sim.iter_files() if f.path)
    project_id = sim.project_id(some.project)
    folder_id = sim.folder_id(project_id, some.path)
    item_id = sim.add_file(project_id, folder_id, name, size=size)
    item = next(i for i in aps.folder_contents(project_id, folder_id) if i.id == item_id)
    sim.reset_stats()  # count only the transfer's requests
    return RemoteFile(item.id, file_version(item.tip), tuple(some.path), tuple(some.path), name, folder_id)


def downloads(simulator) -> list[dict]:
    """The signed URL requests the simulator saw, in order (status 0 = connection dropped)."""
    return [r for r in simulator.sim.stats()["log"] if r["endpoint"] == "download"]


def signings(simulator) -> int:
    return simulator.sim.stats()["requests"].get("signeds3download", 0)


def assert_exact_copy(simulator, s3, bucket, remote: RemoteFile, key: str = KEY) -> None:
    expected = simulator.sim.file_bytes(remote.version.id)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(body) == len(expected) and body == expected
    assert hashlib.sha1(body).hexdigest() == simulator.sim.sha1(remote.version.id)
    # Kept in the metadata, multipart or not, so an object adopted after a crash keeps it too.
    assert s3.head_object(Bucket=bucket, Key=key)["Metadata"]["aps-sha1"] == simulator.sim.sha1(remote.version.id)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_big_file_goes_as_parallel_ranged_parts(simulator, aps, s3, bucket):
    remote = add_file(simulator, aps)
    progress = Progress()
    done = copy_version(DocsSource(aps), s3, bucket, KEY, remote, on_bytes=progress, **RANGED)

    assert (done.size, done.sha1) == (SIZE, simulator.sim.sha1(remote.version.id))
    assert_exact_copy(simulator, s3, bucket, remote)
    assert s3.head_object(Bucket=bucket, Key=KEY)["ETag"].strip('"').endswith(f"-{PARTS}")
    assert [r["status"] for r in downloads(simulator)] == [206] * PARTS
    assert signings(simulator) == 1
    assert progress.bytes == SIZE


def test_a_file_below_the_threshold_streams_in_one_get(simulator, aps, s3, bucket):
    remote = add_file(simulator, aps)
    copy_version(DocsSource(aps), s3, bucket, KEY, remote, ranged_threshold=SIZE + 1, part_size=PART)
    assert_exact_copy(simulator, s3, bucket, remote)
    assert [r["status"] for r in downloads(simulator)] == [200]


def test_a_signed_url_expiring_mid_copy_is_signed_again_once(simulator, aps, s3, bucket):
    remote = add_file(simulator, aps)
    progress = Progress()
    expired = threading.Event()

    def expire_once_bytes_flow(n: int) -> None:
        progress(n)
        if not expired.is_set():
            expired.set()
            simulator.sim.advance_clock(11 * 60)  # past the 10-minute URL: later ranges get 403

    # Two in flight: parts 3 and 4 start after the expiry, with the first URL or the new one.
    copy_version(DocsSource(aps), s3, bucket, KEY, remote, on_bytes=expire_once_bytes_flow, parts_in_flight=2, **RANGED)

    assert_exact_copy(simulator, s3, bucket, remote)
    statuses = [r["status"] for r in downloads(simulator)]
    assert 403 in statuses and statuses.count(206) == PARTS
    assert signings(simulator) == 2, "every part meeting the expiry shares one fresh signed URL"
    assert progress.bytes == SIZE


def test_failed_parts_are_fetched_again_alone(simulator, aps, s3, bucket):
    sim = simulator.sim
    sim.inject_fault("download", kind="range403")  # S3's AccessDenied on a range not at 0
    sim.inject_fault("download", kind="reset")  # connection reset before any answer
    sim.inject_fault("download", kind="truncate", fraction=0.5)  # half the range, then closed
    remote = add_file(simulator, aps)
    progress = Progress()
    copy_version(DocsSource(aps), s3, bucket, KEY, remote, on_bytes=progress, **RANGED)

    assert_exact_copy(simulator, s3, bucket, remote)
    statuses = [r["status"] for r in downloads(simulator)]
    # Each fault costs one extra request for one range; nothing restarted the file.
    assert len(statuses) == PARTS + 3
    assert statuses.count(403) == 1 and statuses.count(0) == 1
    assert statuses.count(206) == PARTS + 1  # the truncated answer started as a 206
    assert signings(simulator) == 2, "the 403 signed the URL again, once"
    assert progress.bytes == SIZE, "bytes of the cut range were taken back"


@pytest.mark.parametrize("fault", ["404 once started", "range403 forever"])
def test_an_unrecoverable_failure_leaves_no_object_and_no_upload(simulator, aps, s3, bucket, fault):
    sim = simulator.sim
    remote = add_file(simulator, aps)
    progress = Progress()
    started = threading.Event()

    def break_once_bytes_flow(n: int) -> None:
        progress(n)
        if fault == "404 once started" and not started.is_set():
            started.set()  # the object vanished mid-copy: the ranges still to come are 404
            sim.inject_fault("download", 404, count=None)

    if fault == "range403 forever":
        sim.inject_fault("download", kind="range403", count=None)
    expected_error = ApiError if fault.startswith("404") else TransferError
    with pytest.raises(expected_error):
        copy_version(DocsSource(aps), s3, bucket, KEY, remote, on_bytes=break_once_bytes_flow, parts_in_flight=2,
                     **RANGED)

    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert progress.bytes == 0, "a failed copy takes back all the progress it reported"
    if fault == "range403 forever":
        assert len([r for r in downloads(simulator) if r["status"] == 403]) >= PART_ATTEMPTS


def test_a_server_ignoring_range_falls_back_to_streaming(simulator, aps, s3, bucket):
    simulator.sim.honor_range = False  # answers every Range with 200 and the whole body
    remote = add_file(simulator, aps)
    progress = Progress()
    copy_version(DocsSource(aps), s3, bucket, KEY, remote, on_bytes=progress, **RANGED)

    assert_exact_copy(simulator, s3, bucket, remote)
    statuses = [r["status"] for r in downloads(simulator)]
    assert set(statuses) == {200} and len(statuses) <= PARTS + 1  # the probes, then one GET
    assert progress.bytes == SIZE
