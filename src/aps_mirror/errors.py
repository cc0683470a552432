"""Typed errors of aps-mirror; each message says what happened and what to do next.

The core raises these; the Airflow layer converts them at its edge.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class ApsMirrorError(Exception):
    """Base class of every error aps-mirror raises on purpose."""


class ConfigError(ApsMirrorError):
    """A connection, parameter or file the user supplied is missing or malformed."""


class ApiError(ApsMirrorError):
    """APS answered with an error status that retrying will not fix."""

    def __init__(self, message: str, *, status: int, code: str | None = None,
                 endpoint: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.endpoint = endpoint
        self.request_id = request_id


class RateLimited(ApiError):
    """APS kept answering 429 after every retry."""


class AuthError(ApsMirrorError):
    """Authentication failed: bad client credentials, or a refresh token that no longer works."""


class ReauthorizationRequired(AuthError):
    """The refresh token is invalid or expired: a person must authorize the app again."""


class TransferError(ApsMirrorError):
    """A file could not be copied intact (size or checksum mismatch, broken download)."""


class S3WriteRefused(ApsMirrorError):
    """S3 answered AccessDenied to a write or delete: the credentials may read the mirror, not change it."""

    def __init__(self, bucket: str, key: str, *, prefix: str | None = None, action: str = "write") -> None:
        where = (f"s3://{bucket}/{prefix.strip('/')}/*" if prefix and prefix.strip("/")
                 else f"the mirror's prefix in s3://{bucket}")
        super().__init__(
            f"S3 refused to {action} s3://{bucket}/{key} (AccessDenied): give the credentials of the "
            f"run's AWS connection (--aws-conn-id, or the DAG's aws_conn_id) s3:PutObject, s3:DeleteObject "
            f"and s3:AbortMultipartUpload on {where}, then run again.")
        self.bucket, self.key, self.action = bucket, key, action

    @classmethod
    def of(cls, exc: BaseException, bucket: str, key: str, *, prefix: str | None = None,
           action: str = "write") -> S3WriteRefused | None:
        """`exc` (a botocore ClientError) as this error when S3 answered AccessDenied, else None."""
        response = getattr(exc, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        return cls(bucket, key, prefix=prefix, action=action) if code == "AccessDenied" else None


@contextmanager
def s3_write(bucket: str, key: str, *, prefix: str | None = None, action: str = "write") -> Iterator[None]:
    """Around a write (or delete) of s3://bucket/key: S3's AccessDenied becomes S3WriteRefused,
    one line naming the object and the permissions to grant; other errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        refused = S3WriteRefused.of(exc, bucket, key, prefix=prefix, action=action)
        if refused is None:
            raise
        raise refused from None
