"""Transferring: stream one version from its signed URL into S3 with bounded memory.

Small files go up in one PUT; larger ones as a multipart upload whose parts are sent as
they arrive. Either way the object appears at its key only once every byte arrived and
matched Autodesk's size (and SHA-1 when given): a failed transfer leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

import requests

from aps_mirror.aps.client import ApsClient
from aps_mirror.errors import ApiError, TransferError
from aps_mirror.mirror.walk import RemoteFile

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB per part; 8 MiB bounds memory per transfer
READ_CHUNK = 1024 * 1024
ATTEMPTS = 3


class NotDownloadable(Exception):
    """Autodesk has no single downloadable object for this version (yet)."""


@dataclass(frozen=True)
class Transferred:
    size: int
    sha1: str
    reused: bool = False  # the bytes were already in the mirror: copied inside S3, not downloaded


def object_metadata(remote: RemoteFile) -> dict[str, str]:
    """S3 user metadata (ASCII only, so the source path is percent-encoded)."""
    version = remote.version
    return {
        "aps-item-id": remote.item.id,
        "aps-version-id": quote(version.id, safe=":"),
        "aps-version-number": str(version.version_number or ""),
        "aps-source-path": quote(remote.source_path, safe="/ "),
    }


def copy_version(client: ApsClient, s3: Any, bucket: str, key: str, remote: RemoteFile,
                 on_bytes: Callable[[int], None] = lambda n: None,
                 mirrored: tuple[str, int, str | None] | None = None) -> Transferred:
    """Copy a file version to s3://bucket/key, retrying with a fresh signed URL.

    `mirrored` is (key, size, sha1) of the item's bytes already in the mirror: when Autodesk's
    size and SHA-1 for the new version match them (a rename adds a version with the same
    content), the object is copied inside S3 instead of downloaded again.
    """
    last_error: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            on_bytes(n)

        try:
            return _copy_once(client, s3, bucket, key, remote, count, mirrored)
        except (TransferError, requests.RequestException, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status in (400, 401, 404):
                raise
            last_error = exc
            on_bytes(-sent)  # the progress counted bytes that will be sent again
            log.warning("copy of %s failed (attempt %d/%d): %s", remote.source_path, attempt,
                        ATTEMPTS, exc)
    raise TransferError(f"could not copy {remote.source_path} after {ATTEMPTS} attempts: {last_error}")


def _copy_once(client: ApsClient, s3: Any, bucket: str, key: str, remote: RemoteFile,
               on_bytes: Callable[[int], None], mirrored: tuple[str, int, str | None] | None) -> Transferred:
    signed = client.signed_download(remote.version)
    expected_size = signed.size if signed.size is not None else remote.version.storage_size
    if mirrored is not None and signed.sha1 and mirrored[2] == signed.sha1.lower() \
            and mirrored[1] == expected_size:
        server_side_copy(s3, bucket, mirrored[0], key, remote)
        on_bytes(expected_size)
        return Transferred(expected_size, mirrored[2], reused=True)
    if signed.status != "complete" or not signed.url:
        raise NotDownloadable(f"Autodesk offers this version as {signed.status!r} storage, "
                              "not as one downloadable object")
    digest = hashlib.sha1()
    size = 0
    buffer = bytearray()
    upload_id: str | None = None
    parts: list[dict[str, Any]] = []
    metadata = object_metadata(remote)
    try:
        with client.open_signed_url(signed.url) as response:
            for chunk in response.iter_content(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                on_bytes(len(chunk))
                if len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)["UploadId"]
                    parts.append(_upload_part(s3, bucket, key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
        sha1 = digest.hexdigest()
        if expected_size is not None and size != expected_size:
            raise TransferError(f"{remote.source_path}: received {size} bytes, Autodesk said {expected_size}")
        if signed.sha1 and signed.sha1.lower() != sha1:
            raise TransferError(f"{remote.source_path}: SHA-1 {sha1} does not match Autodesk's {signed.sha1}")
        if upload_id is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), Metadata=metadata)
        else:
            if buffer:
                parts.append(_upload_part(s3, bucket, key, upload_id, len(parts) + 1, bytes(buffer)))
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
            upload_id = None
        return Transferred(size, sha1)
    finally:
        if upload_id is not None:  # never leave invisible, billable parts behind
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception as exc:  # the original error matters more
                log.warning("could not abort multipart upload of %s: %s", key, exc)


def _upload_part(s3: Any, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
    answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    return {"PartNumber": number, "ETag": answer["ETag"]}


def server_side_copy(s3: Any, bucket: str, source_key: str, key: str, remote: RemoteFile) -> None:
    """Copy an object already in the mirror to a new key (rename/move: no download)."""
    s3.copy({"Bucket": bucket, "Key": source_key}, bucket, key,
            ExtraArgs={"Metadata": object_metadata(remote), "MetadataDirective": "REPLACE"})
