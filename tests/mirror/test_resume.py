"""A first copy killed midway resumes: the rerun downloads only what has no object in S3 yet.

The run saves its manifest at checkpoints (every CHECKPOINT_FILES files here: 5) and the next
run adopts, without a download, every object the killed run completed after its last checkpoint
(adoption.py). Real SIGKILL of a forked run, simulator over HTTP, moto's S3 server.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from aps_mirror.mirror import engine as engine_module
from aps_mirror.mirror.adoption import OVERWRITE_MARGIN, RecordedTip, Strays
from aps_mirror.mirror.keys import ProjectKeys
from aps_mirror.mirror.sources.records import FileVersion, RemoteFile
from tests.mirror.test_crash import assert_converged, killed_run, sync_all
from tests.mirror.test_engine import PREFIX, mirrored, object_keys


@pytest.mark.parametrize("at_s3_call", [25, 45])
def test_a_killed_first_copy_downloads_only_what_is_missing(simulator, s3, s3_endpoint, bucket,
                                                            monkeypatch, at_s3_call):
    monkeypatch.setattr(engine_module, "CHECKPOINT_FILES", 5)  # the forked run inherits it
    monkeypatch.setattr(engine_module, "SAVE_SHARE", 0)  # however long a save took: every 5 files
    killed_run(simulator, s3_endpoint, bucket, at_s3_call=at_s3_call)
    in_s3 = object_keys(s3, bucket)
    written = {k: _stamp(s3, bucket, k) for k in in_s3}
    recorded = mirrored(s3, bucket)
    assert recorded, "a checkpoint recorded copies before the kill"
    assert {e["key"] for e in recorded.values()} < in_s3, "and copies after it are in S3, unrecorded"
    manifests = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")["Contents"]
    assert any(json.loads(s3.get_object(Bucket=bucket, Key=m["Key"])["Body"].read())["interrupted_run"]
               for m in manifests), "the manifest knows its run was interrupted"

    files = len(list(simulator.sim.iter_files()))
    downloads = simulator.sim.stats()["downloads"]
    sync_all(simulator, s3_endpoint, bucket)
    assert simulator.sim.stats()["downloads"] - downloads <= files - len(in_s3), \
        "only the files with no object in S3 are downloaded again"
    assert {k: _stamp(s3, bucket, k) for k in in_s3} == written, "what the killed run copied is kept as it is"
    assert_converged(simulator, s3, s3_endpoint, bucket)  # exact, no orphans, no stale uploads


def _stamp(s3, bucket: str, key: str) -> tuple[str, object]:
    head = s3.head_object(Bucket=bucket, Key=key)
    return head["ETag"], head["LastModified"]


def test_an_object_of_the_killed_run_renamed_since_is_moved_not_downloaded(simulator, s3, s3_endpoint, bucket):
    killed_run(simulator, s3_endpoint, bucket, at_s3_call=30)
    in_s3 = object_keys(s3, bucket)
    sim = simulator.sim
    victim = next(f for f in sim.iter_files() if any(k.endswith("/" + f.tip.name) for k in in_s3)
                  and f.tip.name.endswith(".pdf"))
    sim.rename_item(victim.item_id, "renamed after the crash.pdf")  # same bytes, a new version
    downloads = sim.stats()["downloads"]
    sync_all(simulator, s3_endpoint, bucket)
    files = len(list(sim.iter_files()))
    # The renamed file's new version has the old bytes: Autodesk's SHA-1 or the adopted
    # object proves it, so at most the files without an object are downloaded.
    assert sim.stats()["downloads"] - downloads <= files - len(in_s3) + 1
    assert_converged(simulator, s3, s3_endpoint, bucket)


def test_a_checkpoint_waits_in_proportion_to_how_long_the_last_save_took(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock[0])
    checkpoint = engine_module._Checkpoint()
    for _ in range(engine_module.CHECKPOINT_FILES):
        checkpoint.add(64)
    assert checkpoint.due(), "a quick manifest is saved every CHECKPOINT_FILES files"
    with checkpoint.saving():
        clock[0] += 3.0  # a vault's manifest of 100,000 files takes seconds to write
    for _ in range(engine_module.CHECKPOINT_FILES * 5):
        checkpoint.add(64)
    clock[0] += 3.0 * engine_module.SAVE_SHARE - 1
    assert not checkpoint.due(), "saving may not take more than 1/SAVE_SHARE of the run"
    clock[0] += 1
    assert checkpoint.due()


def test_a_recorded_key_the_killed_run_overwrote_is_adopted_there_and_never_removed(s3, bucket):
    """Strays at keys the manifest references: read when the listing hints at an overwrite,
    taken only at their own key, and never left over for removal (the manifest owns the key)."""
    keys = ProjectKeys(PREFIX, "Hub", "Project")
    newer, same, unrecorded = (keys.file_key(("Plans",), name) for name in ("a.pdf", "b.pdf", "c.pdf"))

    def put(key: str, item: str, version: str, size: int) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size,
                      Metadata={"aps-item-id": item, "aps-version-id": version, "aps-sha1": "f" * 40})

    put(newer, "item-a", "a-v2", 20)  # the killed run stored item a's version 2 over version 1
    put(same, "item-b", "b-v1", 10)  # as recorded
    put(unrecorded, "item-c", "c-v1", 30)
    tips = {newer: RecordedTip("a-v1", 10), same: RecordedTip("b-v1", 10)}
    strays = Strays.find(s3, bucket, keys, {newer, same}, tips, datetime.now(timezone.utc))
    assert len(strays) == 2 and strays.leftovers() == [unrecorded], "the recorded key is never removed"

    def remote(item: str, version: str, size: int, name: str) -> RemoteFile:
        return RemoteFile(item, FileVersion(version, 2, name, size), ("Plans",), ("Plans",), name)

    assert strays.take(remote("item-a", "a-v2", 20, "moved.pdf"), unrecorded) is None, \
        "an object at a recorded key is not moved to another"
    taken = strays.take(remote("item-a", "a-v2", 20, "a.pdf"), newer)
    assert taken is not None and (taken.key, taken.size, taken.recorded) == (newer, 20, True)

    # Written long before the manifest's last save, at the recorded size: not even read.
    later = datetime.now(timezone.utc) + OVERWRITE_MARGIN + timedelta(minutes=1)
    assert len(Strays.find(s3, bucket, keys, {newer, same}, {newer: RecordedTip("a-v1", 20), same: tips[same]},
                           later)) == 1
