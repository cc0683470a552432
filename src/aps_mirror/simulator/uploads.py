"""OSS direct-to-S3 uploads: sessions, signed part URLs, parts and completion (no HTTP).

One session per ``uploadKey`` (``GET signeds3upload`` without one begins a session; with one it
signs more parts of it). Parts arrive by PUT to signed URLs; ``POST signeds3upload`` assembles
them as S3's CompleteMultipartUpload would, checking the optional ``size`` and ``eTags``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field

from .clock import Clock
from .errors import NoSuchUpload, OSSError, SignedUrlDenied

UPLOAD_TTL = 24 * 3600.0  # "must be called within 24 hours of the upload beginning"
MAX_PARTS = 10_000  # S3's limit on part numbers
MAX_URLS = 25  # URLs per request (inferred: Autodesk's SDKs ask for at most 25 at a time)
MIN_PART = 5 * 1024 * 1024  # S3: every part but the last is at least 5 MiB
COMPLETED_KEPT = 1000  # completed sessions remembered, so a retried completion answers the same


@dataclass(eq=False)
class Session:
    upload_key: str
    bucket: str
    object_key: str
    expires: float  # the deadline to complete; later, the parts are discarded
    parts: dict[int, bytes] = field(default_factory=dict)


def etag(data: bytes) -> str:
    """S3's ETag of a part: the MD5 of its bytes, quoted."""
    return f'"{hashlib.md5(data).hexdigest()}"'


class Uploads:
    """Upload sessions of the simulated OSS, signed with a key of their own."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._completed: dict[str, tuple[str, str]] = {}  # upload key -> (bucket, object key)
        self._key = secrets.token_bytes(32)

    def session(self, bucket: str, object_key: str, upload_key: str | None) -> Session:
        """A new session, or the live one named by ``upload_key`` (400 when unknown or expired)."""
        now = self.clock.now()
        with self._lock:
            self._discard_expired(now)
            if upload_key is None:
                found = Session(secrets.token_hex(32), bucket, object_key, now + UPLOAD_TTL)
                self._sessions[found.upload_key] = found
                return found
            found = self._sessions.get(upload_key)
        if found is None or (found.bucket, found.object_key) != (bucket, object_key):
            raise OSSError(f"The uploadKey is unknown or expired for {bucket}/{object_key}.", 400)
        return found

    def sign(self, session: Session, part: int, expires: int) -> str:
        message = f"PUT|{session.bucket}/{session.object_key}|{session.upload_key}|{part}|{expires}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def put_part(self, bucket: str, object_key: str, upload_key: str, part: str, expires: str, signature: str,
                 data: bytes) -> str:
        """Store one part sent to a signed URL and return its ETag; S3's 403 when forged or expired."""
        try:
            number, expires_at = int(part), int(expires)
        except ValueError:
            raise SignedUrlDenied("Query-string authentication requires the Signature and Expires "
                                  "parameters") from None
        now = self.clock.now()
        with self._lock:
            self._discard_expired(now)
            found = self._sessions.get(upload_key)
            probe = found or Session(upload_key, bucket, object_key, 0.0)
            if (probe.bucket, probe.object_key) != (bucket, object_key) or not hmac.compare_digest(
                    self.sign(probe, number, expires_at), signature):
                raise SignedUrlDenied("The request signature we calculated does not match the signature you provided.")
            if now >= expires_at:
                raise SignedUrlDenied("Request has expired")
            if found is None:
                raise NoSuchUpload("The specified upload does not exist. The upload ID may be invalid, or the upload "
                                   "may have been aborted or completed.")
            found.parts[number] = data
        return etag(data)

    def complete(self, bucket: str, object_key: str, upload_key: str, size: int | None,
                 etags: list[str] | None) -> bytes | None:
        """The object's bytes: the parts in part-number order; 400 when none, a part but the last
        is under 5 MiB, or ``size`` / ``eTags`` differ from what arrived. None: this upload was
        completed before (a retried completion succeeds again, as S3's does)."""
        with self._lock:
            if self._completed.get(upload_key) == (bucket, object_key):
                return None
            self._discard_expired(self.clock.now())
            found = self._sessions.get(upload_key)
            if found is None or (found.bucket, found.object_key) != (bucket, object_key):
                raise OSSError(f"The uploadKey is unknown or expired for {bucket}/{object_key}.", 400)
            numbers = sorted(found.parts)
            if not numbers:
                raise OSSError("No part was uploaded: nothing to complete.", 400)
            if any(len(found.parts[n]) < MIN_PART for n in numbers[:-1]):
                raise OSSError("Your proposed upload is smaller than the minimum allowed size: every part but the "
                               "last must be at least 5 MiB.", 400)
            data = b"".join(found.parts[n] for n in numbers)
            if size is not None and size != len(data):
                raise OSSError(f"The size {size} does not match the uploaded object ({len(data)} bytes).", 400)
            if etags is not None and [t.strip('"') for t in etags] != [
                    etag(found.parts[n]).strip('"') for n in numbers]:
                raise OSSError("The eTags do not match the uploaded parts.", 400)
            del self._sessions[upload_key]
            self._completed[upload_key] = (bucket, object_key)
            while len(self._completed) > COMPLETED_KEPT:
                self._completed.pop(next(iter(self._completed)))
            return data

    def _discard_expired(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]
