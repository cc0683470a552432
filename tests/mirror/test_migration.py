"""Mirrors made before the key space existed upgrade in place, without downloading again."""

from __future__ import annotations

import json

from aps_mirror.mirror.keys import meta_prefix
from tests.mirror.test_engine import PREFIX, assert_exact_mirror, mirrored, object_keys, run
from tests.mirror.test_key_space import assert_keys_distinct

ESCAPED, RAW = "\uff3fversions", "_versions"


def test_a_mirror_without_a_record_keeps_every_key(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    keys = assert_keys_distinct(s3, bucket)
    record_key = f"{meta_prefix(PREFIX)}/mirror.json"
    record = json.loads(s3.get_object(Bucket=bucket, Key=record_key)["Body"].read())
    s3.delete_object(Bucket=bucket, Key=record_key)  # as mirrors made before it existed
    downloads = simulator.sim.stats()["downloads"]
    again = run(aps, s3, bucket, full_walk=True)
    assert again.files_copied == again.files_renamed == 0
    assert simulator.sim.stats()["downloads"] == downloads
    assert assert_keys_distinct(s3, bucket) == keys
    rebuilt = json.loads(s3.get_object(Bucket=bucket, Key=record_key)["Body"].read())
    assert (rebuilt["hubs"], rebuilt["projects"]) == (record["hubs"], record["projects"])


def test_manifests_written_before_sources_existed_load_as_docs(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    keys = assert_keys_distinct(s3, bucket)
    for key in _manifest_keys(s3, bucket):
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert body["source"] == "docs"
        assert all(set(e) <= ENTRY_FIELDS_BEFORE_SOURCES for e in body["items"].values()), \
            "an older aps-mirror still reads every entry"
        del body["source"]
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    downloads = simulator.sim.stats()["downloads"]
    again = run(aps, s3, bucket, full_walk=True)
    assert again.files_copied == again.files_renamed == 0 and not again.errors
    assert simulator.sim.stats()["downloads"] == downloads
    assert assert_keys_distinct(s3, bucket) == keys
    assert {json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())["source"]
            for k in _manifest_keys(s3, bucket)} == {"docs"}


# ManifestEntry's fields as aps-mirror read them before sources existed (it refuses unknown ones).
ENTRY_FIELDS_BEFORE_SOURCES = {
    "version_id", "version_number", "key", "size", "source_path", "sha1", "copied_at", "deleted_at",
    "folder_id", "name", "file_type", "created_at", "created_by", "modified_at", "modified_by", "reserved",
    "history", "versions_kept"}


def _manifest_keys(s3, bucket) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{meta_prefix(PREFIX)}/manifests/")
    return [o["Key"] for o in listing["Contents"]]


def test_a_user_folder_stored_at_a_reserved_name_moves_inside_s3(simulator, aps, s3, bucket):
    """Before the key space, a top folder named `_versions` was mirrored at `<project>/_versions/`,
    where versions=all keeps earlier versions. The upgrade moves it aside, copying inside S3."""
    sim = simulator.sim
    project = sim.add_project("Old layout", top_folders=("Project Files", RAW))
    for n in range(3):
        sim.add_file(project, sim.folder_id(project, (RAW,)), f"sheet {n}.pdf", size=1000 + n)
    run(aps, s3, bucket)
    _rewrite_as_the_old_layout(s3, bucket)
    assert [k for k in object_keys(s3, bucket) if f"/{RAW}/" in k]

    downloads = sim.stats()["downloads"]
    upgraded = run(aps, s3, bucket, full_walk=True)
    assert upgraded.files_renamed == 3 and upgraded.files_copied == 0
    assert sim.stats()["downloads"] == downloads, "moved inside S3, nothing downloaded"
    assert not [k for k in object_keys(s3, bucket) if f"/{RAW}/" in k]
    assert object_keys(s3, bucket) == {e["key"] for e in mirrored(s3, bucket).values()}, "no orphan"
    assert_exact_mirror(simulator, s3, bucket)


def _rewrite_as_the_old_layout(s3, bucket) -> None:
    """Put the escaped folder back at its raw name, objects and manifests alike."""
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{meta_prefix(PREFIX)}/manifests/")
    for obj in listing["Contents"]:
        body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        for entry in body["items"].values():
            if f"/{ESCAPED}/" in entry["key"]:
                old_key = entry["key"].replace(f"/{ESCAPED}/", f"/{RAW}/")
                s3.copy_object(Bucket=bucket, Key=old_key, CopySource={"Bucket": bucket, "Key": entry["key"]})
                s3.delete_object(Bucket=bucket, Key=entry["key"])
                entry["key"] = old_key
        for folder in body["folders"].values():
            folder["segments"] = [RAW if s == ESCAPED else s for s in folder["segments"]]
        s3.put_object(Bucket=bucket, Key=obj["Key"], Body=json.dumps(body).encode())
