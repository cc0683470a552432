"""The S3 behaviour the mirror's protections rely on, on moto and on SeaweedFS (tests/s3_servers.py).

Each capability is tested on the servers that have it; UNSUPPORTED lists the others, and
test_unsupported_is_still_unsupported proves each entry, so a server upgrade that closes a gap
fails here until the table is updated.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from botocore.exceptions import ClientError

from tests.s3_servers import CAPABILITIES, SERVER_NAMES, UNSUPPORTED, S3Server, servers_with

OTHER_ACCOUNT = "999999999999"
PART = 5 * 1024 * 1024  # S3's smallest part but the last


def on(capability: str):
    return pytest.mark.parametrize("s3_server", servers_with(capability), indirect=True)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return excinfo.value.response["Error"]["Code"]


def tomorrow() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=1)


def versions(s3, bucket: str, key: str) -> tuple[list[str], list[str]]:
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return ([v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key],
            [m["VersionId"] for m in listing.get("DeleteMarkers", []) if m["Key"] == key])


# --- Object Lock --------------------------------------------------------------------------------

@on("object_lock")
def test_default_retention_refuses_deleting_the_locked_version(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    version = s3.put_object(Bucket=bucket, Key="a.dwg", Body=b"v1")["VersionId"]

    head = s3.head_object(Bucket=bucket, Key="a.dwg", VersionId=version)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc) + timedelta(hours=23)

    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="a.dwg", VersionId=version)
    assert error_code(refused) == "AccessDenied"
    batch = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a.dwg", "VersionId": version}]})
    assert [(e["Key"], e["Code"]) for e in batch["Errors"]] == [("a.dwg", "AccessDenied")]
    assert s3.get_object(Bucket=bucket, Key="a.dwg", VersionId=version)["Body"].read() == b"v1"

    # A delete without a version id only stacks a delete marker: allowed, and the bytes stay.
    marker = s3.delete_object(Bucket=bucket, Key="a.dwg")
    assert marker["DeleteMarker"] is True
    assert versions(s3, bucket, "a.dwg") == ([version], [marker["VersionId"]])

    # GOVERNANCE gives way to the bypass (a permission a mirror's role should not hold).
    s3.delete_object(Bucket=bucket, Key="a.dwg", VersionId=version, BypassGovernanceRetention=True)
    assert versions(s3, bucket, "a.dwg") == ([], [marker["VersionId"]])


@on("object_lock")
def test_compliance_retention_refuses_even_the_bypass(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    version = s3.put_object(Bucket=bucket, Key="b.rvt", Body=b"x", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=tomorrow())["VersionId"]
    assert s3.head_object(Bucket=bucket, Key="b.rvt")["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="b.rvt", VersionId=version, BypassGovernanceRetention=True)
    assert error_code(refused) == "AccessDenied"
    assert versions(s3, bucket, "b.rvt") == ([version], [])


@on("object_lock")
def test_retention_put_on_an_existing_version_locks_it(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    version = s3.put_object(Bucket=bucket, Key="c.pdf", Body=b"x")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="c.pdf", VersionId=version)  # no default rule: not locked
    version = s3.put_object(Bucket=bucket, Key="c.pdf", Body=b"y")["VersionId"]
    s3.put_object_retention(Bucket=bucket, Key="c.pdf", VersionId=version,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": tomorrow()})
    assert s3.head_object(Bucket=bucket, Key="c.pdf", VersionId=version)["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="c.pdf", VersionId=version)
    assert error_code(refused) == "AccessDenied"


def locked_multipart_upload(s3, bucket: str, key: str) -> dict:
    """A two-part upload created with a GOVERNANCE retention; HeadObject of the result."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=tomorrow())["UploadId"]
    done = []
    for number, part in enumerate((b"m" * PART, b"end"), start=1):
        sent = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part)
        done.append({"PartNumber": number, "ETag": sent["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done})
    return s3.head_object(Bucket=bucket, Key=key)


@on("multipart_object_lock")
def test_a_multipart_upload_created_with_a_retention_is_locked(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    head = locked_multipart_upload(s3, bucket, "big.rvt")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="big.rvt", VersionId=head["VersionId"])
    assert error_code(refused) == "AccessDenied"


def shortfall_multipart_object_lock(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket(object_lock=True)
    assert "ObjectLockMode" not in locked_multipart_upload(s3, bucket, "big.rvt")


@on("retention_read")
def test_object_retention_reads_back(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    until = tomorrow().replace(microsecond=0)
    version = s3.put_object(Bucket=bucket, Key="d.nwd", Body=b"x", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]
    retention = s3.get_object_retention(Bucket=bucket, Key="d.nwd", VersionId=version)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    assert abs(retention["RetainUntilDate"] - until) < timedelta(seconds=1)


@on("compliance_shortening_refused")
def test_compliance_retention_cannot_be_shortened(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    until = tomorrow()
    version = s3.put_object(Bucket=bucket, Key="e.ifc", Body=b"x", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.put_object_retention(Bucket=bucket, Key="e.ifc", VersionId=version, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=1)})
    assert error_code(refused) == "AccessDenied"


@on("legal_hold")
def test_legal_hold_refuses_deleting_until_released(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(object_lock=True)
    version = s3.put_object(Bucket=bucket, Key="f.dwg", Body=b"x",
                            ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=bucket, Key="f.dwg", VersionId=version)["LegalHold"] == {"Status": "ON"}
    assert s3.head_object(Bucket=bucket, Key="f.dwg")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key="f.dwg", VersionId=version, BypassGovernanceRetention=True)
    assert error_code(refused) == "AccessDenied"

    s3.put_object_legal_hold(Bucket=bucket, Key="f.dwg", VersionId=version, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=bucket, Key="f.dwg", VersionId=version)
    assert versions(s3, bucket, "f.dwg") == ([], [])


@on("delete_marker")
def test_delete_on_a_versioned_bucket_leaves_a_marker_and_the_bytes(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket(versioned=True)
    version = s3.put_object(Bucket=bucket, Key="g.txt", Body=b"kept")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="g.txt")
    assert marker["DeleteMarker"] is True
    assert versions(s3, bucket, "g.txt") == ([version], [marker["VersionId"]])
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket=bucket, Key="g.txt")
    assert error_code(gone) == "NoSuchKey"
    assert s3.get_object(Bucket=bucket, Key="g.txt", VersionId=version)["Body"].read() == b"kept"


# --- Encryption, tags, storage class, bucket owner ----------------------------------------------

@on("sse_s3")
def test_sse_s3_is_stored_and_returned(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    put = s3.put_object(Bucket=bucket, Key="h.bin", Body=b"secret bytes", ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="h.bin")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="h.bin")["Body"].read() == b"secret bytes"

    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert s3.put_object(Bucket=bucket, Key="i.bin", Body=b"x")["ServerSideEncryption"] == "AES256"


@on("sse_kms")
def test_sse_kms_with_a_key_is_stored_and_returned(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    put = s3.put_object(Bucket=bucket, Key="j.bin", Body=b"kms bytes",
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=s3_server.kms_key_id)
    assert put["ServerSideEncryption"] == "aws:kms"
    head = s3.head_object(Bucket=bucket, Key="j.bin")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == put["SSEKMSKeyId"]  # the key id, or the alias resolved to it
    assert s3.get_object(Bucket=bucket, Key="j.bin")["Body"].read() == b"kms bytes"


@on("sse_kms_unknown_key_refused")
def test_sse_kms_with_an_unknown_key_is_refused(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="k.bin", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="alias/no-such-key")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@on("tagging")
def test_tags_at_upload_and_after(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    s3.put_object(Bucket=bucket, Key="l.dwg", Body=b"x", Tagging="hub=b.1&project=b.2&item=urn%3Aadsk")
    tags = s3.get_object_tagging(Bucket=bucket, Key="l.dwg")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("hub", "b.1"), ("item", "urn:adsk"), ("project", "b.2")]
    s3.put_object_tagging(Bucket=bucket, Key="l.dwg", Tagging={"TagSet": [{"Key": "hub", "Value": "b.3"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="l.dwg")["TagSet"] == [{"Key": "hub", "Value": "b.3"}]


@on("storage_class")
def test_storage_class_is_returned(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    s3.put_object(Bucket=bucket, Key="m.dwg", Body=b"x", StorageClass="STANDARD_IA")
    assert s3.head_object(Bucket=bucket, Key="m.dwg")["StorageClass"] == "STANDARD_IA"
    assert [o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["STANDARD_IA"]


@on("archive_read_refused")
def test_deep_archive_is_not_readable_before_a_restore(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    s3.put_object(Bucket=bucket, Key="n.dwg", Body=b"x", StorageClass="DEEP_ARCHIVE")
    with pytest.raises(ClientError) as refused:
        s3.get_object(Bucket=bucket, Key="n.dwg")
    assert error_code(refused) == "InvalidObjectState"


def test_an_upload_to_a_missing_bucket_is_refused(s3_server: S3Server):
    """No server makes a bucket behind the mirror's back (SeaweedFS would, without -s3.autoCreateBucket=false)."""
    s3 = s3_server.client()
    missing = f"missing-{s3_server.name}-bucket"
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=missing, Key="x", Body=b"x")
    assert error_code(refused) == "NoSuchBucket"
    assert missing not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_the_owners_expected_bucket_owner_is_accepted(s3_server: S3Server):
    """The mirror passes ExpectedBucketOwner on every call: the right owner must never get in the way."""
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    owner = {"ExpectedBucketOwner": s3_server.account_id}
    s3.head_bucket(Bucket=bucket, **owner)
    s3.put_object(Bucket=bucket, Key="o.txt", Body=b"x", **owner)
    assert s3.get_object(Bucket=bucket, Key="o.txt", **owner)["Body"].read() == b"x"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, **owner)["Contents"]] == ["o.txt"]
    s3.delete_object(Bucket=bucket, Key="o.txt", **owner)


# --- Additional checksums -----------------------------------------------------------------------

@on("checksum_returned")
@pytest.mark.parametrize(("algorithm", "expected"), [("SHA256", sha256_b64), ("CRC32", crc32_b64)])
def test_checksum_of_a_single_put_is_kept(s3_server: S3Server, algorithm: str, expected: Callable):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    body = b"mirror bytes " * 100
    put = s3.put_object(Bucket=bucket, Key="p.bin", Body=body, ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == expected(body)
    head = s3.head_object(Bucket=bucket, Key="p.bin", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected(body)
    # The value the mirror computed itself, sent with the algorithm, is kept the same way.
    s3.put_object(Bucket=bucket, Key="q.bin", Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(body))
    assert s3.head_object(Bucket=bucket, Key="q.bin", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha256_b64(body)


@on("checksum_header_alone_kept")
def test_a_checksum_header_alone_is_kept(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    s3.put_object(Bucket=bucket, Key="q.bin", Body=b"mine", ChecksumSHA256=sha256_b64(b"mine"))
    assert s3.head_object(Bucket=bucket, Key="q.bin", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha256_b64(b"mine")


def upload_in_parts(s3, bucket: str, key: str, parts: list[bytes]) -> dict:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    done = []
    for number, part in enumerate(parts, start=1):
        sent = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part,
                              ChecksumAlgorithm="SHA256")
        assert sent["ChecksumSHA256"] == sha256_b64(part)
        done.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": sent["ChecksumSHA256"]})
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done})


def composite_sha256(parts: list[bytes]) -> str:
    return sha256_b64(b"".join(hashlib.sha256(part).digest() for part in parts))


@on("checksum_returned")
def test_checksum_of_a_multipart_upload_is_kept(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    parts = [b"a" * PART, b"tail"]
    upload_in_parts(s3, bucket, "r.bin", parts)
    head = s3.head_object(Bucket=bucket, Key="r.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == composite_sha256(parts)
    assert s3.get_object(Bucket=bucket, Key="r.bin")["Body"].read() == b"".join(parts)


@on("multipart_checksum_composite")
def test_multipart_checksum_is_composite_with_the_part_count(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    parts = [b"b" * PART, b"c" * PART, b"end"]
    completed = upload_in_parts(s3, bucket, "s.bin", parts)
    assert completed["ChecksumSHA256"] == f"{composite_sha256(parts)}-3"
    head = s3.head_object(Bucket=bucket, Key="s.bin", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (f"{composite_sha256(parts)}-3", "COMPOSITE")


@on("checksum_verified")
def test_a_body_that_does_not_match_its_checksum_is_refused(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="t.bin", Body=b"what was read",
                      ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(b"what was meant"))
    assert error_code(refused) == "BadDigest"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    upload = s3.create_multipart_upload(Bucket=bucket, Key="u.bin", ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as refused:
        s3.upload_part(Bucket=bucket, Key="u.bin", UploadId=upload, PartNumber=1, Body=b"part",
                       ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(b"other part"))
    assert error_code(refused) == "BadDigest"
    s3.abort_multipart_upload(Bucket=bucket, Key="u.bin", UploadId=upload)


@on("object_attributes_checksum")
def test_object_attributes_carry_the_checksum(s3_server: S3Server):
    s3 = s3_server.client()
    bucket = s3_server.new_bucket()
    s3.put_object(Bucket=bucket, Key="v.bin", Body=b"attrs", ChecksumAlgorithm="SHA256")
    attributes = s3.get_object_attributes(Bucket=bucket, Key="v.bin", ObjectAttributes=["Checksum", "ObjectSize"])
    assert attributes["Checksum"]["ChecksumSHA256"] == sha256_b64(b"attrs")
    assert attributes["ObjectSize"] == 5


# --- The table of gaps stays true ---------------------------------------------------------------

def shortfall_retention_read(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket(object_lock=True)
    version = s3.put_object(Bucket=bucket, Key="w", Body=b"x", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=tomorrow())["VersionId"]
    with pytest.raises(ClientError) as failed:
        s3.get_object_retention(Bucket=bucket, Key="w", VersionId=version)
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert s3.head_object(Bucket=bucket, Key="w", VersionId=version)["ObjectLockMode"] == "GOVERNANCE"


def shortfall_compliance_shortening_refused(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket(object_lock=True)
    until = tomorrow().replace(microsecond=0)
    version = s3.put_object(Bucket=bucket, Key="w", Body=b"x", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=until)["VersionId"]
    shorter = until - timedelta(hours=1)
    s3.put_object_retention(Bucket=bucket, Key="w", VersionId=version,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter})
    assert s3.head_object(Bucket=bucket, Key="w", VersionId=version)["ObjectLockRetainUntilDate"] == shorter


def shortfall_sse_kms_unknown_key_refused(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    put = s3.put_object(Bucket=bucket, Key="w", Body=b"x", ServerSideEncryption="aws:kms",
                        SSEKMSKeyId="alias/no-such-key")
    assert put["SSEKMSKeyId"] == "alias/no-such-key"


def shortfall_checksum_header_alone_kept(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    s3.put_object(Bucket=bucket, Key="w", Body=b"mine", ChecksumSHA256=sha256_b64(b"mine"))
    assert "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="w", ChecksumMode="ENABLED")


def shortfall_checksum_verified(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    s3.put_object(Bucket=bucket, Key="w", Body=b"what was read",
                  ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(b"what was meant"))
    stored = s3.head_object(Bucket=bucket, Key="w", ChecksumMode="ENABLED")["ChecksumSHA256"]
    assert stored == sha256_b64(b"what was meant")  # the client's GET check is the only one left


def shortfall_multipart_checksum_composite(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    parts = [b"d" * PART, b"end"]
    completed = upload_in_parts(s3, bucket, "w", parts)
    assert "ChecksumSHA256" not in completed
    head = s3.head_object(Bucket=bucket, Key="w", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite_sha256(parts)


def shortfall_expected_bucket_owner(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    stranger = {"ExpectedBucketOwner": OTHER_ACCOUNT}
    s3.head_bucket(Bucket=bucket, **stranger)
    s3.put_object(Bucket=bucket, Key="w", Body=b"x", **stranger)
    assert s3.get_object(Bucket=bucket, Key="w", **stranger)["Body"].read() == b"x"


def shortfall_archive_read_refused(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    s3.put_object(Bucket=bucket, Key="w", Body=b"cold", StorageClass="DEEP_ARCHIVE")
    assert s3.head_object(Bucket=bucket, Key="w")["StorageClass"] == "DEEP_ARCHIVE"
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"cold"


def shortfall_object_attributes_checksum(server: S3Server) -> None:
    s3 = server.client()
    bucket = server.new_bucket()
    s3.put_object(Bucket=bucket, Key="w", Body=b"attrs", ChecksumAlgorithm="SHA256")
    attributes = s3.get_object_attributes(Bucket=bucket, Key="w", ObjectAttributes=["Checksum", "ObjectSize"])
    assert "Checksum" not in attributes and attributes["ObjectSize"] == 5
    assert s3.head_object(Bucket=bucket, Key="w", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha256_b64(b"attrs")


SHORTFALLS: dict[str, Callable[[S3Server], None]] = {
    name.removeprefix("shortfall_"): function
    for name, function in globals().items() if name.startswith("shortfall_")
}


@pytest.mark.parametrize(("server_name", "capability"), sorted(UNSUPPORTED))
def test_unsupported_is_still_unsupported(request: pytest.FixtureRequest, server_name: str, capability: str):
    SHORTFALLS[capability](request.getfixturevalue(f"{server_name}_s3"))


def test_the_table_names_known_servers_and_capabilities():
    assert {server for server, _ in UNSUPPORTED} <= set(SERVER_NAMES)
    assert {capability for _, capability in UNSUPPORTED} <= set(SHORTFALLS) <= set(CAPABILITIES)
