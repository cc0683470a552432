"""Typed errors of aps-mirror; each message says what happened and what to do next.

The core raises these; the Airflow layer converts them at its edge.
"""

from __future__ import annotations


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
