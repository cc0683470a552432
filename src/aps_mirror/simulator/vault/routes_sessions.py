"""``server-info`` and ``sessions``: sign in (``POST``, no auth), read and end a session."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from . import serialize
from .errors import ResourceNotFound, VaultBadRequest
from .service import VaultService
from .sessions import Session
from .web import caller, respond

SERVER_NAME = "Simulated Vault Server"
PRODUCT_VERSION = "30.0.0.0"  # GUESS: a Vault 2025-style version string


def register(router: APIRouter, service: VaultService) -> None:
    @router.get("/server-info")
    def server_info() -> Response:
        return respond(service, {"name": SERVER_NAME, "productVersion": PRODUCT_VERSION})

    @router.post("/sessions")
    async def sign_in(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            raise VaultBadRequest("The request body is not valid JSON.") from None
        given = body.get("input") if isinstance(body, dict) else None
        if not isinstance(given, dict) or not all(isinstance(given.get(k, ""), str)
                                                  for k in ("vault", "userName", "password", "appCode")):
            raise VaultBadRequest("The body must be {\"input\": {vault, userName, password, appCode}} of strings.")
        if not given.get("vault"):
            raise VaultBadRequest("Illegal null parameter passed to server.", params=["vault"])
        with service.lock:
            vault = service.store.vault_by_name(given["vault"])
        session = service.login(vault, given.get("userName", ""), given.get("password", ""),
                                given.get("appCode", ""))
        return respond(service, serialize.session(session))

    def own_session(request: Request, session_id: str) -> Session:
        found = caller(service, request, None).session
        if found is None or session_id not in ("@current", found.id):
            # An APS token has no session; another user's session is not found (GUESS).
            raise ResourceNotFound(session_id)
        return found

    @router.get("/sessions/{session_id}")
    def read_session(request: Request, session_id: str) -> Response:
        return respond(service, serialize.session(own_session(request, session_id)))

    @router.delete("/sessions/{session_id}")
    def sign_out(request: Request, session_id: str) -> Response:
        service.sessions.logout(own_session(request, session_id))
        return Response(status_code=204)
