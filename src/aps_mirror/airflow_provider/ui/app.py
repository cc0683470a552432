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
from typing import Any

import requests
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aps_mirror.airflow_provider.token_persistence import (
    ACCOUNT_KEY,
    FINGERPRINT_KEY,
    GENERATION_KEY,
    PENDING_KEY,
    REFRESH_TOKEN_KEY,
    ROTATED_AT_KEY,
    AirflowTokenStore,
    OrmWriter,
    shadowing_source,
)
from aps_mirror.aps.auth import PkcePair, authorize_url, exchange_code, new_state
from aps_mirror.connection import ApsConnection, AuthMode, ConnectionFields
from aps_mirror.errors import ApsMirrorError

PREFIX = "/aps-mirror"
PENDING_TTL = 600  # seconds: Autodesk's codes live 5 minutes, people are slower
NONCE_COOKIE = "aps_mirror_nonce"
_PENDING_VAR = "aps_mirror_oauth_pending_"
WARN_AFTER_DAYS = 10


def create_app() -> FastAPI:
    app = FastAPI(title="aps-mirror: Autodesk accounts", docs_url=None, redoc_url=None, openapi_url=None)
    from aps_mirror.airflow_provider.ui.dashboard import router as dashboard_router  # imports this module

    app.include_router(dashboard_router)  # /dashboard and /dashboard.json

    @app.get("/", response_class=HTMLResponse)
    async def accounts(request: Request) -> Response:
        user = await _user_or_login(request)
        if isinstance(user, Response):
            return user
        rows = "".join(_row(fields) for fields in _autodesk_connections())
        body = ("<table><tr><th>Connection</th><th>Mode</th><th>Account</th><th>Status</th><th></th></tr>"
                f"{rows or '<tr><td colspan=5>No autodesk connection yet: add one in Admin &gt; Connections.</td></tr>'}</table>"
                f"<p>Callback URL to register for your APS app: <code>{html.escape(callback_url(request))}</code></p>")
        return _page("Autodesk accounts", body)

    @app.get("/connect/{conn_id}", response_class=HTMLResponse)
    async def connect(request: Request, conn_id: str) -> Response:
        user = await _user_or_login(request)
        if isinstance(user, Response):
            return user
        _require_edit(user, conn_id)
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


def _require_edit(user: Any, conn_id: str) -> None:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    if not get_auth_manager().is_authorized_connection(method="PUT", user=user,
                                                       details=ConnectionDetails(conn_id=conn_id)):
        raise HTTPException(403, f"You may not edit connection {conn_id!r}.")


def _aps_connection(conn_id: str) -> ApsConnection:
    fields = next((f for f in _autodesk_connections() if f.conn_id == conn_id), None)
    if fields is None:
        raise HTTPException(404, f"No autodesk connection {conn_id!r} in the metadata database.")
    source = shadowing_source(conn_id)
    if source:
        raise HTTPException(409, f"Connection {conn_id!r} is shadowed by {source}; tokens stored "
                                 "here would never be read. Remove it there first.")
    conn = ApsConnection.from_fields(fields)
    if conn.auth_mode is not AuthMode.AUTHORIZATION_CODE:
        raise HTTPException(400, f"Connection {conn_id!r} uses {conn.auth_mode.value}: no consent needed.")
    return conn


def _autodesk_connections() -> list[ConnectionFields]:
    from sqlalchemy import select

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(select(Connection).where(Connection.conn_type == "autodesk")
                               .order_by(Connection.conn_id)).all()
        return [ConnectionFields(conn_id=r.conn_id, conn_type=r.conn_type, host=r.host, login=r.login,
                                 password=r.password, schema=r.schema, port=r.port,
                                 extra=dict(r.extra_dejson) if r.extra else {}) for r in rows]


def _row(fields: ConnectionFields) -> str:
    extra = fields.extra
    mode = str(extra.get("auth_mode") or "authorization_code")
    account = extra.get(ACCOUNT_KEY) or {}
    who = (f"{html.escape(str(account.get('name')))} &lt;{html.escape(str(account.get('email') or '?'))}&gt;"
           f"<br><small>{html.escape(str(account.get('scopes', '')))}</small>") if account else ""
    link = ""
    if mode == "authorization_code":
        status = connection_status(extra)
        link = f"<a class='connect' href='connect/{html.escape(fields.conn_id)}'>Connect Autodesk account</a>"
    else:
        status = "no refresh token needed"
    return (f"<tr><td>{html.escape(fields.conn_id)}</td><td>{html.escape(mode)}</td><td>{who}</td>"
            f"<td>{status}</td><td>{link}</td></tr>")


def connection_status(extra: dict[str, Any]) -> str:
    """A plain-words health line for an authorization_code connection (HTML)."""
    from datetime import datetime, timezone

    if not extra.get(REFRESH_TOKEN_KEY):
        return "<b class='alert'>Not connected: click 'Connect Autodesk account'.</b>"
    if extra.get(PENDING_KEY):
        return ("<b class='alert'>A refresh was interrupted (crash); if runs fail with "
                "'re-authorization required', click 'Connect Autodesk account'.</b>")
    rotated = extra.get(ROTATED_AT_KEY)
    try:
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(str(rotated))).days if rotated else None
    except ValueError:
        age = None
    line = f"generation {extra.get(GENERATION_KEY, 0)} ({html.escape(str(extra.get(FINGERPRINT_KEY, '')))})"
    if age is not None and age >= WARN_AFTER_DAYS:
        return (f"<b class='alert'>Refresh token unused for {age} days: it dies at 15. Run the "
                f"aps_mirror_keepalive DAG or click 'Connect Autodesk account'.</b> {line}")
    return f"connected, last rotation {html.escape(str(rotated))}, {line}"


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
