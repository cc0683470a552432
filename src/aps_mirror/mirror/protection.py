"""What protects the mirror's objects in S3, applied to every request of the run's S3 client.

The options (`storage_class`, `sse`, `sse_kms_key_id`, `expected_bucket_owner`, `object_tags`,
`checksum_algorithm`, `object_lock_mode` with `object_lock_days`, `legal_hold`) become botocore
event handlers on the client (`ObjectProtection.install`), so every request the engine, the
manifest store, the lease, the catalog and s3transfer's managed copies send carries them: no
call site can forget one.

- `ExpectedBucketOwner` on every request that takes it: a bucket deleted and re-created by
  another account is refused by S3 itself, before a byte is read or written.
- SSE-S3 or SSE-KMS, and the additional checksum, on every object written. S3 computes the
  checksum from the bytes it receives and keeps it (`verify` reads it back).
- On mirrored files only (tips, kept versions, trashed copies; not the bookkeeping rewritten
  every run): the storage class, tags (hub, project and item ids) and Object Lock retention
  or legal hold. A delete on a versioned (locked) bucket leaves a delete marker: the locked
  version stays, and the run says so in the delete's event.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from urllib.parse import urlencode

from aps_mirror.errors import ConfigError
from aps_mirror.mirror.keys import holds_file

log = logging.getLogger(__name__)

# Storage classes a mirror can live in: it must read its objects back (verify) and copy them
# inside S3 (renames, kept versions) at any time, which archive classes refuse until restored.
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR")
SSE_MODES = ("AES256", "aws:kms")
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
MAX_LOCK_DAYS = 36500

_WRITES = ("PutObject", "CreateMultipartUpload", "CopyObject")
_CHECKSUMMED = (*_WRITES, "UploadPart")
# S3 tag values: letters, digits, spaces and + - = . _ : / @, at most 256 characters.
_TAG_UNSAFE = re.compile(r"[^\w +\-=._:/@]")

# The protection installed on each client, for what must be passed explicitly (copy_args).
_installed: weakref.WeakKeyDictionary[Any, ObjectProtection] = weakref.WeakKeyDictionary()

# The project being synced in this context (and the threads it starts): its objects' tags.
_project_tags: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("aps_mirror_tags", default={})


@contextmanager
def tagging(hub_id: str, project_id: str) -> Iterator[None]:
    """Objects written in this block (by any thread it starts) are tagged with these ids."""
    token = _project_tags.set({"aps-hub-id": hub_id, "aps-project-id": project_id})
    try:
        yield
    finally:
        _project_tags.reset(token)


@dataclass(frozen=True)
class ObjectProtection:
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    expected_bucket_owner: str | None = None
    object_tags: bool = False
    checksum_algorithm: str | None = None
    object_lock_mode: str | None = None
    object_lock_days: int | None = None
    legal_hold: bool = False

    def __post_init__(self) -> None:
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise ConfigError("sse_kms_key_id is given but sse is not aws:kms: set sse to aws:kms, "
                              "or leave the key id empty.")
        if bool(self.object_lock_mode) != bool(self.object_lock_days):
            raise ConfigError("object_lock_mode and object_lock_days go together: set both (e.g. "
                              "GOVERNANCE and 30), or neither.")

    @property
    def locks(self) -> bool:
        """Whether mirrored files get a retention or a legal hold (the bucket must allow it)."""
        return bool(self.object_lock_mode) or self.legal_hold

    @property
    def active(self) -> bool:
        return self != ObjectProtection()

    def install(self, s3: Any) -> Any:
        """Register the handlers on `s3` (once per client) and return it."""
        if not self.active:
            return s3
        _installed[s3] = self
        events = s3.meta.events
        events.register("before-parameter-build.s3", self._add_owner, unique_id="aps-mirror-owner")
        for operation in _CHECKSUMMED:
            events.register(f"before-parameter-build.s3.{operation}", self._add_object_args,
                            unique_id=f"aps-mirror-protect-{operation}")
        if self.locks:
            events.register("after-call.s3.CopyObject", functools.partial(self._lock_copy, weakref.ref(s3)),
                            unique_id="aps-mirror-lock-copy")
        return s3

    def check_bucket(self, s3: Any, bucket: str) -> None:
        """Refuse, in one line, options the bucket cannot honour (before anything is written)."""
        if not self.locks:
            return
        try:
            config = s3.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
        except Exception as exc:  # botocore's ClientError, without importing botocore here
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code != "ObjectLockConfigurationNotFoundError":
                raise
            config = {}
        if config.get("ObjectLockEnabled") != "Enabled":
            raise ConfigError(f"Bucket {bucket!r} does not have S3 Object Lock enabled, so object_lock_mode / "
                              "legal_hold cannot apply: enable Object Lock on the bucket (it needs versioning), "
                              "or drop those options.")

    # -- the handlers --------------------------------------------------------------------------
    def _add_owner(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.expected_bucket_owner:
            return
        members = model.input_shape.members if model.input_shape is not None else {}
        for name in ("ExpectedBucketOwner", "ExpectedSourceBucketOwner"):
            if name in members:
                params.setdefault(name, self.expected_bucket_owner)

    def _lock_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.object_lock_mode and self.object_lock_days:
            args["ObjectLockMode"] = self.object_lock_mode
            args["ObjectLockRetainUntilDate"] = datetime.now(timezone.utc) + timedelta(days=self.object_lock_days)
        if self.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args

    def _lock_copy(self, client: weakref.ref[Any], http_response: Any, parsed: dict[str, Any],
                   context: dict[str, Any], **_: Any) -> None:
        """After a copy of a mirrored file: its new version gets the retention and legal hold."""
        target, s3 = context.get("aps_mirror_locks"), client()
        if target is None or s3 is None or http_response.status_code >= 300:
            return
        bucket, key = target
        version = {"VersionId": parsed["VersionId"]} if parsed.get("VersionId") else {}
        lock = self._lock_args()
        if "ObjectLockMode" in lock:
            s3.put_object_retention(Bucket=bucket, Key=key, **version, Retention={
                "Mode": lock["ObjectLockMode"], "RetainUntilDate": lock["ObjectLockRetainUntilDate"]})
        if self.legal_hold:
            s3.put_object_legal_hold(Bucket=bucket, Key=key, **version, LegalHold={"Status": "ON"})

    def _add_object_args(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        operation = model.name
        if self.checksum_algorithm:  # a part's too: the upload was created with the algorithm
            params.setdefault("ChecksumAlgorithm", self.checksum_algorithm)
        if operation not in _WRITES:
            return
        if self.sse:
            params.setdefault("ServerSideEncryption", self.sse)
            if self.sse_kms_key_id:
                params.setdefault("SSEKMSKeyId", self.sse_kms_key_id)
        if not holds_file(params.get("Key", "")):
            return  # the mirror's bookkeeping: rewritten every run, never locked or archived
        if self.storage_class:
            params.setdefault("StorageClass", self.storage_class)
        if operation == "CopyObject":
            # Locked right after the copy (_lock_copy), by the new version's id: S3 implementations
            # disagree on what a CopyObject carrying lock headers needs (moto asks an MD5 of no body).
            context["aps_mirror_locks"] = (params["Bucket"], params["Key"])
        else:
            params.update(self._lock_args())
        if self.object_tags:
            tags = self._tags(params)
            if tags:
                params["Tagging"] = urlencode(tags)
                if operation == "CopyObject":  # the copy is this item's object, whatever the source's tags
                    params["TaggingDirective"] = "REPLACE"

    @staticmethod
    def _tags(params: dict[str, Any]) -> dict[str, str]:
        tags = dict(_project_tags.get())
        item = (params.get("Metadata") or {}).get("aps-item-id")
        if item:
            tags["aps-item-id"] = item
        return {k: _TAG_UNSAFE.sub("_", v)[:256] for k, v in tags.items() if v}


def retained_until(protection: ObjectProtection) -> str | None:
    """How a delete on a locked mirror is explained: what stays, and until when."""
    if not protection.locks:
        return None
    if protection.legal_hold:
        return "a delete marker hides it; its versions stay under legal hold until the hold is removed"
    return (f"a delete marker hides it; its versions stay locked ({protection.object_lock_mode}) for "
            f"{protection.object_lock_days} day(s) after they were written")


def copy_args(s3: Any) -> dict[str, Any]:
    """ExtraArgs for a managed copy (`s3.copy`) on this client: s3transfer must know the
    checksum algorithm itself to list each part's checksum when a large copy completes."""
    protection = _installed.get(s3)
    return {"ChecksumAlgorithm": protection.checksum_algorithm} if protection and protection.checksum_algorithm else {}
