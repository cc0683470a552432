"""Autodesk OAuth v2 token service: clients, PKCE authorization codes, rotating refresh tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field

from .clock import Clock
from .errors import AuthorizePageError, InvalidAccessToken, OAuthError
from .ssa import AUTODESK_TOKEN_URL, JWT_BEARER, ServiceAccounts

CODE_TTL = 5 * 60
ACCESS_TOKEN_TTL = 3599
REFRESH_TOKEN_TTL = 15 * 24 * 3600
DEFAULT_REDIRECT_URIS = (
    "http://localhost:8080/callback",
    "http://127.0.0.1:8080/callback",
    "http://localhost:8080/oauth/callback",
)
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
REFRESH_INVALID = "The refresh token is invalid or expired."


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    user_id: str
    expires_at: float


@dataclass
class AccessToken:
    token: str
    client_id: str
    user_id: str | None  # None: 2-legged (client_credentials)
    scopes: tuple[str, ...]
    expires_at: float

    @property
    def three_legged(self) -> bool:
        return self.user_id is not None


@dataclass
class RefreshToken:
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    expires_at: float
    family: str


def pkce_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _scopes(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys((raw or "").replace("+", " ").split()))


class TokenService:
    """All token state. ``revoke_family_on_reuse``: reusing a spent refresh token also kills
    the newer tokens of its chain (Autodesk does not document this; the worst case is default)."""

    def __init__(self, clock: Clock, user_id: str, access_token_ttl: int = ACCESS_TOKEN_TTL,
                 revoke_family_on_reuse: bool = True) -> None:
        self.clock = clock
        self.user_id = user_id
        self.access_token_ttl = access_token_ttl
        self.revoke_family_on_reuse = revoke_family_on_reuse
        self._lock = threading.RLock()
        self.clients: dict[str, Client] = {}
        self._codes: dict[str, AuthCode] = {}
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._spent: dict[str, str] = {}  # spent refresh token -> family
        self.service_accounts = ServiceAccounts()

    # ---- clients
    def register_client(self, client_id: str, client_secret: str,
                        redirect_uris: list[str] | tuple[str, ...] = DEFAULT_REDIRECT_URIS) -> Client:
        with self._lock:
            client = Client(client_id, client_secret, list(redirect_uris))
            self.clients[client_id] = client
            return client

    def add_redirect_uri(self, client_id: str, uri: str) -> None:
        with self._lock:
            client = self.clients[client_id]
            if uri not in client.redirect_uris:
                client.redirect_uris.append(uri)

    def authenticate_client(self, basic: str | None, form_id: str | None, form_secret: str | None) -> Client:
        """Basic auth OR body credentials (both -> 400 invalid_request; wrong -> 401 invalid_client)."""
        if basic is not None and (form_id or form_secret):
            raise OAuthError("invalid_request", "Client credentials must be sent either in the Authorization "
                             "header or in the request body, not both.")
        if basic is not None:
            try:
                client_id, _, secret = base64.b64decode(basic, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "The client credentials are invalid.", 401) from None
        elif form_id:
            client_id, secret = form_id, form_secret or ""
        else:
            raise OAuthError("invalid_client", "The client credentials are missing.", 401)
        with self._lock:
            client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.client_secret, secret):
            raise OAuthError("invalid_client", "The client credentials are invalid.", 401)
        return client

    # ---- authorize
    def check_authorize(self, params: dict[str, str]) -> Client:
        """Validate an authorize request; problems are shown on a page, never redirected."""
        with self._lock:
            client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise AuthorizePageError("Unknown client_id.")
        if params.get("redirect_uri") not in client.redirect_uris:
            raise AuthorizePageError("The redirect_uri does not match the callback URL registered for this app.")
        if params.get("response_type") != "code":
            raise AuthorizePageError("response_type must be 'code'.")
        if params.get("code_challenge") and params.get("code_challenge_method", "S256") != "S256":
            raise AuthorizePageError("Only code_challenge_method=S256 is supported.")
        if not _scopes(params.get("scope")):
            raise AuthorizePageError("scope is required.")
        return client

    def issue_code(self, params: dict[str, str]) -> str:
        client = self.check_authorize(params)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = AuthCode(client.client_id, params["redirect_uri"], _scopes(params.get("scope")),
                                         params.get("code_challenge") or None, self.user_id,
                                         self.clock.now() + CODE_TTL)
        return code

    # ---- token endpoint
    def token(self, client: Client, form: dict[str, str], token_url: str = AUTODESK_TOKEN_URL) -> dict[str, object]:
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            return self._grant_jwt(client, form, token_url)
        if grant == "authorization_code":
            return self._grant_code(client, form)
        if grant == "refresh_token":
            return self._grant_refresh(client, form)
        if grant == "client_credentials":
            scopes = _scopes(form.get("scope")) or ("data:read",)
            return self._issue(client.client_id, None, scopes, with_refresh=False)
        if not grant:
            raise OAuthError("invalid_request", "The grant_type parameter is required.")
        raise OAuthError("unsupported_grant_type", f"The grant type {grant} is not supported.")

    def _grant_code(self, client: Client, form: dict[str, str]) -> dict[str, object]:
        code_value = form.get("code", "")
        with self._lock:
            code = self._codes.pop(code_value, None)  # single use, even when the rest fails
        if code is None or code.client_id != client.client_id or code.expires_at <= self.clock.now():
            raise OAuthError("invalid_grant", "The authorization code is invalid or expired.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "The redirect_uri does not match the one of the authorize request.")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            if not _VERIFIER.match(verifier) or not hmac.compare_digest(pkce_challenge(verifier), code.challenge):
                raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")
        return self._issue(client.client_id, code.user_id, code.scopes, with_refresh=True)

    def _grant_refresh(self, client: Client, form: dict[str, str]) -> dict[str, object]:
        value = form.get("refresh_token", "")
        now = self.clock.now()
        with self._lock:
            token = self._refresh.get(value)
            if token is None or token.client_id != client.client_id or token.expires_at <= now:
                family = self._spent.get(value)
                if family is not None and self.revoke_family_on_reuse:
                    self._revoke_family(family)
                raise OAuthError("invalid_grant", REFRESH_INVALID)
            scopes = token.scopes
            requested = _scopes(form.get("scope"))
            if requested:
                if not set(requested) <= set(token.scopes):
                    raise OAuthError("invalid_scope", "The requested scope exceeds the granted scope.")
                scopes = requested
            del self._refresh[value]
            self._spent[value] = token.family
            return self._issue(client.client_id, token.user_id, scopes, with_refresh=True,
                               family=token.family, refresh_scopes=token.scopes)

    def _grant_jwt(self, client: Client, form: dict[str, str], token_url: str) -> dict[str, object]:
        """Secure Service Account: a signed assertion -> a user-context token, never a refresh token."""
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError("invalid_request", "The assertion parameter is required.")
        account_id, granted = self.service_accounts.verify(assertion, client.client_id,
                                                           (token_url, AUTODESK_TOKEN_URL), self.clock.now())
        scopes = granted
        requested = _scopes(form.get("scope"))
        if requested:
            if not set(requested) <= set(granted):
                raise OAuthError("invalid_scope", "The requested scope exceeds the scope of the assertion.")
            scopes = requested
        return self._issue(client.client_id, account_id, scopes, with_refresh=False)

    def _revoke_family(self, family: str) -> None:
        for key in [k for k, t in self._refresh.items() if t.family == family]:
            del self._refresh[key]
            self._spent[key] = family

    def _issue(self, client_id: str, user_id: str | None, scopes: tuple[str, ...], with_refresh: bool,
               family: str | None = None, refresh_scopes: tuple[str, ...] | None = None) -> dict[str, object]:
        now = self.clock.now()
        access = AccessToken(secrets.token_urlsafe(32), client_id, user_id, scopes, now + self.access_token_ttl)
        body: dict[str, object] = {"access_token": access.token, "token_type": "Bearer",
                                   "expires_in": self.access_token_ttl,
                                   "expires_at": int(access.expires_at)}
        with self._lock:
            self._access[access.token] = access
            if with_refresh and user_id is not None:
                refresh = secrets.token_urlsafe(32)
                self._refresh[refresh] = RefreshToken(client_id, user_id, refresh_scopes or scopes,
                                                      now + REFRESH_TOKEN_TTL, family or secrets.token_hex(8))
                body["refresh_token"] = refresh
        return body

    def user_tokens(self, client_id: str, scope: str = "data:read", user_id: str | None = None) -> dict[str, object]:
        """Shortcut for tests: the token response a completed authorize + code exchange would give."""
        if client_id not in self.clients:
            raise OAuthError("invalid_client", "The client credentials are invalid.", 401)
        return self._issue(client_id, user_id or self.user_id, _scopes(scope) or ("data:read",), with_refresh=True)

    # ---- bearer validation
    def validate(self, authorization: str | None) -> AccessToken:
        if not authorization:
            raise InvalidAccessToken("The Authorization header is missing.")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidAccessToken("The Authorization header must be 'Bearer <token>'.")
        with self._lock:
            token = self._access.get(value.strip())
        if token is None:
            raise InvalidAccessToken("The token is invalid.")
        if token.expires_at <= self.clock.now():
            raise InvalidAccessToken("The token has expired.")
        return token

    def expire_access_tokens(self) -> None:
        """Test helper: every access token issued so far is now expired."""
        with self._lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, self.clock.now())
