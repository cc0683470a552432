"""OAuth for APS: one token provider per connection, refreshing before expiry and on a 401.

Three modes: `authorization_code` (a user's rotating refresh token), `ssa` (Secure Service
Account: a JWT-bearer assertion signed with the account's private key, no refresh chain) and
`client_credentials` (2-legged). Refresh tokens rotate on every use and the old one dies, so
a refresh runs inside the store's rotation guard (serialised across processes, re-reading the
newest token under it) and the new token is handed to the `TokenStore` before the access token
is used: losing it would force a person to re-authorize.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable
from urllib.parse import urlencode

import requests

from aps_mirror.aps.parsing import loads_json
from aps_mirror.aps.retry import RETRYABLE_STATUSES, RetryableResponse, RetryPolicy, make_retrying
from aps_mirror.connection import ApsConnection, AuthMode, SsaConnection
from aps_mirror.errors import AuthError, ConfigError, ReauthorizationRequired

log = logging.getLogger(__name__)

TOKEN_PATH = "/authentication/v2/token"
AUTHORIZE_PATH = "/authentication/v2/authorize"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Refresh this long before the access token expires, so no request carries a dying token.
EXPIRY_MARGIN_SECONDS = 60.0
# An SSA assertion only has to survive one token request; APS caps its lifetime at minutes.
SSA_ASSERTION_TTL_SECONDS = 300


class TokenStore(Protocol):
    """Where the current refresh token lives between runs."""

    def load_refresh_token(self) -> str | None: ...

    def save_refresh_token(self, refresh_token: str) -> None: ...


@runtime_checkable
class RotationGuard(Protocol):
    """Optional extras of a TokenStore shared by several processes (see `TokenProvider._fetch`)."""

    def rotation(self) -> AbstractContextManager[None]:
        """Held from loading the refresh token to saving its successor: one refresh at a time."""

    def before_refresh(self, refresh_token: str) -> None:
        """Record that this token is about to be spent (so a crash afterwards can be explained)."""

    def diagnose_rejected(self, refresh_token: str) -> str | None:
        """Why APS may have refused this token (e.g. an interrupted earlier refresh), or None."""


class MemoryTokenStore:
    """A token store that lives as long as the process (tests, one-off CLI runs)."""

    def __init__(self, refresh_token: str | None = None) -> None:
        self._refresh_token = refresh_token

    def load_refresh_token(self) -> str | None:
        return self._refresh_token

    def save_refresh_token(self, refresh_token: str) -> None:
        self._refresh_token = refresh_token


def fingerprint(token: str) -> str:
    """A short, non-secret name for a token: tells readers whether two copies are the same."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def ssa_assertion(conn: SsaConnection, token_url: str, now: float | None = None) -> str:
    """The RS256 JWT-bearer assertion APS exchanges for a service account's access token."""
    import jwt  # PyJWT with `cryptography`: only SSA connections need them

    issued = int(time.time() if now is None else now)
    claims = {"iss": conn.client_id, "sub": conn.service_account_id, "aud": token_url,
              "iat": issued, "exp": issued + SSA_ASSERTION_TTL_SECONDS,
              "jti": uuid.uuid4().hex, "scope": list(conn.scopes)}
    headers = {"kid": conn.private_key_id} if conn.private_key_id else None
    try:
        return jwt.encode(claims, conn.private_key, algorithm="RS256", headers=headers)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"The private_key of connection {conn.conn_id!r} cannot sign an RS256 assertion "
            f"({type(exc).__name__}); paste the PEM of the RSA key APS generated for the "
            "service account, including the BEGIN/END lines."
        ) from None


@dataclass(frozen=True)
class PkcePair:
    """A fresh PKCE verifier (secret, kept server side) and its S256 challenge (sent to APS)."""

    verifier: str = field(repr=False)
    challenge: str

    @classmethod
    def new(cls) -> PkcePair:
        verifier = secrets.token_urlsafe(64)  # 86 chars of [A-Za-z0-9_-]: within 43..128
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


def new_state() -> str:
    """An unguessable, single-use `state` value."""
    return secrets.token_urlsafe(32)


def authorize_url(conn: ApsConnection, redirect_uri: str, state: str, challenge: str) -> str:
    """Where a person consents: response_type=code, exact redirect_uri, scopes, state, PKCE S256."""
    query = urlencode({"response_type": "code", "client_id": conn.client_id,
                       "redirect_uri": redirect_uri, "scope": " ".join(conn.scopes),
                       "state": state, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return f"{conn.base_url}{AUTHORIZE_PATH}?{query}"


@dataclass(frozen=True)
class Authorization:
    """What a completed consent gave us (the refresh token is the part that must be stored)."""

    refresh_token: str = field(repr=False)
    access_token: str = field(repr=False)
    expires_in: float
    scopes: tuple[str, ...]


def exchange_code(conn: ApsConnection, session: requests.Session, *, code: str,
                  redirect_uri: str, verifier: str, timeout: float = 30.0) -> Authorization:
    """Trade an authorization code (single use, 5 minutes) and its PKCE verifier for tokens."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    payload = _post_token_form(conn, session, form, timeout=timeout, retry_policy=None)
    if not payload.get("refresh_token"):
        raise AuthError("APS answered the code exchange without a refresh token; check that the "
                        "app is a 'Traditional Web App' (or Desktop/SPA with PKCE) at APS.")
    scope = payload.get("scope")
    return Authorization(refresh_token=str(payload["refresh_token"]),
                         access_token=str(payload["access_token"]),
                         expires_in=float(payload.get("expires_in") or 3599),
                         scopes=tuple(str(scope).split()) if scope else conn.scopes)


@dataclass
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # time.monotonic() seconds

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - EXPIRY_MARGIN_SECONDS


class TokenProvider:
    """Hands out a valid access token for one connection, fetching or refreshing as needed."""

    def __init__(
        self,
        connection: ApsConnection,
        session: requests.Session,
        token_store: TokenStore | None = None,
        *,
        on_request: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._conn = connection
        self._session = session
        self._store = token_store or MemoryTokenStore(connection.refresh_token)
        self._on_request = on_request or (lambda endpoint: None)
        self._clock = clock
        self._timeout = timeout
        self._retry_policy = retry_policy or RetryPolicy()
        self._token: AccessToken | None = None
        # One refresh at a time per process: two threads presenting the same single-use
        # refresh token would burn it. Across processes the store's rotation guard does it.
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            if self._token is None or not self._token.fresh(self._clock()):
                self._token = self._fetch()
            return self._token.value

    def invalidate(self, rejected: str) -> None:
        """Forget the access token APS just rejected (unless another thread replaced it)."""
        with self._lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None

    def _fetch(self) -> AccessToken:
        mode = self._conn.auth_mode
        if mode is AuthMode.CLIENT_CREDENTIALS:
            payload = self._post_token({"grant_type": "client_credentials",
                                        "scope": " ".join(self._conn.scopes)})
        elif mode is AuthMode.SSA:
            payload = self._post_token(self._ssa_form())
        else:
            payload = self._rotate()
        expires_in = float(payload.get("expires_in") or 3599)
        return AccessToken(value=payload["access_token"], expires_at=self._clock() + expires_in)

    def _rotate(self) -> dict:
        """Spend the newest refresh token and persist its successor, all under the guard.

        Loading inside the guard is what makes a process adopt a token another one rotated:
        it never presents a copy it read before the last rotation finished.
        """
        guard = self._store if isinstance(self._store, RotationGuard) else None
        with guard.rotation() if guard else nullcontext():
            refresh_token = self._store.load_refresh_token()
            if not refresh_token:
                raise ReauthorizationRequired(
                    f"Connection {self._conn.conn_id!r} has no refresh token: connect the account "
                    "once (`aps-mirror authorize --conn-id "
                    f"{self._conn.conn_id}` or the Airflow UI's 'Connect Autodesk account' page)."
                )
            if guard:
                guard.before_refresh(refresh_token)
            try:
                payload = self._post_token({"grant_type": "refresh_token",
                                            "refresh_token": refresh_token})
            except ReauthorizationRequired as exc:
                why = guard.diagnose_rejected(refresh_token) if guard else None
                if why:
                    raise ReauthorizationRequired(f"{exc} {why}") from None
                raise
            new_refresh = payload.get("refresh_token")
            if new_refresh:
                # Persist before use: the old refresh token is already dead at Autodesk.
                self._store.save_refresh_token(new_refresh)
            return payload

    def _ssa_form(self) -> dict[str, str]:
        if not isinstance(self._conn, SsaConnection):
            raise ConfigError(
                f"Connection {self._conn.conn_id!r} uses auth_mode 'ssa' but was loaded without "
                "its service account and private key; build it with ApsConnection.from_fields "
                "so extra.service_account_id and extra.private_key are read."
            )
        assertion = ssa_assertion(self._conn, self._conn.base_url + TOKEN_PATH)
        return {"grant_type": JWT_BEARER_GRANT, "assertion": assertion,
                "scope": " ".join(self._conn.scopes)}

    def _post_token(self, form: dict[str, str]) -> dict:
        return _post_token_form(self._conn, self._session, form, timeout=self._timeout,
                                retry_policy=self._retry_policy, on_request=self._on_request)


def _post_token_form(conn: ApsConnection, session: requests.Session, form: dict[str, str], *,
                     timeout: float, retry_policy: RetryPolicy | None,
                     on_request: Callable[[str], None] | None = None) -> dict[str, Any]:
    """POST one grant to the token endpoint (Basic client auth); typed errors for failures."""
    url = conn.base_url + TOKEN_PATH

    def attempt() -> requests.Response:
        if on_request:
            on_request("token")
        response = session.post(url, data=form, auth=(conn.client_id, conn.client_secret),
                                headers={"Accept": "application/json"}, timeout=timeout)
        if response.status_code in RETRYABLE_STATUSES:
            raise RetryableResponse(response)
        return response

    try:
        response = make_retrying(retry_policy or RetryPolicy(attempts=3, backoff_initial=0.5),
                                 describe="APS token request")(attempt)
    except RetryableResponse as exc:
        response = exc.response
    except requests.RequestException as exc:
        raise AuthError(
            f"Could not reach APS at {conn.base_url} to get a token "
            f"({type(exc).__name__}); check the connection's API base URL and the network."
        ) from None
    body = _json_or_empty(response)
    if response.status_code == 200 and "access_token" in body:
        return body
    error = body.get("error") or body.get("errorCode") or f"HTTP {response.status_code}"
    grant = form["grant_type"]
    if response.status_code == 401 or error == "invalid_client":
        raise AuthError(
            f"APS refused the client id/secret of connection {conn.conn_id!r} "
            f"({error}); copy them again from your app at aps.autodesk.com."
        )
    if error == "invalid_grant" and grant == "refresh_token":
        raise ReauthorizationRequired(
            f"APS says the refresh token of connection {conn.conn_id!r} is invalid or "
            "expired (unused for 15 days, or already used). Authorize the app again with "
            f"`aps-mirror authorize --conn-id {conn.conn_id}` or the Airflow UI's "
            "'Connect Autodesk account' page (Browse > Autodesk accounts)."
        )
    if error == "invalid_grant" and grant == "authorization_code":
        raise AuthError(
            "APS refused the authorization code (expired after 5 minutes, already used, or the "
            "PKCE verifier / redirect_uri does not match the authorize request); start again."
        )
    if error == "invalid_grant" and grant == JWT_BEARER_GRANT:
        raise AuthError(
            f"APS refused the service-account assertion of connection {conn.conn_id!r}: check "
            "extra.service_account_id, that private_key/private_key_id belong to it, that the "
            "account is enabled, and the worker's clock."
        )
    if error == "invalid_scope":
        raise AuthError(
            f"APS refused the scopes {' '.join(conn.scopes)!r} of connection "
            f"{conn.conn_id!r}; fix the 'scopes' field (e.g. 'data:read')."
        )
    raise AuthError(
        f"APS token request failed with HTTP {response.status_code} ({error}) for "
        f"connection {conn.conn_id!r}."
    )


class BearerAuth(requests.auth.AuthBase):
    """Puts the provider's current access token on each request."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.provider.access_token()}"
        return request

    def invalidate(self, rejected: str) -> None:
        """The server refused this token: the provider fetches another on the next request."""
        self.provider.invalidate(rejected)


def _json_or_empty(response: requests.Response) -> dict:
    try:
        body = loads_json(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
