"""The sync engine end to end: simulator over HTTP -> moto's S3 server."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import pytest

from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine, RunSummary
from aps_mirror.mirror.transfer import PART_SIZE

PREFIX = "mirror"
# Every top folder, as `simulator.sim.iter_files()` has them: the default would leave the
# Plans of the ACC hub out (tests/mirror/test_selection.py tests the default).
ALL_TOP_FOLDERS = ("*",)


def run(aps, s3, bucket, **config) -> RunSummary:
    config.setdefault("top_folders", ALL_TOP_FOLDERS)
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config))
    return RunSummary.combine(engine.sync_project(p) for p in engine.list_projects())


def mirrored(s3, bucket) -> dict[str, dict]:
    """item id -> manifest entry, over every project manifest in the bucket."""
    entries = {}
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")
    for obj in listing.get("Contents", []):
        entries.update(json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())["items"])
    return entries


def object_keys(s3, bucket) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX + "/")
    return {o["Key"] for page in pages for o in page.get("Contents", [])
            if not o["Key"].startswith(f"{PREFIX}/_aps_mirror/")}


def assert_exact_mirror(simulator, s3, bucket) -> None:
    truth = {f.item_id: f for f in simulator.sim.iter_files()}
    entries = mirrored(s3, bucket)
    live = {k: v for k, v in entries.items() if not v["deleted_at"]}
    assert set(live) == set(truth)
    for item_id, f in truth.items():
        entry = live[item_id]
        assert entry["version_id"] == f.tip.id
        obj = s3.get_object(Bucket=bucket, Key=entry["key"])
        body = obj["Body"].read()
        assert body == simulator.sim.file_bytes(f.tip.id), entry["key"]
        assert obj["Metadata"]["aps-item-id"] == item_id
        assert obj["Metadata"]["aps-version-number"] == str(f.tip.number)
        # The SHA-1 the manifest (and the catalog, and verify) trusts, and the object's own copy
        # of it (an object adopted after a crash brings it along), are the bytes'.
        sha1 = hashlib.sha1(body).hexdigest()
        assert entry["sha1"] == sha1 and obj["Metadata"]["aps-sha1"] == sha1, entry["key"]


def test_first_run_copies_everything_byte_identical_and_second_copies_nothing(simulator, aps, s3, bucket):
    first = run(aps, s3, bucket)
    files = list(simulator.sim.iter_files())
    assert first.files_copied == len(files) >= 50
    assert first.files_failed == 0 and not first.errors
    assert first.bytes_copied == sum(f.tip.size for f in files)
    assert any(f.tip.size > PART_SIZE for f in files), "the demo must exercise multipart"
    assert_exact_mirror(simulator, s3, bucket)
    # The deleted item of the demo seed is not mirrored.
    deleted = [f for f in simulator.sim.iter_files(include_deleted=True) if f.tip.deleted]
    assert deleted and all(f.item_id not in mirrored(s3, bucket) for f in deleted)

    downloads_before = simulator.sim.stats()["downloads"]
    second = run(aps, s3, bucket)
    assert second.files_copied == 0 and second.files_skipped == len(files)
    assert simulator.sim.stats()["downloads"] == downloads_before


def test_new_version_and_new_file_are_copied_alone(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    some = next(f for f in simulator.sim.iter_files() if f.path)
    simulator.sim.add_version(some.item_id, size=4321)
    project_id = simulator.sim.project_id(some.project)
    folder_id = simulator.sim.folder_id(project_id, some.path)
    simulator.sim.add_file(project_id, folder_id, "brand new.dwg", size=777)
    downloads = simulator.sim.stats()["downloads"]
    summary = run(aps, s3, bucket)
    assert summary.files_copied == 2 and summary.bytes_copied == 4321 + 777
    assert simulator.sim.stats()["downloads"] == downloads + 2
    assert_exact_mirror(simulator, s3, bucket)


def test_rename_is_a_server_side_copy_without_download(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(f for f in simulator.sim.iter_files() if f.tip.size and f.tip.size > 1000)
    old_key = mirrored(s3, bucket)[target.item_id]["key"]
    downloads = simulator.sim.stats()["downloads"]
    # Autodesk renames by adding a version with the same content: same size and SHA-1.
    simulator.sim.rename_item(target.item_id, "renamed drawing.pdf")
    summary = run(aps, s3, bucket)
    assert summary.files_renamed == 1 and summary.files_copied == 0
    assert simulator.sim.stats()["downloads"] == downloads, "a rename must not download"
    entry = mirrored(s3, bucket)[target.item_id]
    assert entry["key"].endswith("/renamed drawing.pdf") and entry["key"] != old_key
    assert old_key not in object_keys(s3, bucket), "the old key is removed"
    copied = s3.head_object(Bucket=bucket, Key=entry["key"])["Metadata"]
    assert copied["aps-sha1"] == entry["sha1"] == simulator.sim.sha1(target.tip.id), "the copy keeps the SHA-1"
    assert_exact_mirror(simulator, s3, bucket)


def test_move_reuses_the_mirrored_bytes(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(f for f in simulator.sim.iter_files() if len(f.path) >= 2)
    project_id = simulator.sim.project_id(target.project)
    destination = simulator.sim.folder_id(project_id, target.path[:1])
    simulator.sim.move_item(target.item_id, destination)
    downloads = simulator.sim.stats()["downloads"]
    old_key = mirrored(s3, bucket)[target.item_id]["key"]
    summary = run(aps, s3, bucket)
    assert summary.files_renamed == 1 and summary.files_copied == 0
    assert simulator.sim.stats()["downloads"] == downloads
    assert old_key not in object_keys(s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_delete_is_recorded_and_the_object_kept(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    target = next(iter(simulator.sim.iter_files()))
    key = mirrored(s3, bucket)[target.item_id]["key"]
    simulator.sim.delete_item(target.item_id)
    run(aps, s3, bucket)
    assert mirrored(s3, bucket)[target.item_id]["deleted_at"]
    assert key in object_keys(s3, bucket)


def test_dry_run_writes_nothing(simulator, aps, s3, bucket):
    summary = run(aps, s3, bucket, dry_run=True)
    assert summary.dry_run and summary.files_copied == 0
    assert len(summary.planned) == len(list(simulator.sim.iter_files()))
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert simulator.sim.stats()["downloads"] == 0


def test_project_filter_selects_by_glob(simulator, aps, s3, bucket):
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX,
                                                project_filter=("riverside*",)))
    assert [p.project_name for p in engine.list_projects()] == ["Riverside Tower"]


def test_failed_download_leaves_no_object_and_no_manifest_claim(simulator, aps, s3, bucket):
    simulator.sim.inject_fault("download", 500, count=1000)
    summary = run(aps, s3, bucket, project_filter=("Drone Gimbal",))
    assert summary.files_failed > 0 and summary.files_copied == 0
    assert object_keys(s3, bucket) == set()
    assert mirrored(s3, bucket) == {}
    simulator.sim.clear_faults()
    run(aps, s3, bucket)
    assert_exact_mirror(simulator, s3, bucket)


def test_objects_keep_awkward_names_readably(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    keys = object_keys(s3, bucket)
    assert any(k.endswith("/a：b？.txt") for k in keys)  # Windows-illegal characters, readable
    unicode_names = [f.tip.name for f in simulator.sim.iter_files() if not f.tip.name.isascii()]
    assert unicode_names
    for name in unicode_names:
        assert any(k.endswith("/" + unicodedata.normalize("NFC", name)) for k in keys), name
