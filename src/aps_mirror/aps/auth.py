"""OAuth for APS: one token provider per connection, refreshing before expiry and on a 401.

Refresh tokens rotate on every use and the old one dies, so the new token is handed to the
`TokenStore` before the access token is used: losing it would force a person to re-authorize.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import requests

from aps_mirror.aps.parsing import loads_json
from aps_mirror.aps.retry import RETRYABLE_STATUSES, RetryableResponse, RetryPolicy, make_retrying
from aps_mirror.connection import ApsConnection, AuthMode
from aps_mirror.errors import AuthError, ConfigError, ReauthorizationRequired

log = logging.getLogger(__name__)

TOKEN_PATH = "/authentication/v2/token"
# Refresh this long before the access token expires, so no request carries a dying token.
EXPIRY_MARGIN_SECONDS = 60.0


class TokenStore(Protocol):
    """Where the current refresh token lives between runs."""

    def load_refresh_token(self) -> str | None: ...

    def save_refresh_token(self, refresh_token: str) -> None: ...


class MemoryTokenStore:
    """A token store that lives as long as the process (tests, one-off CLI runs)."""

    def __init__(self, refresh_token: str | None = None) -> None:
        self._refresh_token = refresh_token

    def load_refresh_token(self) -> str | None:
        return self._refresh_token

    def save_refresh_token(self, refresh_token: str) -> None:
        self._refresh_token = refresh_token


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
        # refresh token would burn it.
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
            form = {"grant_type": "client_credentials", "scope": " ".join(self._conn.scopes)}
        elif mode is AuthMode.AUTHORIZATION_CODE:
            refresh_token = self._store.load_refresh_token()
            if not refresh_token:
                raise ReauthorizationRequired(
                    f"Connection {self._conn.conn_id!r} has no refresh token: authorize the app "
                    "once (`aps-mirror authorize`) so a refresh token is stored in it."
                )
            form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        else:
            raise ConfigError(
                f"Connection {self._conn.conn_id!r} uses auth_mode {mode.value!r}, which this "
                "version cannot use yet; use 'client_credentials' or 'authorization_code'."
            )
        payload = self._post_token(form)
        new_refresh = payload.get("refresh_token")
        if mode is AuthMode.AUTHORIZATION_CODE and new_refresh:
            # Persist before use: the old refresh token is already dead at Autodesk.
            self._store.save_refresh_token(new_refresh)
        expires_in = float(payload.get("expires_in") or 3599)
        return AccessToken(value=payload["access_token"], expires_at=self._clock() + expires_in)

    def _post_token(self, form: dict[str, str]) -> dict:
        url = self._conn.base_url + TOKEN_PATH

        def attempt() -> requests.Response:
            self._on_request("token")
            response = self._session.post(
                url,
                data=form,
                auth=(self._conn.client_id, self._conn.client_secret),
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
            if response.status_code in RETRYABLE_STATUSES:
                raise RetryableResponse(response)
            return response

        try:
            response = make_retrying(self._retry_policy, describe="APS token request")(attempt)
        except RetryableResponse as exc:
            response = exc.response
        except requests.RequestException as exc:
            raise AuthError(
                f"Could not reach APS at {self._conn.base_url} to get a token "
                f"({type(exc).__name__}); check the connection's API base URL and the network."
            ) from None
        body = _json_or_empty(response)
        if response.status_code == 200 and "access_token" in body:
            return body
        error = body.get("error") or body.get("errorCode") or f"HTTP {response.status_code}"
        if response.status_code == 401 or error == "invalid_client":
            raise AuthError(
                f"APS refused the client id/secret of connection {self._conn.conn_id!r} "
                f"({error}); copy them again from your app at aps.autodesk.com."
            )
        if error == "invalid_grant" and form["grant_type"] == "refresh_token":
            raise ReauthorizationRequired(
                f"APS says the refresh token of connection {self._conn.conn_id!r} is invalid or "
                "expired (unused for 15 days, or already used). Authorize the app again with "
                "`aps-mirror authorize` or the Airflow UI's 'Connect Autodesk account' page."
            )
        if error == "invalid_scope":
            raise AuthError(
                f"APS refused the scopes {' '.join(self._conn.scopes)!r} of connection "
                f"{self._conn.conn_id!r}; fix the 'scopes' field (e.g. 'data:read')."
            )
        raise AuthError(
            f"APS token request failed with HTTP {response.status_code} ({error}) for "
            f"connection {self._conn.conn_id!r}."
        )


class BearerAuth(requests.auth.AuthBase):
    """Puts the provider's current access token on each request."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.provider.access_token()}"
        return request


def _json_or_empty(response: requests.Response) -> dict:
    try:
        body = loads_json(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
