"""OAuth v2 routes (consent page, token endpoint) and the user profile."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from . import serialize
from .errors import NoPrivilege, OAuthError
from .oauth import AccessToken
from .sim import Simulator
from .web import auth_dependencies, charge, page


def register(app: FastAPI, sim: Simulator) -> None:
    """Add ``/authentication/v2/authorize``, ``/authentication/v2/token`` and ``/userprofile/v1/users/@me``."""
    account = sim.account
    bearer, _data_reader = auth_dependencies(sim)

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
        return HTMLResponse(page("Autodesk Platform Services (simulator): authorize", inner))

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
        charge(sim, request, client.client_id, "token")
        token_url = f"{str(request.base_url).rstrip('/')}/authentication/v2/token"
        return JSONResponse(sim.oauth.token(client, form, token_url), headers={"Cache-Control": "no-store"})

    @app.get("/userprofile/v1/users/@me")
    def me(token: AccessToken = Depends(bearer)) -> JSONResponse:
        # A 2-legged token has no user: Autodesk's gateway refuses it (403 AUTH-010).
        if not token.three_legged:
            raise NoPrivilege("A two-legged token has no user context; this call needs a three-legged token.")
        if not {"user-profile:read", "user:read"} & set(token.scopes):
            raise NoPrivilege("The token does not have the user-profile:read scope.")
        return JSONResponse(serialize.user_profile(sim.user_of(token.user_id)))
