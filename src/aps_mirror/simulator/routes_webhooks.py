"""Webhooks API routes (``/webhooks/v1``) for the ``data`` system: hooks (create for all events or
one, list, get, PATCH, DELETE) and the app's or user's secret token, per ``x-ads-region``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .errors import NoPrivilege, NotFound, WebhooksError
from .model import Folder
from .oauth import AccessToken
from .sim import Simulator
from .web import auth_dependencies, base_url, scoped
from .webhook_registry import DM_EVENTS, REGIONS, STATUSES, SYSTEM, Caller, Hook

BASE = "/webhooks/v1"


def region_of(request: Request) -> str:
    """``x-ads-region`` (which wins) or ``?region=``; US by default."""
    raw = request.headers.get("x-ads-region") or request.query_params.get("region") or "US"
    if raw.upper() not in REGIONS:
        raise WebhooksError(f"Unknown region {raw!r}: use one of {', '.join(REGIONS)}.")
    return raw.upper()


def _system(system: str) -> None:
    if system != SYSTEM:
        raise WebhooksError(f"The system {system!r} is not simulated: only {SYSTEM!r} (Data Management).")


def _event(event: str) -> None:
    if event not in DM_EVENTS:
        raise WebhooksError(f"Unknown event {event!r} for the system {SYSTEM!r}.")


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise WebhooksError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise WebhooksError("The request body must be a JSON object.")
    return body


def _page_state(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(raw.encode()).decode().partition(":")
        if kind != "offset" or int(offset) < 0:
            raise ValueError(raw)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise WebhooksError("pageState is not one this service gave out.") from None


def _listing(request: Request, hooks: list[Hook], path: str, page_size: int) -> Response:
    """A page of ``Hooks`` (``links.next`` relative to /webhooks/v1, as Autodesk gives it), 204 when empty."""
    start = _page_state(request.query_params.get("pageState"))
    page = hooks[start:start + page_size]
    if not page:
        return Response(status_code=204)
    links: dict[str, str] = {}
    if start + page_size < len(hooks):
        state = base64.urlsafe_b64encode(f"offset:{start + page_size}".encode()).decode()
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "pageState"]
        links["next"] = f"{path}?{urlencode(params + [('pageState', state)])}"
    return JSONResponse({"links": links, "data": [h.details() for h in page]})


def _status_filter(request: Request, default: str | None = None) -> str | None:
    status = request.query_params.get("status", default)
    if status is not None and status not in STATUSES:
        raise WebhooksError(f"status must be one of {', '.join(STATUSES)}.")
    return status


def register(app: FastAPI, sim: Simulator) -> None:
    """Add the ``/webhooks/v1`` routes."""
    registry = sim.webhooks.registry
    bearer, _data_reader = auth_dependencies(sim)
    reader = scoped(sim, "data:read")
    writer = scoped(sim, "data:read", "data:write")

    def event_hooks_reader(request: Request) -> AccessToken:
        # The spec asks data:read of a two-legged token only, for this one operation.
        token = bearer(request)
        if not token.three_legged and "data:read" not in token.scopes:
            raise NoPrivilege("The token does not have the data:read scope.")
        return token

    def scope_folder(body: dict[str, Any], token: AccessToken, region: str) -> Folder:
        scope = body.get("scope")
        if not isinstance(scope, dict) or not isinstance(scope.get("folder"), str) or not scope["folder"]:
            raise WebhooksError("scope.folder is required: the urn of the folder whose subtree the hook watches.")
        if set(scope) != {"folder"}:
            raise WebhooksError("Data Management hooks are scoped to a folder: scope must be {\"folder\": urn}.")
        with sim.lock:
            try:
                folder = sim.account.folder(scope["folder"])
            except NotFound:
                raise WebhooksError(f"The folder {scope['folder']} does not exist or you have no access to it.",
                                    404, "NOT_FOUND") from None
            if folder.restricted and not sim.is_admin(token.user_id if token.three_legged else None):
                raise WebhooksError(f"You have no access to the folder {folder.name!r}.", 403, "FORBIDDEN")
            if folder.project.hub.region != region:
                raise WebhooksError(f"The folder is in the {folder.project.hub.region} region: create its hooks "
                                    f"with x-ads-region: {folder.project.hub.region}.")
            return folder

    # ---- create
    @app.post(BASE + "/systems/{system}/hooks")
    async def create_all(request: Request, system: str, token: AccessToken = Depends(writer)) -> JSONResponse:
        _system(system)
        region = region_of(request)
        body = await _body(request)
        hooks = registry.create(Caller.of(token), region, scope_folder(body, token, region), DM_EVENTS, body)
        return JSONResponse({"hooks": [h.details() for h in hooks]}, 201,
                            headers={"Location": f"{base_url(request)}{BASE}/systems/{system}/hooks"})

    @app.post(BASE + "/systems/{system}/events/{event}/hooks")
    async def create_one(request: Request, system: str, event: str,
                         token: AccessToken = Depends(writer)) -> Response:
        _system(system)
        _event(event)
        region = region_of(request)
        body = await _body(request)
        hook = registry.create(Caller.of(token), region, scope_folder(body, token, region), (event,), body)[0]
        location = f"{base_url(request)}{BASE}/systems/{system}/events/{event}/hooks/{hook.hook_id}"
        return Response(status_code=201, headers={"Location": location})

    # ---- list
    @app.get(BASE + "/hooks")
    def all_hooks(request: Request, token: AccessToken = Depends(reader)) -> Response:
        hooks = registry.hooks(Caller.of(token), region_of(request), status=_status_filter(request))
        return _listing(request, hooks, "/hooks", registry.settings.page_size)

    @app.get(BASE + "/app/hooks")
    def app_hooks(request: Request, token: AccessToken = Depends(reader)) -> Response:
        if token.three_legged:
            raise NoPrivilege("GET /webhooks/v1/app/hooks needs a two-legged token.")
        sort = request.query_params.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise WebhooksError("sort must be 'asc' or 'desc'.")
        hooks = registry.hooks(Caller.of(token), region_of(request), status=_status_filter(request, "active"))
        hooks.sort(key=lambda h: (h.updated, h.created), reverse=sort == "desc")
        return _listing(request, hooks, "/app/hooks", registry.settings.page_size)

    @app.get(BASE + "/systems/{system}/hooks")
    def system_hooks(request: Request, system: str, token: AccessToken = Depends(reader)) -> Response:
        _system(system)
        hooks = registry.hooks(Caller.of(token), region_of(request), status=_status_filter(request))
        return _listing(request, hooks, f"/systems/{system}/hooks", registry.settings.page_size)

    @app.get(BASE + "/systems/{system}/events/{event}/hooks")
    def event_hooks(request: Request, system: str, event: str,
                    token: AccessToken = Depends(event_hooks_reader)) -> Response:
        _system(system)
        _event(event)
        params = request.query_params
        hooks = registry.hooks(Caller.of(token), region_of(request), event, _status_filter(request),
                               params.get("scopeName"), params.get("scopeValue") if params.get("scopeName") else None)
        return _listing(request, hooks, f"/systems/{system}/events/{event}/hooks", registry.settings.page_size)

    # ---- one hook
    def one(request: Request, system: str, event: str, hook_id: str, token: AccessToken) -> Hook:
        _system(system)
        _event(event)
        return registry.hook(Caller.of(token), region_of(request), event, hook_id)

    @app.get(BASE + "/systems/{system}/events/{event}/hooks/{hook_id}")
    def get_hook(request: Request, system: str, event: str, hook_id: str,
                 token: AccessToken = Depends(reader)) -> JSONResponse:
        return JSONResponse(one(request, system, event, hook_id, token).details())

    @app.patch(BASE + "/systems/{system}/events/{event}/hooks/{hook_id}")
    async def patch_hook(request: Request, system: str, event: str, hook_id: str,
                         token: AccessToken = Depends(writer)) -> Response:
        hook = one(request, system, event, hook_id, token)
        registry.patch(hook, await _body(request))
        return Response(status_code=200)

    @app.delete(BASE + "/systems/{system}/events/{event}/hooks/{hook_id}")
    def delete_hook(request: Request, system: str, event: str, hook_id: str,
                    token: AccessToken = Depends(writer)) -> Response:
        registry.delete(one(request, system, event, hook_id, token))
        return Response(status_code=204)

    # ---- the secret token of the calling app (2-legged) or user (3-legged)
    async def token_value(request: Request) -> str:
        value = (await _body(request)).get("token")
        if not isinstance(value, str) or not value:
            raise WebhooksError("token is required: a non-empty string.")
        return value

    @app.post(BASE + "/tokens")
    async def create_token(request: Request, token: AccessToken = Depends(writer)) -> JSONResponse:
        caller = Caller.of(token)
        registry.create_token(caller, region_of(request), await token_value(request))
        whom = "user" if token.three_legged else "client"
        return JSONResponse({"status": 200, "detail": [f"Token created successfully for {whom}: {caller.created_by}"]})

    @app.put(BASE + "/tokens/@me")
    async def update_token(request: Request, token: AccessToken = Depends(writer)) -> Response:
        registry.update_token(Caller.of(token), region_of(request), await token_value(request))
        return Response(status_code=204)

    @app.delete(BASE + "/tokens/@me")
    def delete_token(request: Request, token: AccessToken = Depends(writer)) -> Response:
        registry.update_token(Caller.of(token), region_of(request), None)
        return Response(status_code=204)
