"""`aps-mirror authorize`: connect an Autodesk account to a connection from a terminal.

Builds the authorize URL (PKCE S256, a random single-use state), waits for Autodesk's redirect
on the loopback callback URL, exchanges the code and stores the refresh token in the Airflow
connection through the same persistence layer the workers use.
"""

from __future__ import annotations

import argparse
import html
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from aps_mirror.aps.auth import PkcePair, authorize_url, exchange_code, new_state
from aps_mirror.backends import installed_backend
from aps_mirror.cli.common import ExitCode
from aps_mirror.connection import DEFAULT_CONN_ID, ApsConnection, AuthMode, lookup_connection
from aps_mirror.errors import AuthError, ConfigError

DEFAULT_CALLBACK = "http://localhost:8080/callback"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default=DEFAULT_CONN_ID)
    parser.add_argument("--callback-url", help="the callback registered for the APS app (a "
                        "loopback http URL; default: the connection's callback_url, else "
                        f"{DEFAULT_CALLBACK})")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the consent (Autodesk's codes live 5 minutes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    conn = ApsConnection.from_fields(lookup_connection(args.conn_id))
    if conn.auth_mode is not AuthMode.AUTHORIZATION_CODE:
        raise ConfigError(f"Connection {conn.conn_id!r} uses auth_mode {conn.auth_mode.value!r}, "
                          "which needs no consent; `authorize` is for 'authorization_code'.")
    redirect_uri = args.callback_url or conn.callback_url or DEFAULT_CALLBACK
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ConfigError(f"The callback {redirect_uri!r} is not a loopback http URL this command "
                          "can listen on; register e.g. http://localhost:8080/callback for the "
                          "app, or connect the account from the Airflow UI instead.")
    store = _store(conn.conn_id)  # fail before the person clicks anything
    pkce, state = PkcePair.new(), new_state()
    url = authorize_url(conn, redirect_uri, state, pkce.challenge)
    print(f"Open this URL, sign in to Autodesk and click Allow:\n\n  {url}\n", flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    code = _wait_for_code(parts.hostname or "localhost", parts.port or 80, parts.path or "/",
                          state, args.timeout)
    with requests.Session() as session:
        auth = exchange_code(conn, session, code=code, redirect_uri=redirect_uri,
                             verifier=pkce.verifier)
        account = who_consented(conn, session, auth.access_token)
    store.save_authorization(auth, account)
    print(f"Connected {account.get('name') or account.get('user_id')} "
          f"<{account.get('email') or '?'}> to connection {conn.conn_id!r} with scopes "
          f"{' '.join(auth.scopes)}. The refresh token is stored in the connection.")
    return ExitCode.OK


def who_consented(conn: ApsConnection, session: requests.Session, access_token: str) -> dict[str, Any]:
    """The consenting user (needs user-profile:read; without it the account stays anonymous)."""
    response = session.get(f"{conn.base_url}/userprofile/v1/users/@me", timeout=30,
                           headers={"Authorization": f"Bearer {access_token}"})
    if response.status_code != 200:
        return {"name": "an Autodesk user (add the user-profile:read scope to see who)"}
    body = response.json()
    name = " ".join(p for p in (body.get("firstName"), body.get("lastName")) if p)
    return {"user_id": body.get("userId"), "name": name or body.get("userName"),
            "email": body.get("emailId") or body.get("email")}


def _store(conn_id: str) -> Any:
    backend = installed_backend()
    if backend is None:
        raise ConfigError("Storing the refresh token needs Airflow (the connection lives there): "
                          "run this where apache-airflow is installed.")
    return backend.token_store(conn_id)


def _wait_for_code(host: str, port: int, path: str, state: str, timeout: float) -> str:
    """Serve the loopback callback until a request with OUR state arrives; others are refused."""
    result: dict[str, str] = {}
    done = threading.Event()

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path != path:
                return self._answer(404, "Not the aps-mirror callback.")
            if query.get("state") != state:  # forged, replayed or from another attempt
                return self._answer(400, "Refused: the state does not match this authorization "
                                         "attempt. Start again with `aps-mirror authorize`.")
            if "error" in query:
                result["error"] = query.get("error_description") or query["error"]
                self._answer(400, f"Autodesk reported: {result['error']}")
            elif "code" in query:
                result["code"] = query["code"]
                self._answer(200, "Connected. You can close this tab and return to the terminal.")
            else:
                return self._answer(400, "The callback carries neither a code nor an error.")
            done.set()

        def _answer(self, status: int, text: str) -> None:
            body = f"<html><body><p>{html.escape(text)}</p></body></html>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # the query string carries the code
            pass

    bind = "127.0.0.1" if host == "localhost" else host
    try:
        server = HTTPServer((bind, port), Callback)
    except OSError as exc:
        raise ConfigError(f"Cannot listen on {bind}:{port} for the callback ({exc.strerror}); "
                          "free the port or register another loopback callback URL.") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if not done.wait(timeout):
            raise AuthError(f"No consent arrived within {timeout:.0f}s; run the command again.")
    finally:
        server.shutdown()
        server.server_close()
    if "error" in result:
        raise AuthError(f"The authorization was not granted ({result['error']}).")
    return result["code"]
