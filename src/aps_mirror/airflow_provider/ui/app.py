"""Pages to connect an Autodesk account to each `autodesk` connection, inside the API server.

The consent flow: `/connect/{conn_id}` makes a PKCE pair and a random `state`, keeps them in
the metadata database (an Airflow Variable, encrypted with the Fernet key, so every API server
worker and replica sees it), bound to the operator's user name and to a random nonce cookie of
this browser; `/callback` takes that record out atomically (single use), checks user and
cookie, exchanges the code with the verifier and stores the tokens through the same
`AirflowTokenStore` the workers use. No page ever shows a token, secret or verifier.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
import time
from datetime import datetime, timezone
from typing import Any

import requests
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aps_mirror.airflow_provider.token_persistence import AirflowTokenStore, OrmWriter, shadowing_source
from aps_mirror.airflow_provider.ui.connection_health import (
    ConnectionHealth,
    db_health,
    stored_autodesk_connections,
)
from aps_mirror.airflow_provider.ui.webhook_receiver import router as webhook_router
from aps_mirror.aps.auth import PkcePair, authorize_url, exchange_code, new_state
from aps_mirror.connection import ApsConnection, AuthMode
from aps_mirror.errors import ApsMirrorError, ConfigError

PREFIX = "/aps-mirror"
PENDING_TTL = 600  # seconds: Autodesk's codes live 5 minutes, people are slower
NONCE_COOKIE = "aps_mirror_nonce"
_PENDING_VAR = "aps_mirror_oauth_pending_"


def create_app() -> FastAPI:
    app = FastAPI(title="aps-mirror: Autodesk accounts", docs_url=None, redoc_url=None, openapi_url=None)
    from aps_mirror.airflow_provider.ui.dashboard import router as dashboard_router  # imports this module

    app.include_router(dashboard_router)  # /dashboard and /dashboard.json
    app.include_router(webhook_router)  # POST /webhooks/dm: Autodesk's signed callbacks, no login

    @app.get("/", response_class=HTMLResponse)
    async def accounts(request: Request) -> Response:
        user = await _user_or_login(request)
        if isinstance(user, Response):
            return user
        # Connection ids and who consented are connection data: Airflow's own rule decides.
        require_connection_access(user, "GET")
        now = datetime.now(timezone.utc)
        rows = "".join(_row(db_health(conn_id, fields, now), may_connect=allowed(user, "PUT", conn_id))
                       for conn_id, fields in stored_autodesk_connections().items()
                       if allowed(user, "GET", conn_id))
        body = ("<table><tr><th>Connection</th><th>Mode</th><th>Account</th><th>Status</th><th></th></tr>"
                f"{rows or '<tr><td colspan=5>No autodesk connection yet: add one in Admin &gt; Connections.</td></tr>'}</table>"
                f"<p>Callback URL to register for your APS app: <code>{html.escape(callback_url(request))}</code></p>")
        return _page("Autodesk accounts", body)

    @app.get("/connect/{conn_id}", response_class=HTMLResponse)
    async def connect(request: Request, conn_id: str) -> Response:
        user = await _user_or_login(request)
        if isinstance(user, Response):
            return user
        require_connection_access(user, "PUT", conn_id)
        conn = _aps_connection(conn_id)
        pkce, state, nonce = PkcePair.new(), new_state(), secrets.token_urlsafe(24)
        redirect_uri = callback_url(request)
        _put_pending(state, {"conn_id": conn_id, "verifier": pkce.verifier, "user": user.get_name(),
                             "nonce": _digest(nonce), "redirect_uri": redirect_uri,
                             "expires": time.time() + PENDING_TTL})
        url = authorize_url(conn, redirect_uri, state, pkce.challenge)
        body = (f"<p>Connect an Autodesk account to <b>{html.escape(conn_id)}</b> with scopes "
                f"<code>{html.escape(' '.join(conn.scopes))}</code>.</p>"
                f"<p><a id='continue' href='{html.escape(url)}'>Continue to Autodesk</a></p>"
                f"<p>The app must have this callback URL registered at aps.autodesk.com: "
                f"<code>{html.escape(redirect_uri)}</code></p>")
        response = _page(f"Connect {conn_id}", body)
        response.set_cookie(NONCE_COOKIE, nonce, max_age=PENDING_TTL, httponly=True, samesite="lax",
                            path=PREFIX, secure=request.url.scheme == "https")
        return response

    @app.get("/callback", response_class=HTMLResponse)
    async def callback(request: Request) -> Response:
        user = await _user_or_login(request)
        if isinstance(user, Response):
            return user
        params = request.query_params
        pending = _take_pending(params.get("state") or "")
        nonce = request.cookies.get(NONCE_COOKIE) or ""
        if (pending is None or pending["expires"] < time.time() or pending["user"] != user.get_name()
                or not secrets.compare_digest(pending["nonce"], _digest(nonce))):
            return _page("Not connected", "<p id='refused'>Refused: this callback does not belong to an "
                         "authorization started in this browser session (unknown, expired, reused or "
                         "forged state). Start again from <a href='./'>Autodesk accounts</a>.</p>", 400)
        conn_id = pending["conn_id"]
        require_connection_access(user, "PUT", conn_id)  # still allowed to edit it
        if params.get("error"):
            return _page("Not connected", f"<p id='refused'>Autodesk answered: "
                         f"{html.escape(params.get('error_description') or params['error'])}</p>", 400)
        conn = _aps_connection(conn_id)
        try:
            with requests.Session() as session:
                auth = exchange_code(conn, session, code=params.get("code") or "",
                                     redirect_uri=pending["redirect_uri"], verifier=pending["verifier"])
                from aps_mirror.cli.authorize import who_consented

                account = who_consented(conn, session, auth.access_token)
            AirflowTokenStore(conn_id, writer=OrmWriter()).save_authorization(auth, account)
        except ApsMirrorError as exc:
            return _page("Not connected", f"<p id='refused'>{html.escape(str(exc))}</p>", 400)
        response = _page("Connected", f"<p id='connected'>Connected <b>{html.escape(str(account.get('name')))}</b> "
                         f"&lt;{html.escape(str(account.get('email') or '?'))}&gt; to <b>{html.escape(conn_id)}</b> "
                         f"with scopes <code>{html.escape(' '.join(auth.scopes))}</code>.</p>"
                         "<p><a href='./'>Back to Autodesk accounts</a></p>")
        response.delete_cookie(NONCE_COOKIE, path=PREFIX)
        return response

    return app


def callback_url(request: Request) -> str:
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or str(request.base_url)).rstrip("/")
    if base.endswith(PREFIX):
        base = base[: -len(PREFIX)]
    return f"{base}{PREFIX}/callback"


async def _user_or_login(request: Request) -> Any:
    """The signed-in Airflow user, or a redirect to Airflow's login page."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    try:
        return await resolve_user_from_token(token)
    except HTTPException:
        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), 302)


def allowed(user: Any, method: str, conn_id: str | None = None) -> bool:
    """Airflow's own answer (its auth manager, as its UI and REST API ask it) to whether `user`
    may `method` ("GET" read, "PUT" edit) connection `conn_id` (None: connections at all)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails
    from airflow.configuration import conf

    team = None
    if conn_id and conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.connection import Connection

        team = Connection.get_team_name(conn_id)
    return get_auth_manager().is_authorized_connection(
        method=method, user=user, details=ConnectionDetails(conn_id=conn_id, team_name=team))


def require_connection_access(user: Any, method: str, conn_id: str | None = None) -> None:
    if not allowed(user, method, conn_id):
        action = "read" if method == "GET" else "edit"
        what = f"connection {conn_id!r}" if conn_id else "Airflow connections"
        raise HTTPException(403, f"You may not {action} {what}; ask an Airflow admin for the permission.")


def _aps_connection(conn_id: str) -> ApsConnection:
    fields = stored_autodesk_connections().get(conn_id)
    if fields is None:
        raise HTTPException(404, f"No autodesk connection {conn_id!r} in the metadata database.")
    source = shadowing_source(conn_id)
    if source:
        raise HTTPException(409, f"Connection {conn_id!r} is shadowed by {source}; tokens stored "
                                 "here would never be read. Remove it there first.")
    try:
        if isinstance(fields, ConfigError):
            raise fields
        conn = ApsConnection.from_fields(fields)
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from None
    if conn.auth_mode is not AuthMode.AUTHORIZATION_CODE:
        raise HTTPException(400, f"Connection {conn_id!r} uses {conn.auth_mode.value}: no consent needed.")
    return conn


def _row(health: ConnectionHealth, *, may_connect: bool) -> str:
    link = ""
    if health.auth_mode == "authorization_code" and may_connect:
        link = f"<a class='connect' href='connect/{html.escape(health.conn_id)}'>Connect Autodesk account</a>"
    status = html.escape(health.message)
    if health.level != "ok":
        status = f"<b class='alert'>{status}</b>"
    return (f"<tr class='connection' data-level='{health.level}'><td>{html.escape(health.conn_id)}</td>"
            f"<td>{html.escape(health.auth_mode)}</td><td>{html.escape(health.account or '')}</td>"
            f"<td>{status}</td><td>{link}</td></tr>")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _pending_key(state: str) -> str:
    return _PENDING_VAR + _digest(state)[:40]


def _put_pending(state: str, record: dict[str, Any]) -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Variable(key=_pending_key(state), val=json.dumps(record),
                             description="aps-mirror: an Autodesk consent in progress (single use)"))


def _take_pending(state: str) -> dict[str, Any] | None:
    """Remove and return the record of `state`: exactly one caller ever gets it."""
    from sqlalchemy import select

    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    if not state:
        return None
    with create_session() as session:
        row = session.scalar(select(Variable).where(Variable.key == _pending_key(state)).with_for_update())
        if row is None:
            return None
        record = json.loads(row.val)
        session.delete(row)
    return record


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    style = ("body{font-family:sans-serif;margin:2em}td,th{padding:.4em;border-bottom:1px solid #ddd;"
             "text-align:left}.alert{color:#b00}")
    return HTMLResponse(f"<!doctype html><html><head><title>{html.escape(title)}</title><style>{style}</style>"
                        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>", status)
