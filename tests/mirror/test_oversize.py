"""Files S3 cannot hold (over its 5 TiB object limit) are never downloaded; multipart fits the rest.

The simulator declares a version's size without holding its bytes (its content is generated
only as a download reads it), so a 6 TiB file costs nothing here unless something fetches it.
"""

from __future__ import annotations

import dataclasses

import pytest

from aps_mirror.catalog import reader
from aps_mirror.catalog.writer import CatalogWriter
from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
from aps_mirror.mirror.manifest import ManifestStore
from aps_mirror.mirror.sources.docs import DocsSource
from aps_mirror.mirror.transfer import (MAX_OBJECT_SIZE, MAX_PARTS, PART_SIZE, NotDownloadable, TIB,
                                        _byte_ranges, _part_size_for, copy_version)

from tests.mirror.test_transfer import add_file

MIB = 1024 * 1024
GIB = 1024 * MIB
HUGE = 6 * TIB
PREFIX = "mirror"
REASON = f"this version is 6.0 TiB ({HUGE} bytes), over S3's 5 TiB object limit; it cannot be mirrored"


def test_s3s_limits_are_the_documented_ones():
    assert MAX_OBJECT_SIZE == 5 * 1024 ** 4 == 5_497_558_138_880 and MAX_PARTS == 10_000


def test_a_version_over_5_tib_is_refused_before_any_request(simulator, aps, s3, bucket):
    remote = add_file(simulator, aps, size=HUGE, name="site scan.rcp")  # resets the request counts
    assert remote.version.size == HUGE
    with pytest.raises(NotDownloadable) as refused:
        copy_version(DocsSource(aps), s3, bucket, "mirror/site scan.rcp", remote)
    assert str(refused.value) == REASON
    stats = simulator.sim.stats()
    assert sum(stats["requests"].values()) == 0 and stats["downloads"] == 0
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_size_known_only_once_signed_is_refused_before_the_download(simulator, aps, s3, bucket):
    """A listing without storageSize: the signing tells the size, and nothing is fetched."""
    remote = add_file(simulator, aps, size=HUGE, name="site scan.rcp")
    unsized = dataclasses.replace(remote, version=dataclasses.replace(remote.version, size=None))
    with pytest.raises(NotDownloadable, match="over S3's 5 TiB object limit"):
        copy_version(DocsSource(aps), s3, bucket, "mirror/site scan.rcp", unsized)
    stats = simulator.sim.stats()
    assert {k: v for k, v in stats["requests"].items() if v} == {"signeds3download": 1}
    assert stats["downloads"] == 0
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_an_oversize_file_is_recorded_not_downloadable_and_retried_at_no_download_cost(simulator, aps, s3,
                                                                                       bucket):
    sim = simulator.sim
    some = next(f for f in sim.iter_files() if f.path)
    project_id = sim.project_id(some.project)
    item_id = sim.add_file(project_id, sim.folder_id(project_id, some.path), "site scan.rcp", size=HUGE)
    config = MirrorConfig(bucket=bucket, prefix=PREFIX, top_folders=("*",))
    files = [f for f in sim.iter_files() if f.item_id != item_id]

    for night in (1, 2):
        sim.reset_stats()
        engine = MirrorEngine(aps, s3, config, catalog=CatalogWriter(s3, bucket, PREFIX))
        results = [engine.sync_project(p) for p in engine.list_projects()]
        assert sum(r.files_failed for r in results) == 0 and not any(r.errors for r in results)
        assert sum(r.files_unavailable for r in results) == 1
        assert sum(r.files_copied for r in results) == (len(files) if night == 1 else 0)
        # Signed and downloaded: the other files, once each, the first night; the huge one never.
        stats = sim.stats()
        assert stats["downloads"] == stats["requests"].get("signeds3download", 0) == (len(files) if night == 1 else 0)
        assert sum(r.bytes_copied for r in results) == (sum(f.tip.size for f in files) if night == 1 else 0)
        manifest = next(m for m in ManifestStore(s3, bucket, PREFIX).load_all() if item_id in m.unavailable)
        assert manifest.unavailable[item_id]["reason"] == REASON and item_id not in manifest.items

    CatalogWriter(s3, bucket, PREFIX).publish_snapshot()
    catalog = reader.connect(s3, bucket, PREFIX)
    assert catalog.execute("SELECT status, status_reason FROM files WHERE item_id = ?",
                           [item_id]).fetchall() == [("skipped", REASON)]


def test_part_size_grows_so_a_5_tib_file_fits_in_10000_parts():
    # Up to 10,000 parts of the default size, the default size; one byte more and it grows.
    assert _part_size_for(MAX_PARTS * PART_SIZE, PART_SIZE) == PART_SIZE
    assert _part_size_for(MAX_PARTS * PART_SIZE + 1, PART_SIZE) == PART_SIZE + MIB
    part = _part_size_for(MAX_OBJECT_SIZE, PART_SIZE)
    assert part == 525 * MIB  # ceil(5 TiB / 10,000) = 524.29 MiB, in whole MiB
    assert part <= 5 * GIB  # S3's largest part
    ranges = list(_byte_ranges(MAX_OBJECT_SIZE, part))
    assert len(ranges) == 9_987 <= MAX_PARTS
    assert ranges[0] == (0, part - 1) and ranges[-1][1] == MAX_OBJECT_SIZE - 1
    assert all(end - start + 1 >= 5 * MIB for start, end in ranges[:-1])  # S3's smallest part


@pytest.mark.parametrize("size", [1, 5 * MIB, PART_SIZE * MAX_PARTS - 1, 80 * GIB, TIB, 3 * TIB + 7,
                                  MAX_OBJECT_SIZE - 1, MAX_OBJECT_SIZE])
def test_every_size_up_to_the_limit_fits_in_s3s_parts(size):
    part = _part_size_for(size, PART_SIZE)
    assert part % MIB == 0 and PART_SIZE <= part <= 5 * GIB
    assert -(-size // part) <= MAX_PARTS
