"""The simulator's error hierarchy; app.py maps each family to its Autodesk envelope."""

from __future__ import annotations


class SimError(Exception):
    """Base of every error the simulator answers with."""

    status: int = 500

    def __init__(self, message: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class DataManagementError(SimError):
    """Data Management / Project API error: JSON:API ``errors[]`` envelope."""

    code = "ERROR"
    title = "Error"

    def __init__(self, detail: str, status: int | None = None, code: str | None = None,
                 title: str | None = None) -> None:
        super().__init__(detail, status)
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title


class NotFound(DataManagementError):
    status = 404
    code = "NOT_FOUND"
    title = "Not Found"


class BadInput(DataManagementError):
    status = 400
    code = "BAD_INPUT"
    title = "One or more input values in the request were bad"


class Forbidden(DataManagementError):
    """The user may not change this folder (Data Management's own 403, not the gateway's)."""

    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class Conflict(DataManagementError):
    """A visible folder or item of that name already exists in the folder."""

    status = 409
    code = "CONFLICT"
    title = "Conflict"


class GatewayError(SimError):
    """API gateway error: ``{"developerMessage","userMessage","errorCode","more info"}``."""

    error_code = ""

    def __init__(self, message: str, status: int | None = None, error_code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status)
        if error_code is not None:
            self.error_code = error_code
        self.headers = headers or {}


class InvalidAccessToken(GatewayError):
    """Missing, unknown or expired bearer token (AUTH-006)."""

    status = 401
    error_code = "AUTH-006"


class NoPrivilege(GatewayError):
    """The token lacks the scope or user context for this call (AUTH-010)."""

    status = 403
    error_code = "AUTH-010"


class RateLimited(GatewayError):
    """Over the per-client, per-endpoint quota: 429 with ``Retry-After``."""

    status = 429

    def __init__(self, retry_after: int, limit: tuple[int, int, int] | None = None) -> None:
        super().__init__("Quota limit exceeded.", headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
        self.limit = limit  # (limit, remaining, reset) for X-RateLimit-* headers


class OAuthError(SimError):
    """Token endpoint error: ``{"error","error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description, status)
        self.error = error
        self.description = description


class AuthorizePageError(SimError):
    """A problem on the consent page: rendered as HTML, never redirected."""

    status = 400


class WebhooksError(SimError):
    """Webhooks API error: ``{"id", "status", "code", "detail": [message]}``."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, status)
        if code is not None:
            self.code = code


class OSSError(SimError):
    """Object Storage Service error: ``{"reason": ...}``."""


class S3Error(SimError):
    """An answer of S3 itself (a signed URL): ``<Error><Code>...`` XML."""

    code = "InternalError"


class SignedUrlDenied(S3Error):
    """An expired or forged signed URL: S3-style XML 403."""

    status = 403
    code = "AccessDenied"


class NoSuchUpload(S3Error):
    """A part sent for an upload that was completed, discarded or never began."""

    status = 404
    code = "NoSuchUpload"
