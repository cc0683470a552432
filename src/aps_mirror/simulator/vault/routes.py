"""Mount the Vault routes under ``/AutodeskDM/Services/api/vault/v2`` behind the gateway gate."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from aps_mirror.connection import VAULT_API_PATH

from . import errors, routes_content, routes_entities, routes_sessions
from .service import VaultService
from .web import gateway_gate


def register(app: FastAPI, service: VaultService) -> None:
    """Add the Data API v2 routes and the ErrorResponse envelope for Vault errors."""
    router = APIRouter(prefix=VAULT_API_PATH, dependencies=[Depends(gateway_gate(service))])
    routes_sessions.register(router, service)
    routes_entities.register(router, service)
    routes_content.register(router, service)
    app.include_router(router)

    async def on_vault_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.VaultError)
        return JSONResponse({"title": exc.title, "detail": exc.message, "statusCode": exc.status,
                             "errorCode": exc.error_code, "params": exc.params}, exc.status)

    # More specific than the app's SimError handler: Starlette picks the closest class.
    app.add_exception_handler(errors.VaultError, on_vault_error)
