"""Vault's errors, answered (routes.py) as ``ErrorResponse`` ``{title, detail, statusCode, errorCode, params}``.

Error numbers from Autodesk's spec and error-handling page: 133 (no such vault), 155 (illegal
null parameter), 301 (sign-in failed), 1430 (no such property definition), 5004 (no resource
for the id), 8000 (no permission to download). The rest are marked GUESS where raised.
"""

from __future__ import annotations

from ..errors import SimError


class VaultError(SimError):
    """An error of the Vault server (or of the gateway in front of it)."""

    status = 400
    error_code = "155"
    title = "Vault error"

    def __init__(self, detail: str, status: int | None = None, error_code: str | None = None,
                 params: list[str] | None = None) -> None:
        super().__init__(detail, status)
        if error_code is not None:
            self.error_code = error_code
        self.params = params or []


class VaultBadRequest(VaultError):
    status = 400
    error_code = "155"


class SigninFailed(VaultError):
    """Wrong user name or password: Autodesk's error page shows 400 with error 301."""

    status = 400
    error_code = "301"


class NotAuthenticated(VaultError):
    """No usable token. 300 (BadAuthenticationToken) is a GUESS from the SOAP-era numbering."""

    status = 401
    error_code = "300"


class NoPermission(VaultError):
    """A cloaked entity or another vault's session. GUESS: 403 with 303 (PermissionDenied)."""

    status = 403
    error_code = "303"


class DownloadDenied(VaultError):
    """Autodesk's example: 401, error 8000, for content the user may not download."""

    status = 401
    error_code = "8000"


class ResourceNotFound(VaultError):
    """Autodesk's example: 404, error 5004, the id in ``params``."""

    status = 404
    error_code = "5004"

    def __init__(self, entity_id: str) -> None:
        super().__init__(f"Resource is not found for the given id {entity_id}.", params=[entity_id])


class VaultDoesNotExist(VaultError):
    status = 404
    error_code = "133"

    def __init__(self, vault: str) -> None:
        super().__init__(f"KnowledgeVaultDoesNotExist [133] ({vault})", params=[vault])


class PropertyDefinitionDoesNotExist(VaultError):
    status = 404
    error_code = "1430"

    def __init__(self, prop_id: str) -> None:
        super().__init__(f"PropertyDefinitionDoesNotExist [1430] ({prop_id})", params=[prop_id])


class GatewayError(VaultError):
    """The Vault Gateway's own answers (429 over its rate, 500 over its payload quota). Their
    body is undocumented: GUESS, the server's ErrorResponse shape with a title of its own."""

    title = "Vault Gateway"
