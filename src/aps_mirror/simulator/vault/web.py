"""HTTP helpers of the Vault routes: the gateway in front, who is calling, options, JSON answers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from .errors import VaultBadRequest
from .gateway import payload_too_large
from .model import Vault
from .service import VaultService
from .sessions import Caller


def gateway_gate(service: VaultService) -> Any:
    """A router dependency: when the gateway is on, every request counts against its rate and
    a request body over the payload quota is refused (Autodesk: 500)."""

    def gate(request: Request) -> None:
        if not service.gateway:
            return
        service.limiter.take()
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > service.payload_limit:
            raise payload_too_large("request", int(length), service.payload_limit)

    return gate


def caller(service: VaultService, request: Request, vault: Vault | None) -> Caller:
    return service.sessions.caller(request.headers.get("authorization"), vault, service.oauth)


def option(request: Request, name: str, default: bool) -> bool:
    """A boolean query option (``option[latestOnly]=false``); anything but true/false is a 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false"):
        raise VaultBadRequest(f"{name} must be true or false, not {raw!r}.", params=[name])
    return raw.lower() == "true"


def choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = request.query_params.get(name) or default
    for value in allowed:
        if raw.lower() == value.lower():
            return value
    raise VaultBadRequest(f"{name} must be one of {', '.join(allowed)}, not {raw!r}.", params=[name])


def respond(service: VaultService, doc: Any, status: int = 200) -> Response:
    """A JSON answer; through the gateway, one over the payload quota becomes its 500."""
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    if service.gateway and len(body) > service.payload_limit:
        raise payload_too_large("response", len(body), service.payload_limit)
    return Response(body, status, media_type="application/json")
