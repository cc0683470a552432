"""Protected objects: SSE, an S3 additional checksum, storage class, tags and Object Lock on
every mirrored file, the bookkeeping encrypted but never locked, and the delete policies on a
versioned, locked bucket: simulator over HTTP -> each S3 implementation of tests/s3_servers.py
(moto's server, and SeaweedFS run as a process)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.engine import MirrorEngine, RunSummary
from aps_mirror.options import mirror_config
from tests.mirror.test_engine import ALL_TOP_FOLDERS, PREFIX, assert_exact_mirror, mirrored
from tests.s3_servers import SERVER_NAMES, S3Server, servers_with

PROTECTED = dict(sse="AES256", checksum_algorithm="SHA256", storage_class="STANDARD_IA", object_tags=True,
                 object_lock_mode="GOVERNANCE", object_lock_days=2)


@pytest.fixture
def s3(s3_server: S3Server):
    return s3_server.client()


@pytest.fixture
def locked_bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket(object_lock=True)


def engine_for(aps, s3, bucket, **options) -> MirrorEngine:
    """An engine with options as a DAG run's params give them (checked by aps_mirror.options)."""
    return MirrorEngine(aps, s3, mirror_config({"bucket": bucket, "prefix": PREFIX,
                                                "top_folders": list(ALL_TOP_FOLDERS), **options}))


def run(engine: MirrorEngine) -> RunSummary:
    with engine.locked():
        return RunSummary.combine(engine.sync_project(p) for p in engine.list_projects())


def all_keys(s3, bucket) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX + "/")
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_every_mirrored_file_is_encrypted_checksummed_classed_tagged_and_locked(simulator, aps, s3, locked_bucket,
                                                                               s3_server: S3Server):
    sim = simulator.sim
    # One file above the 8 MiB part size: a multipart upload carries the checksum too.
    some = next(f for f in sim.iter_files() if f.path)
    project_id = sim.project_id(some.project)
    big = sim.add_file(project_id, sim.folder_id(project_id, some.path), "big model.rvt", size=9 * 1024 * 1024)
    # The bucket's true owner: every request carries it, and none is refused for it.
    engine = engine_for(aps, s3, locked_bucket, **PROTECTED, expected_bucket_owner=s3_server.account_id)
    projects = {p.project_id: p for p in engine.list_projects()}
    summary = run(engine)
    assert summary.projects_failed == 0
    assert_exact_mirror(simulator, s3, locked_bucket)
    soon = datetime.now(timezone.utc) + timedelta(days=2)
    entries = mirrored(s3, locked_bucket)
    assert big in entries
    for item_id, entry in entries.items():
        head = s3.head_object(Bucket=locked_bucket, Key=entry["key"], ChecksumMode="ENABLED")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["StorageClass"] == "STANDARD_IA"
        body = sim.file_bytes(entry["version_id"])
        if len(body) < 8 * 1024 * 1024 or s3_server.name in servers_with("multipart_object_lock"):
            assert head.get("ObjectLockMode") == "GOVERNANCE", entry["key"]
            assert abs((head["ObjectLockRetainUntilDate"] - soon).total_seconds()) < 600
        if len(body) < 8 * 1024 * 1024:  # one PUT: S3's SHA-256 is the file's
            assert head["ChecksumSHA256"] == sha256_b64(body), entry["key"]
        else:  # multipart: S3 keeps the checksum of the parts' checksums (real S3 adds "-<parts>")
            first = s3.head_object(Bucket=locked_bucket, Key=entry["key"], PartNumber=1)["ContentLength"]
            parts = hashlib.sha256(hashlib.sha256(body[:first]).digest() + hashlib.sha256(body[first:]).digest())
            assert head["ChecksumSHA256"].removesuffix("-2") == base64.b64encode(parts.digest()).decode()
            if s3_server.name in servers_with("multipart_checksum_composite"):
                assert head["ChecksumSHA256"].endswith("-2")
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=locked_bucket, Key=entry["key"])["TagSet"]}
        project = next(p for p in projects.values() if entry["key"].startswith(engine.keys_for(p).root))
        assert tags == {"aps-hub-id": project.hub_id, "aps-project-id": project.project_id, "aps-item-id": item_id}


def test_the_bookkeeping_is_encrypted_but_never_locked_or_archived(simulator, aps, s3, locked_bucket):
    run(engine_for(aps, s3, locked_bucket, **PROTECTED))
    bookkeeping = [k for k in all_keys(s3, locked_bucket) if "/_aps_mirror/" in k]
    assert any("/manifests/" in k for k in bookkeeping) and any(k.endswith("mirror.json") for k in bookkeeping)
    for key in bookkeeping:
        head = s3.head_object(Bucket=locked_bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", key
        assert "ObjectLockMode" not in head and head.get("StorageClass", "STANDARD") == "STANDARD", key


def test_delete_policies_on_a_locked_bucket_hide_files_and_say_what_stays(simulator, aps, s3, locked_bucket):
    sim = simulator.sim
    engine = engine_for(aps, s3, locked_bucket, **PROTECTED)
    run(engine)
    gone, trashed = [f for f in sim.iter_files() if f.path][:2]
    before = mirrored(s3, locked_bucket)
    sim.delete_item(gone.item_id)
    run(engine_for(aps, s3, locked_bucket, **PROTECTED, delete_policy="delete", max_delete="100%"))
    sim.delete_item(trashed.item_id)
    summary = run(engine_for(aps, s3, locked_bucket, **PROTECTED, delete_policy="trash", max_delete="100%"))
    assert summary.projects_failed == 0
    current = set(all_keys(s3, locked_bucket))
    for item in (gone, trashed):
        key = before[item.item_id]["key"]
        assert key not in current, "hidden from the mirror by a delete marker"
        versions = s3.list_object_versions(Bucket=locked_bucket, Prefix=key)
        assert [m["IsLatest"] for m in versions["DeleteMarkers"] if m["Key"] == key] == [True]
        (kept,) = [v for v in versions["Versions"] if v["Key"] == key]
        with pytest.raises(Exception, match="AccessDenied"):  # the lock holds: nothing can remove it
            s3.delete_object(Bucket=locked_bucket, Key=key, VersionId=kept["VersionId"])
        assert s3.get_object(Bucket=locked_bucket, Key=key, VersionId=kept["VersionId"])["Body"].read() \
            == sim.file_bytes(item.tip.id)
    trash = [k for k in current if "/_aps_mirror/trash/" in k and k.endswith(before[trashed.item_id]["key"])]
    assert len(trash) == 1, "the trash copy is a mirrored file: locked too"
    assert s3.head_object(Bucket=locked_bucket, Key=trash[0])["ObjectLockMode"] == "GOVERNANCE"


def test_a_delete_explains_the_lock_in_its_event(simulator, aps, s3, locked_bucket):
    from aps_mirror.mirror.plan import DeletePolicy

    engine = engine_for(aps, s3, locked_bucket, **PROTECTED)
    assert "a delete marker hides it; its versions stay locked (GOVERNANCE) for 2 day(s)" in \
        engine._delete_reason(DeletePolicy.DELETE)
    assert "delete marker" not in engine._delete_reason(DeletePolicy.KEEP), "keep removes nothing"
    plain = engine_for(aps, s3, locked_bucket)
    assert "delete marker" not in plain._delete_reason(DeletePolicy.DELETE)


def test_lock_options_on_a_bucket_without_object_lock_are_refused_before_any_write(aps, s3, bucket):
    engine = engine_for(aps, s3, bucket, object_lock_mode="COMPLIANCE", object_lock_days=1)
    with pytest.raises(ConfigError, match=rf"^Bucket '{bucket}' does not have S3 Object Lock enabled"):
        run(engine)
    assert all_keys(s3, bucket) == [], "nothing written, not even the lease"


@pytest.mark.parametrize(("options", "message"), [
    ({"storage_class": "GLACIER"}, "storage_class 'GLACIER' is not accepted: use one of STANDARD, "),
    ({"sse": "aes"}, "sse 'aes' is not accepted: use one of AES256, aws:kms"),
    ({"checksum_algorithm": "md5"}, "checksum_algorithm 'md5' is not accepted"),
    ({"expected_bucket_owner": "12345"}, "expected_bucket_owner '12345' is not accepted: use the 12-digit"),
    ({"object_lock_mode": "governance"}, "object_lock_mode and object_lock_days go together"),
    ({"object_lock_days": 3}, "object_lock_mode and object_lock_days go together"),
    ({"object_lock_mode": "GOVERNANCE", "object_lock_days": 0}, "object_lock_days 0 is not accepted"),
    ({"sse_kms_key_id": "alias/backup"}, "sse_kms_key_id is given but sse is not aws:kms"),
])
def test_protection_options_are_checked_where_they_enter(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        mirror_config({"bucket": "b-1", **options})
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_the_spelling_s3_uses_comes_back_whatever_the_case_given() -> None:
    config = mirror_config({"bucket": "b-1", "sse": "AWS:KMS", "sse_kms_key_id": "alias/backup",
                            "storage_class": "glacier_ir", "checksum_algorithm": "crc64nvme",
                            "object_lock_mode": "Compliance", "object_lock_days": "30"})
    assert (config.sse, config.storage_class, config.checksum_algorithm, config.object_lock_mode,
            config.object_lock_days) == ("aws:kms", "GLACIER_IR", "CRC64NVME", "COMPLIANCE", 30)


def test_sse_kms_with_a_key_id_reaches_every_object(simulator, aps, s3, s3_server: S3Server):
    bucket = s3_server.new_bucket()
    run(engine_for(aps, s3, bucket, sse="aws:kms", sse_kms_key_id=s3_server.kms_key_id, checksum_algorithm="CRC32"))
    keys = all_keys(s3, bucket)
    assert any("/_aps_mirror/" in k for k in keys) and any("/_aps_mirror/" not in k for k in keys)
    # How this server names the key (SeaweedFS resolves an alias to the key's id).
    named = s3.put_object(Bucket=bucket, Key="probe", Body=b"x", ServerSideEncryption="aws:kms",
                          SSEKMSKeyId=s3_server.kms_key_id)["SSEKMSKeyId"]
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", named), key
    for entry in mirrored(s3, bucket).values():
        assert "ChecksumCRC32" in s3.head_object(Bucket=bucket, Key=entry["key"], ChecksumMode="ENABLED")


@pytest.mark.parametrize("s3_server", [n for n in SERVER_NAMES if n not in servers_with("checksum_verified")],
                         indirect=True)
def test_deep_verify_finds_bytes_that_no_longer_match_the_checksum_s3_stored(simulator, aps, s3, s3_server):
    """Rot after the write, as only a server that stores a checksum as given can stage it."""
    from aps_mirror.mirror.verify import verify_mirror

    bucket = s3_server.new_bucket()
    run(engine_for(aps, s3, bucket, checksum_algorithm="SHA256"))
    clean = verify_mirror(s3, bucket, PREFIX, deep=True)
    assert clean.clean and clean.objects_read > 0
    key, entry = next((e["key"], e) for e in mirrored(s3, bucket).values() if e["size"] < 8 * 1024 * 1024)
    head = s3.head_object(Bucket=bucket, Key=key)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    # The same bytes and metadata, under a checksum S3 did not compute from them.
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=head["Metadata"], ChecksumAlgorithm="SHA256",
                  ChecksumSHA256=sha256_b64(body + b"rot"))
    report = verify_mirror(s3, bucket, PREFIX, deep=True)
    assert [(f.key, f.why.split(" (")[0]) for f in report.corrupt] == \
        [(key, "its bytes do not match the checksum S3 stored for them")]
