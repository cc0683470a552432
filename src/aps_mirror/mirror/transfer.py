"""Transferring: stream one version from its source (Docs: a signed URL) into S3 with bounded memory.

Small files go up in one PUT; larger ones as a multipart upload whose parts are sent as
they arrive. Big files of known size (Revit models run to several GB) are fetched as byte
ranges in parallel, each range uploaded as its own part and retried alone when it fails.
Either way the object appears at its key only once every byte arrived and matched the
source's size (Autodesk's, and its SHA-1 when given): a failed transfer leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterator
from urllib.parse import quote

import requests

from aps_mirror.aps.retry import RETRYABLE_STATUSES
from aps_mirror.errors import ApiError, TransferError, s3_write
from aps_mirror.mirror.protection import copy_args
from aps_mirror.mirror.sources import ByteStream, Source
from aps_mirror.mirror.sources.records import RemoteFile
from aps_mirror.threads import ContextThreadPool

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024  # S3 needs >= 5 MiB per part; 8 MiB bounds memory per transfer
READ_CHUNK = 1024 * 1024
ATTEMPTS = 3
RANGED_THRESHOLD = 64 * 1024 * 1024  # from here on, parallel ranges beat one GET's throughput
PARTS_IN_FLIGHT = 4  # ranges fetched at once per file; memory is PARTS_IN_FLIGHT x part size
PART_ATTEMPTS = 4  # tries per byte range before the whole file counts as failed
MAX_PARTS = 10_000  # S3's limit per multipart upload
TIB = 1024 ** 4
MAX_OBJECT_SIZE = 5 * TIB  # S3's largest object: a bigger file cannot be mirrored at all

# Part failures worth another try: an expired or refused signed URL (403, signed again) and
# the transient statuses the transport already retried on its own.
_PART_RETRY_STATUSES = RETRYABLE_STATUSES | {403}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class NotDownloadable(Exception):
    """The source has no single downloadable object for this version (yet)."""


@dataclass(frozen=True)
class Transferred:
    size: int
    sha1: str
    reused: bool = False  # the bytes were already in the mirror: copied inside S3, not downloaded


def object_metadata(remote: RemoteFile, sha1: str | None = None) -> dict[str, str]:
    """S3 user metadata (ASCII only, so the source path is percent-encoded). `sha1`: the bytes'
    SHA-1 when known before the object is complete (computed, or the source's own, which the
    transfer checks before S3 makes the object visible), so an adopted object keeps it too."""
    version = remote.version
    return {
        "aps-item-id": remote.item_id,
        "aps-version-id": quote(version.id, safe=":"),
        "aps-version-number": str(version.version_number or ""),
        "aps-source-path": quote(remote.source_path, safe="/ "),
        **({"aps-sha1": sha1.lower()} if sha1 else {}),
    }


@dataclass(frozen=True)
class _Plan:
    """How to move the bytes: when to switch to parallel ranges, how big and how many at once."""

    ranged_threshold: int
    part_size: int
    parts_in_flight: int


def copy_version(source: Source, s3: Any, bucket: str, key: str, remote: RemoteFile,
                 on_bytes: Callable[[int], None] = lambda n: None,
                 mirrored: tuple[str, int, str | None] | None = None, *,
                 ranged_threshold: int = RANGED_THRESHOLD, part_size: int = PART_SIZE,
                 parts_in_flight: int = PARTS_IN_FLIGHT) -> Transferred:
    """Copy a file version to s3://bucket/key, retrying with a fresh download (signed URL).

    `mirrored` is (key, size, sha1) of the item's bytes already in the mirror: when the source's
    size and SHA-1 for the new version match them (a rename adds a version with the same
    content), the object is copied inside S3 instead of downloaded again. Files of known size
    at or above `ranged_threshold` are fetched as `parts_in_flight` parallel byte ranges of
    `part_size`; `on_bytes` may then be called from several threads.
    """
    _refuse_oversize(remote, remote.version.size)  # before any request: costs nothing each night
    plan = _Plan(ranged_threshold, part_size, max(1, parts_in_flight))
    last_error: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        reported = _Tally(on_bytes)
        try:
            with s3_write(bucket, key):
                return _copy_once(source, s3, bucket, key, remote, reported, mirrored, plan)
        except (TransferError, requests.RequestException, ApiError) as exc:
            reported.take_back()  # the progress counted bytes that will be sent again, or never
            if isinstance(exc, ApiError) and exc.status in (400, 401, 404):
                raise
            last_error = exc
            log.warning("copy of %s failed (attempt %d/%d): %s", remote.source_path, attempt,
                        ATTEMPTS, exc)
    raise TransferError(f"could not copy {remote.source_path} after {ATTEMPTS} attempts: {last_error}")


def _copy_once(source: Source, s3: Any, bucket: str, key: str, remote: RemoteFile,
               on_bytes: Callable[[int], None], mirrored: tuple[str, int, str | None] | None,
               plan: _Plan) -> Transferred:
    download = source.download(remote.version)
    expected_size = download.size if download.size is not None else remote.version.size
    _refuse_oversize(remote, expected_size)  # the size signed may differ from the one listed
    if mirrored is not None and download.sha1 and mirrored[2] == download.sha1.lower() \
            and mirrored[1] == expected_size:
        server_side_copy(s3, bucket, mirrored[0], key, remote, mirrored[2])
        on_bytes(expected_size)
        return Transferred(expected_size, mirrored[2], reused=True)
    if download.refusal or not download.url:
        raise NotDownloadable(download.refusal or "the source gave no place to read this version from")
    url = download.url
    if expected_size and expected_size >= plan.ranged_threshold:  # 0 bytes: nothing to range
        ranged_bytes = _Tally(on_bytes)
        copy = _RangedCopy(source, s3, bucket, key, remote, url, expected_size, download.sha1,
                           ranged_bytes, _part_size_for(expected_size, plan.part_size), plan.parts_in_flight)
        try:
            return copy.run()
        except _RangeIgnored:
            log.info("the signed URL of %s ignores Range requests; streaming it in one GET instead",
                     remote.source_path)
            ranged_bytes.take_back()
            url = copy.url  # possibly signed again meanwhile
    part_size = _part_size_for(expected_size or 0, plan.part_size)
    return _copy_streaming(source, s3, bucket, key, remote, url, expected_size, download.sha1,
                           on_bytes, part_size)


def _copy_streaming(source: Source, s3: Any, bucket: str, key: str, remote: RemoteFile, url: str,
                    expected_size: int | None, expected_sha1: str | None,
                    on_bytes: Callable[[int], None], part_size: int) -> Transferred:
    """One GET streamed into a PUT (small) or a multipart upload sent part by part."""
    digest = hashlib.sha1()
    size = 0
    buffer = bytearray()
    upload_id: str | None = None
    algorithm: str | None = None  # the upload's additional checksum, if the client adds one
    parts: list[dict[str, Any]] = []
    metadata = object_metadata(remote, expected_sha1)  # a multipart upload starts before the end
    try:
        with source.open_download(url) as response:
            for chunk in response.iter_content(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                on_bytes(len(chunk))
                if len(buffer) >= part_size:
                    if upload_id is None:
                        created = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)
                        upload_id, algorithm = created["UploadId"], created.get("ChecksumAlgorithm")
                    parts.append(_upload_part(s3, bucket, key, upload_id, len(parts) + 1, bytes(buffer), algorithm))
                    buffer.clear()
        sha1 = digest.hexdigest()
        _verify(remote, size, sha1, expected_size, expected_sha1)
        if upload_id is None:
            s3.put_object(Bucket=bucket, Key=key, Body=bytes(buffer), Metadata=object_metadata(remote, sha1))
        else:
            if buffer:
                parts.append(_upload_part(s3, bucket, key, upload_id, len(parts) + 1, bytes(buffer), algorithm))
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
            upload_id = None
        return Transferred(size, sha1)
    finally:
        if upload_id is not None:
            _abort_quietly(s3, bucket, key, upload_id)


# -- ranged parallel parts ----------------------------------------------------------------------

class _RangeIgnored(Exception):
    """The signed URL answered a Range request with the whole body (HTTP 200)."""


class _Cancelled(Exception):
    """Another part failed for good; this one stopped early."""


class _ShortBody(TransferError):
    """A range arrived with fewer bytes than asked (the connection was cut)."""


@dataclass
class _Part:
    entry: dict[str, Any]  # PartNumber + ETag, for complete_multipart_upload
    body: bytes | bytearray  # kept only until hashed in order


class _RangedCopy:
    """One file as parallel byte ranges, each uploaded as a part the moment it arrives.

    A sliding window of `parts_in_flight` ranges is consumed in order, so the SHA-1 of the
    whole file is computed as it would be from one stream while at most `parts_in_flight`
    parts are in memory. A failed range is fetched again alone; a 403 (expired signed URL)
    makes the first worker to see it ask the source again and the others reuse that URL.
    """

    def __init__(self, source: Source, s3: Any, bucket: str, key: str, remote: RemoteFile, url: str,
                 size: int, expected_sha1: str | None, on_bytes: Callable[[int], None],
                 part_size: int, parts_in_flight: int) -> None:
        self.source, self.s3, self.bucket, self.key, self.remote = source, s3, bucket, key, remote
        self.url = url  # the current signed URL; replaced under _lock when it expires
        self.size = size
        self.expected_sha1 = expected_sha1
        self.on_bytes = on_bytes
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight
        self._lock = threading.Lock()  # guards url and _failure
        self._stop = threading.Event()
        self._failure: BaseException | None = None  # the first part that failed for good
        self._upload_id = ""
        self._algorithm: str | None = None  # the upload's additional checksum, if any

    def run(self) -> Transferred:
        """Fetch, upload, hash and verify every part, then complete; abort on any failure."""
        created = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                  Metadata=object_metadata(self.remote, self.expected_sha1))
        self._upload_id, self._algorithm = created["UploadId"], created.get("ChecksumAlgorithm")
        completed = False
        try:
            sha1, size, parts = self._transfer_parts()
            _verify(self.remote, size, sha1, self.size, self.expected_sha1)
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                              MultipartUpload={"Parts": parts})
            completed = True
            return Transferred(size, sha1)
        finally:
            if not completed:  # workers have all stopped here, so no part lands after the abort
                _abort_quietly(self.s3, self.bucket, self.key, self._upload_id)

    def _transfer_parts(self) -> tuple[str, int, list[dict[str, Any]]]:
        """(SHA-1, bytes, part entries) of every range, hashed in order as the window slides."""
        digest = hashlib.sha1()
        size = 0
        entries: list[dict[str, Any]] = []
        spans = enumerate(_byte_ranges(self.size, self.part_size), start=1)
        with ContextThreadPool(max_workers=self.parts_in_flight, thread_name_prefix="aps-part") as pool:
            window: deque[Future[_Part]] = deque(
                pool.submit(self._run_part, number, start, end)
                for number, (start, end) in islice(spans, self.parts_in_flight))
            try:
                while window:
                    part = self._result(window.popleft())
                    digest.update(part.body)
                    size += len(part.body)
                    entries.append(part.entry)
                    del part  # drop the bytes before fetching another range: memory stays bounded
                    for number, (start, end) in islice(spans, 1):
                        window.append(pool.submit(self._run_part, number, start, end))
            except BaseException:
                self._stop.set()
                for future in window:
                    future.cancel()
                raise
        return digest.hexdigest(), size, entries

    def _result(self, future: Future[_Part]) -> _Part:
        try:
            return future.result()
        except _Cancelled:
            # This part only stopped because another one failed: report that one's reason.
            raise self._failure or TransferError(f"{self.remote.source_path}: transfer cancelled") from None

    def _run_part(self, number: int, start: int, end: int) -> _Part:
        try:
            return self._part(number, start, end)
        except _Cancelled:
            raise
        except BaseException as exc:
            with self._lock:
                self._failure = self._failure or exc
            self._stop.set()  # no use fetching more of a file that will be aborted
            raise

    def _part(self, number: int, start: int, end: int) -> _Part:
        """Fetch bytes start..end and upload them as part `number`, retrying this range alone."""
        for attempt in range(1, PART_ATTEMPTS + 1):
            self._check_running()
            url = self.url
            attempt_bytes = _Tally(self.on_bytes)
            try:
                body = self._fetch(url, start, end, attempt_bytes)
                self._check_running()
                entry = _upload_part(self.s3, self.bucket, self.key, self._upload_id, number, body,
                                     self._algorithm)
                return _Part(entry, body)
            except (_RangeIgnored, _Cancelled):
                attempt_bytes.take_back()
                raise
            except (requests.RequestException, ApiError, _ShortBody) as exc:
                attempt_bytes.take_back()  # these bytes will be counted again by the next try
                if isinstance(exc, ApiError) and exc.status not in _PART_RETRY_STATUSES:
                    raise
                if attempt == PART_ATTEMPTS:
                    raise TransferError(
                        f"{self.remote.source_path}: bytes {start}-{end} failed {PART_ATTEMPTS} times "
                        f"(last: {exc}); the whole file will be tried again") from exc
                log.warning("bytes %d-%d of %s failed (attempt %d/%d), fetching them again: %s",
                            start, end, self.remote.source_path, attempt, PART_ATTEMPTS, exc)
                if isinstance(exc, ApiError) and exc.status == 403:
                    self._sign_again(url)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _fetch(self, url: str, start: int, end: int, on_bytes: Callable[[int], None]) -> bytearray:
        """The bytes start..end (inclusive) of the signed URL, all of them or an error."""
        wanted = end - start + 1
        body = bytearray()
        with self.source.open_download(url, start, end) as response:
            _check_partial(response, start, end, self.size)
            for chunk in response.iter_content(READ_CHUNK):
                self._check_running()
                body += chunk
                on_bytes(len(chunk))
                if len(body) > wanted:  # a server ignoring the announced range: keep memory bounded
                    raise TransferError(f"{self.remote.source_path}: bytes {start}-{end} arrived as more "
                                        f"than the {wanted} bytes asked; run again")
        if len(body) != wanted:
            raise _ShortBody(f"{self.remote.source_path}: bytes {start}-{end} arrived as {len(body)} "
                             f"of {wanted} bytes (connection cut)")
        return body

    def _sign_again(self, stale_url: str) -> None:
        """Replace an expired signed URL, unless another part already did since `stale_url`
        was handed out: every worker hitting the same expiry causes one signing, not one each."""
        with self._lock:
            if self.url != stale_url:
                return
            download = self.source.download(self.remote.version)
            if download.refusal or not download.url:
                raise NotDownloadable(download.refusal or "the source gave no place to read this version from")
            self.url = download.url

    def _check_running(self) -> None:
        if self._stop.is_set():
            raise _Cancelled()


def _check_partial(response: ByteStream, start: int, end: int, size: int) -> None:
    """Accept only a 206 carrying exactly the range asked of an object of `size` bytes."""
    if response.status_code == 200:
        raise _RangeIgnored()
    if response.status_code != 206:
        raise TransferError(f"asked for bytes {start}-{end}, the signed URL answered HTTP "
                            f"{response.status_code}; run again, and report it if it persists")
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None or (int(match[1]), int(match[2])) != (start, end) or match[3] not in (str(size), "*"):
        raise TransferError(f"asked for bytes {start}-{end} of {size}, the signed URL answered "
                            f"Content-Range {response.headers.get('Content-Range')!r}; the object "
                            "changed size or a proxy rewrote the range: run again")
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) != end - start + 1:
        raise TransferError(f"asked for {end - start + 1} bytes ({start}-{end}), the signed URL "
                            f"announced {length}; run again")


def _byte_ranges(size: int, part_size: int) -> Iterator[tuple[int, int]]:
    """Inclusive (start, end) of each part of a `size`-byte object."""
    for start in range(0, size, part_size):
        yield start, min(start + part_size, size) - 1


def _refuse_oversize(remote: RemoteFile, size: int | None) -> None:
    if size is not None and size > MAX_OBJECT_SIZE:
        raise NotDownloadable(f"this version is {size / TIB:.1f} TiB ({size} bytes), over S3's 5 TiB "
                              "object limit; it cannot be mirrored")


def _part_size_for(size: int, part_size: int) -> int:
    """`part_size`, grown in whole MiB if the file would need more than S3's 10,000 parts."""
    least = -(-size // MAX_PARTS)
    mib = 1024 * 1024
    return max(part_size, -(-least // mib) * mib)


# -- shared ---------------------------------------------------------------------------------------

class _Tally:
    """Forwards byte counts to `on_bytes` (from any thread) and keeps their net sum, so a
    failed attempt can take back exactly the progress it reported."""

    def __init__(self, on_bytes: Callable[[int], None]) -> None:
        self._on_bytes = on_bytes
        self._lock = threading.Lock()
        self.total = 0

    def __call__(self, n: int) -> None:
        with self._lock:
            self.total += n
        self._on_bytes(n)

    def take_back(self) -> None:
        with self._lock:
            n, self.total = self.total, 0
        if n:
            self._on_bytes(-n)


def _verify(remote: RemoteFile, size: int, sha1: str, expected_size: int | None,
            expected_sha1: str | None) -> None:
    if expected_size is not None and size != expected_size:
        raise TransferError(f"{remote.source_path}: received {size} bytes, Autodesk said {expected_size}")
    if expected_sha1 and expected_sha1.lower() != sha1:
        raise TransferError(f"{remote.source_path}: SHA-1 {sha1} does not match Autodesk's {expected_sha1}")


def _upload_part(s3: Any, bucket: str, key: str, upload_id: str, number: int,
                 body: bytes | bytearray, algorithm: str | None) -> dict[str, Any]:
    answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    entry = {"PartNumber": number, "ETag": answer["ETag"]}
    if algorithm:  # the upload was created with an additional checksum: completing it lists each part's
        entry[f"Checksum{algorithm.upper()}"] = answer[f"Checksum{algorithm.upper()}"]
    return entry


def _abort_quietly(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload: never leave invisible, billable parts behind."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # the original error matters more
        log.warning("could not abort multipart upload of %s: %s", key, exc)


def server_side_copy(s3: Any, bucket: str, source_key: str, key: str, remote: RemoteFile,
                     sha1: str | None = None) -> None:
    """Copy an object already in the mirror to a new key (rename/move: no download); `sha1`:
    its bytes' SHA-1 when known, kept in the new object's metadata as on an upload."""
    with s3_write(bucket, key):
        s3.copy({"Bucket": bucket, "Key": source_key}, bucket, key,
                ExtraArgs={"Metadata": object_metadata(remote, sha1), "MetadataDirective": "REPLACE",
                           **copy_args(s3)})
