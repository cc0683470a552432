"""versions=all: every earlier version is kept beside the tip, exactly, and never downloaded twice."""

from __future__ import annotations

from aps_mirror.mirror.engine import VERSIONS_DIR, MirrorConfig, MirrorEngine
from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy
from tests.mirror.test_engine import PREFIX, mirrored


def run(aps, s3, bucket, **config):
    engine = MirrorEngine(aps, s3, MirrorConfig(bucket=bucket, prefix=PREFIX, **config))
    return [engine.sync_project(p) for p in engine.list_projects()]


def assert_all_versions_kept(simulator, s3, bucket) -> int:
    """Every downloadable earlier version of every mirrored item is kept, byte-identical."""
    sim, kept = simulator.sim, 0
    for item_id, entry in mirrored(s3, bucket).items():
        if entry["deleted_at"]:
            continue
        history = {h["version_id"]: h for h in entry["history"] if h.get("kept_key")}
        for version in sim.account.item(item_id).versions[:-1]:
            if not version.downloadable:
                continue
            record = history[version.id]
            assert f"/{VERSIONS_DIR}/" in record["kept_key"] and f".v{version.number}" in record["kept_key"]
            body = s3.get_object(Bucket=bucket, Key=record["kept_key"])["Body"].read()
            assert body == sim.file_bytes(version.id), record["kept_key"]
            kept += 1
    return kept


def project_objects(s3, bucket) -> set[str]:
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        keys |= {o["Key"] for o in page.get("Contents", []) if "/_aps_mirror/" not in o["Key"]}
    return keys


def referenced(s3, bucket) -> set[str]:
    keys = set()
    for entry in mirrored(s3, bucket).values():
        keys.add(entry["key"])
        keys |= {h["kept_key"] for h in entry["history"] if h.get("kept_key")}
    return keys


def test_first_run_keeps_every_earlier_version(simulator, aps, s3, bucket):
    run(aps, s3, bucket, versions="all")
    assert assert_all_versions_kept(simulator, s3, bucket) > 0, "the demo seed has items with several versions"
    assert project_objects(s3, bucket) == referenced(s3, bucket), "no orphan objects"


def test_a_new_version_keeps_the_old_tip_by_a_copy_inside_s3(simulator, aps, s3, bucket):
    sim = simulator.sim
    run(aps, s3, bucket, versions="all")
    target = next(f for f in sim.iter_files() if f.item_id in mirrored(s3, bucket))
    sim.add_version(target.item_id, size=3000)
    sim.add_version(target.item_id, size=4000)  # two versions in one night: both kept
    downloads = sim.stats()["downloads"]
    run(aps, s3, bucket, versions="all")
    # The new tip and the intermediate version are downloaded; the old tip is copied in S3.
    assert sim.stats()["downloads"] - downloads == 2
    assert_all_versions_kept(simulator, s3, bucket)
    assert project_objects(s3, bucket) == referenced(s3, bucket)


def test_switching_to_all_fetches_the_past_of_unchanged_items(simulator, aps, s3, bucket):
    run(aps, s3, bucket)
    assert all(not h.get("kept_key") for e in mirrored(s3, bucket).values() for h in e["history"])
    run(aps, s3, bucket, versions="all")
    assert assert_all_versions_kept(simulator, s3, bucket) > 0
    downloads = simulator.sim.stats()["downloads"]
    run(aps, s3, bucket, versions="all")
    assert simulator.sim.stats()["downloads"] == downloads, "a second night fetches nothing"


def test_deleting_an_item_removes_its_kept_versions_too(simulator, aps, s3, bucket):
    sim = simulator.sim
    run(aps, s3, bucket, versions="all")
    entries = mirrored(s3, bucket)
    target = next(i for i, e in entries.items() if any(h.get("kept_key") for h in e["history"]))
    sim.delete_item(target)
    run(aps, s3, bucket, versions="all", delete_policy=DeletePolicy.DELETE, max_delete=DeleteLimit())
    assert target not in mirrored(s3, bucket)
    assert project_objects(s3, bucket) == referenced(s3, bucket)
