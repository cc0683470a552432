"""FastAPI routes: parse the request, call the Simulator, serialise. Errors map to HTTP here only."""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from aps_mirror.aps.endpoints import SIGNED_URL_DOWNLOAD, classify

from . import content, serialize
from .control import Fault
from .errors import (AuthorizePageError, BadInput, DataManagementError, GatewayError, NoPrivilege,
                     OAuthError, OSSError, SignedUrlDenied, SimError)
from .oauth import AccessToken
from .sim import Simulator
from .state import BUCKET, Folder, Item

log = logging.getLogger(__name__)
request_log = logging.getLogger("aps_mirror.simulator.requests")

JSONAPI_TYPE = "application/vnd.api+json"
MORE_INFO = "https://aps.autodesk.com/en/docs/oauth/v2/developers_guide/error_handling/"
MAX_PAGE = 200
SIGNED_PREFIX = "/_sim/s3/"


# ---- the one place where errors become HTTP
def render_error(exc: SimError) -> Response:
    if isinstance(exc, DataManagementError):
        body = {"jsonapi": {"version": "1.0"},
                "errors": [{"id": str(uuid.uuid4()), "status": str(exc.status), "code": exc.code,
                            "title": exc.title, "detail": exc.message}]}
        return JSONResponse(body, exc.status, media_type=JSONAPI_TYPE)
    if isinstance(exc, GatewayError):
        body = {"developerMessage": exc.message, "userMessage": "", "errorCode": exc.error_code,
                "more info": MORE_INFO}
        if exc.status == 429:
            body = {"developerMessage": exc.message}
        return JSONResponse(body, exc.status, headers=exc.headers)
    if isinstance(exc, OAuthError):
        return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status)
    if isinstance(exc, AuthorizePageError):
        return HTMLResponse(_page("Authorization error", f"<p class='error'>{html.escape(exc.message)}</p>"),
                            exc.status)
    if isinstance(exc, SignedUrlDenied):
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
               f"<Message>{html.escape(exc.message)}</Message></Error>")
        return Response(xml, exc.status, media_type="application/xml")
    if isinstance(exc, OSSError):
        return JSONResponse({"reason": exc.message}, exc.status)
    return JSONResponse({"developerMessage": exc.message}, exc.status)


def fault_response(fault: Fault) -> Response:
    if fault.status == 429:
        return JSONResponse({"developerMessage": "Quota limit exceeded."}, 429,
                            headers={"Retry-After": str(1 if fault.retry_after is None else fault.retry_after)})
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse({"developerMessage": f"Simulated fault (HTTP {fault.status}).", "userMessage": "",
                         "errorCode": "", "more info": MORE_INFO}, fault.status, headers=headers)


def _page(title: str, inner: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{inner}</body></html>")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _self_href(request: Request) -> str:
    return str(request.url)


def _api(doc: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status, media_type=JSONAPI_TYPE)


def _paging(request: Request) -> tuple[int, int]:
    params = request.query_params
    try:
        number = int(params.get("page[number]", "0"))
        limit = int(params.get("page[limit]", str(MAX_PAGE)))
    except ValueError:
        raise BadInput("page[number] and page[limit] must be integers.") from None
    if number < 0:
        raise BadInput("page[number] must be 0 or more.")
    if not 1 <= limit <= MAX_PAGE:
        raise BadInput(f"The value of page[limit] must be between 1 and {MAX_PAGE}.")
    return number, limit


def _page_links(request: Request, number: int, has_next: bool) -> dict[str, Any]:
    """``self`` always; ``first``/``prev``/``next`` when paginated (next only if a page follows)."""
    base_params = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "page[number]"]
    url = str(request.url.replace(query=""))

    def at(n: int) -> dict[str, str]:
        return {"href": f"{url}?{urlencode(base_params + [('page[number]', str(n))])}"}

    links: dict[str, Any] = {"self": {"href": _self_href(request)}}
    if number > 0:
        links["first"] = at(0)
        links["prev"] = at(number - 1)
    if has_next:
        links["next"] = at(number + 1)
    return links


def _version_id(raw: str, request: Request) -> str:
    """Version ids arrive URL-encoded; tolerate a client that left ``?version=N`` unencoded."""
    if "?version=" not in raw and "version" in request.query_params:
        return f"{raw}?version={request.query_params['version']}"
    return raw


def create_app(sim: Simulator) -> FastAPI:
    """The HTTP face of ``sim``: Autodesk's paths plus the ``/_sim/`` control namespace."""
    app = FastAPI(title="APS simulator", docs_url="/_sim/docs", redoc_url=None, openapi_url="/_sim/openapi.json")
    account = sim.account

    @app.exception_handler(SimError)
    async def _on_sim_error(_request: Request, exc: SimError) -> Response:
        return render_error(exc)

    @app.middleware("http")
    async def _traffic(request: Request, call_next: Any) -> Response:
        path = request.scope["path"]
        if path.startswith("/_sim/") and not path.startswith(SIGNED_PREFIX):
            return await call_next(request)
        endpoint = SIGNED_URL_DOWNLOAD if path.startswith(SIGNED_PREFIX) else classify(path)
        fault = sim.faults.take(endpoint)
        response = fault_response(fault) if fault is not None else await call_next(request)
        sim.traffic.record(request.method, path, response.status_code, endpoint)
        request_log.info("%s %s -> %d [%s]%s", request.method, path, response.status_code, endpoint,
                         " (injected)" if fault is not None else "")
        return response

    def bearer(request: Request) -> AccessToken:
        """Authenticate the bearer token, then charge the caller's rate budget."""
        token = sim.oauth.validate(request.headers.get("authorization"))
        sim.limiter.take(token.client_id, classify(request.scope["path"]))
        return token

    def data_reader(token: AccessToken = Depends(bearer)) -> AccessToken:
        if "data:read" not in token.scopes:
            raise NoPrivilege("The token does not have the data:read scope.")
        return token

    # ---- authentication
    @app.get("/authentication/v2/authorize", response_class=HTMLResponse)
    def authorize_page(request: Request) -> HTMLResponse:
        params = dict(request.query_params)
        client = sim.oauth.check_authorize(params)
        hidden = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
                         for k, v in params.items())
        scopes = html.escape(params.get("scope", ""))
        inner = (f"<p>The app <b>{html.escape(client.client_id)}</b> asks to access your Autodesk data "
                 f"as <b>{html.escape(account.user.email)}</b> with scopes <code>{scopes}</code>.</p>"
                 f"<form method='post' action='/authentication/v2/authorize'>{hidden}"
                 "<button type='submit' name='action' value='allow' id='allow'>Allow</button> "
                 "<button type='submit' name='action' value='deny' id='deny'>Deny</button></form>")
        return HTMLResponse(_page("Autodesk Platform Services (simulator): authorize", inner))

    @app.post("/authentication/v2/authorize")
    async def authorize_submit(request: Request) -> Response:
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        action = params.pop("action", "allow")
        sim.oauth.check_authorize(params)
        answer: dict[str, str] = {}
        if action == "allow":
            answer["code"] = sim.oauth.issue_code(params)
        else:
            answer.update(error="access_denied", error_description="The user denied access.")
        if params.get("state"):
            answer["state"] = params["state"]
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return RedirectResponse(params["redirect_uri"] + separator + urlencode(answer), status_code=302)

    @app.post("/authentication/v2/token")
    async def token(request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        header = request.headers.get("authorization")
        basic = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                raise OAuthError("invalid_request", "Only Basic client authentication is supported.")
            basic = value.strip()
        client = sim.oauth.authenticate_client(basic, form.get("client_id"), form.get("client_secret"))
        sim.limiter.take(client.client_id, "token")
        return JSONResponse(sim.oauth.token(client, form), headers={"Cache-Control": "no-store"})

    # ---- user profile
    @app.get("/userprofile/v1/users/@me")
    def me(token: AccessToken = Depends(bearer)) -> JSONResponse:
        # A 2-legged token has no user: Autodesk's gateway refuses it (403 AUTH-010).
        if not token.three_legged:
            raise NoPrivilege("A two-legged token has no user context; this call needs a three-legged token.")
        if not {"user-profile:read", "user:read"} & set(token.scopes):
            raise NoPrivilege("The token does not have the user-profile:read scope.")
        return JSONResponse(serialize.user_profile(account.user))

    # ---- project API
    @app.get("/project/v1/hubs")
    def hubs(request: Request, _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        base = _base(request)
        with sim.lock:
            data = [serialize.hub(base, h) for h in account.hubs]
        return _api(serialize.document(_self_href(request), data))

    @app.get("/project/v1/hubs/{hub_id}")
    def hub(request: Request, hub_id: str, _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            data = serialize.hub(_base(request), account.hub(hub_id))
        return _api(serialize.document(_self_href(request), data))

    @app.get("/project/v1/hubs/{hub_id}/projects")
    def projects(request: Request, hub_id: str, _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = _paging(request)
        with sim.lock:
            all_projects = account.hub(hub_id).projects
            page = all_projects[number * limit:(number + 1) * limit]
            data = [serialize.project(_base(request), p) for p in page]
            has_next = (number + 1) * limit < len(all_projects)
        return _api({"jsonapi": serialize.JSONAPI, "links": _page_links(request, number, has_next), "data": data})

    @app.get("/project/v1/hubs/{hub_id}/projects/{project_id}")
    def project(request: Request, hub_id: str, project_id: str,
                _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            data = serialize.project(_base(request), account.hub_project(hub_id, project_id))
        return _api(serialize.document(_self_href(request), data))

    @app.get("/project/v1/hubs/{hub_id}/projects/{project_id}/topFolders")
    def top_folders(request: Request, hub_id: str, project_id: str,
                    _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            p = account.hub_project(hub_id, project_id)
            data = [serialize.folder(_base(request), f, account.user) for f in account.top_folders(p)]
        return _api(serialize.document(_self_href(request), data))

    # ---- data API
    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}")
    def folder(request: Request, project_id: str, folder_id: str,
               _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            data = serialize.folder(_base(request), account.folder(folder_id, project_id), account.user)
        return _api(serialize.document(_self_href(request), data))

    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}/parent")
    def folder_parent(request: Request, project_id: str, folder_id: str,
                      _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            parent = account.folder(folder_id, project_id).parent
            if parent is None:
                raise DataManagementError("The root folder has no parent.", 404, "NOT_FOUND", "Not Found")
            data = serialize.folder(_base(request), parent, account.user)
        return _api(serialize.document(_self_href(request), data))

    @app.get("/data/v1/projects/{project_id}/folders/{folder_id}/contents")
    def folder_contents(request: Request, project_id: str, folder_id: str,
                        _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = _paging(request)
        params = request.query_params
        include_hidden = params.get("includeHidden", "false").lower() == "true"
        types = _csv(params.get("filter[type]"))
        ext_types = _csv(params.get("filter[extension.type]"))
        base = _base(request)
        with sim.lock:
            f = account.folder(folder_id, project_id)
            entries: list[Folder | Item] = [
                *sorted((c for c in f.folders if include_hidden or not c.hidden), key=lambda c: c.name),
                *sorted((i for i in f.items if include_hidden or not i.hidden), key=lambda i: i.display_name),
            ]
            page = entries[number * limit:(number + 1) * limit]
            has_next = (number + 1) * limit < len(entries)
            # Autodesk filters AFTER paging: a page can be short or empty while `next` remains.
            if types:
                page = [e for e in page if ("folders" if isinstance(e, Folder) else "items") in types]
            if ext_types:
                page = [e for e in page if e.ext_type in ext_types]
            data = [serialize.folder(base, e, account.user) if isinstance(e, Folder)
                    else serialize.item(base, e, account.user) for e in page]
            included = [serialize.version(base, e.tip, account.user) for e in page if isinstance(e, Item)]
        doc: dict[str, Any] = {"jsonapi": serialize.JSONAPI, "links": _page_links(request, number, has_next),
                               "data": data}
        if included:
            doc["included"] = included
        return _api(doc)

    @app.get("/data/v1/projects/{project_id}/items/{item_id}")
    def item(request: Request, project_id: str, item_id: str,
             _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        base = _base(request)
        with sim.lock:
            i = account.item(item_id, project_id)
            doc = serialize.document(_self_href(request), serialize.item(base, i, account.user),
                                     included=[serialize.version(base, i.tip, account.user)])
        return _api(doc)

    @app.get("/data/v1/projects/{project_id}/items/{item_id}/tip")
    def item_tip(request: Request, project_id: str, item_id: str,
                 _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            i = account.item(item_id, project_id)
            data = serialize.version(_base(request), i.tip, account.user)
        return _api(serialize.tip_document(_self_href(request), data))

    @app.get("/data/v1/projects/{project_id}/items/{item_id}/versions")
    def item_versions(request: Request, project_id: str, item_id: str,
                      _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        number, limit = _paging(request)
        with sim.lock:
            i = account.item(item_id, project_id)
            newest_first = list(reversed(i.versions))
            page = newest_first[number * limit:(number + 1) * limit]
            data = [serialize.version(_base(request), v, account.user) for v in page]
            has_next = (number + 1) * limit < len(newest_first)
        return _api({"jsonapi": serialize.JSONAPI, "links": _page_links(request, number, has_next), "data": data})

    @app.get("/data/v1/projects/{project_id}/versions/{version_id}")
    def version(request: Request, project_id: str, version_id: str,
                _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        with sim.lock:
            v = account.version(_version_id(version_id, request), project_id)
            data = serialize.version(_base(request), v, account.user)
        return _api(serialize.document(_self_href(request), data))

    # ---- OSS
    @app.get("/oss/v2/buckets/{bucket_key}/objects/{object_key:path}/signeds3download")
    def signeds3download(request: Request, bucket_key: str, object_key: str,
                         _t: AccessToken = Depends(data_reader)) -> JSONResponse:
        raw_minutes = request.query_params.get("minutesExpiration", "2")
        try:
            minutes = int(raw_minutes)
        except ValueError:
            minutes = 0
        if not 1 <= minutes <= 60:
            raise OSSError("minutesExpiration must be an integer between 1 and 60.", 400)
        v = account.object_version(object_key) if bucket_key == BUCKET else None
        if v is None or v.size is None:
            raise OSSError(f"Object doesn't exist: {bucket_key}/{object_key}", 404)
        expires, signature = sim.sign_download(bucket_key, object_key, minutes)
        url = (f"{_base(request)}{SIGNED_PREFIX}{bucket_key}/{serialize.q(object_key)}?"
               + urlencode({"Expires": expires, "Signature": signature}))
        return JSONResponse({"status": "complete", "url": url, "params": {}, "size": v.size,
                             "sha1": account.sha1(v)})

    @app.get(SIGNED_PREFIX + "{bucket_key}/{object_key:path}")
    def signed_download(request: Request, bucket_key: str, object_key: str) -> Response:
        params = request.query_params
        v = sim.check_download(bucket_key, object_key, params.get("Expires", ""), params.get("Signature", ""))
        size = v.size or 0
        span = _range(request.headers.get("range"), size)
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{account.sha1(v)}"'}
        if span is None:
            start, end, status = 0, size - 1, 200
        elif span == "unsatisfiable":
            return Response(b"", 416, headers={"Content-Range": f"bytes */{size}"})
        else:
            (start, end), status = span, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(max(0, end - start + 1))
        sim.traffic.add_download()
        return StreamingResponse(_counted(sim, content.iter_bytes(account.seed, v.content_key or v.id, size,
                                                                  start, end)),
                                 status, headers=headers, media_type=v.mime_type)

    _control_routes(app, sim)
    return app


def _counted(sim: Simulator, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        sim.traffic.add_bytes(len(piece))
        yield piece


def _csv(raw: str | None) -> set[str]:
    return {part.strip() for part in (raw or "").split(",") if part.strip()}


def _range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range; None = whole body."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _control_routes(app: FastAPI, sim: Simulator) -> None:
    """The ``/_sim/`` namespace: statistics, faults, clock and ground truth; no Autodesk client calls it."""

    @app.get("/_sim/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "seed": sim.seed}

    @app.get("/_sim/stats")
    def stats() -> dict[str, Any]:
        return sim.stats()

    @app.post("/_sim/reset-stats")
    def reset_stats() -> dict[str, Any]:
        sim.reset_stats()
        return {"ok": True}

    @app.get("/_sim/faults")
    def faults() -> dict[str, Any]:
        return {"faults": sim.faults.pending()}

    @app.post("/_sim/faults")
    async def add_fault(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            sim.inject_fault(str(body["endpoint"]), int(body["status"]), int(body.get("count", 1)),
                             None if body.get("retry_after") is None else int(body["retry_after"]))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad fault: {exc}"}, 400)
        return JSONResponse({"faults": sim.faults.pending()})

    @app.delete("/_sim/faults")
    def clear_faults() -> dict[str, Any]:
        sim.clear_faults()
        return {"ok": True}

    @app.post("/_sim/clock/advance")
    async def advance(request: Request) -> JSONResponse:
        try:
            seconds = float((await request.json())["seconds"])
            now = sim.advance_clock(seconds)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, 400)
        return JSONResponse({"now": now})

    @app.post("/_sim/rate-scale")
    async def rate_scale(request: Request) -> JSONResponse:
        try:
            sim.rate_scale = float((await request.json())["rate_scale"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, 400)
        return JSONResponse({"rate_scale": sim.rate_scale})

    @app.post("/_sim/tokens/expire")
    def expire_tokens() -> dict[str, Any]:
        sim.expire_access_tokens()
        return {"ok": True}

    @app.post("/_sim/user-token")
    async def user_token(request: Request) -> JSONResponse:
        raw = await request.body()
        scope = (await request.json()).get("scope") if raw else None
        return JSONResponse(sim.user_tokens(scope or "data:read user-profile:read"))

    @app.get("/_sim/files")
    def files(include_deleted: bool = False) -> dict[str, Any]:
        return {"files": [{"hub": e.hub, "project": e.project, "path": list(e.path), "item_id": e.item_id,
                           "version_id": e.tip.id, "name": e.tip.name, "size": e.tip.size,
                           "deleted": e.tip.deleted,
                           "sha1": None if e.tip.deleted else sim.sha1(e.tip.id)}
                          for e in sim.iter_files(include_deleted)]}
