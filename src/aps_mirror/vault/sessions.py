"""Vault sessions as a bearer source: one ``V:`` session per vault (a session belongs to the
vault it signed in to), signed in on first use and again after a 401.

The transport calls this object on every request (it reads the vault id from the URL) and
calls ``invalidate`` with the token Vault refused, so the next attempt signs in afresh: one
re-login per request, then the 401 is final. Tokens and the password never reach a repr or
a log line.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

import requests

log = logging.getLogger(__name__)

_VAULT_IN_PATH = re.compile(r"/vaults/([^/:?]+)")
SignIn = Callable[[str, str, str], str]  # (vault id, user, password) -> session token


class VaultSessions:
    """Signs a Vault account in to each vault it is asked for, and keeps the session tokens."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._password = password
        self._sign_in: SignIn | None = None
        self._tokens: dict[str, str] = {}  # vault id -> session token
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VaultSessions(user={self.user!r}, vaults={sorted(self._tokens)})"

    def bind(self, sign_in: SignIn) -> None:
        """How to sign in (the client's ``POST /sessions``, once its transport exists)."""
        self._sign_in = sign_in

    def token_for(self, vault_id: str) -> str:
        with self._lock:  # one sign-in per vault at a time, however many threads ask
            token = self._tokens.get(vault_id)
            if token is None:
                if self._sign_in is None:
                    raise RuntimeError("VaultSessions used before bind()")
                token = self._sign_in(vault_id, self.user, self._password)
                self._tokens[vault_id] = token
                log.debug("Signed in to Vault vault %s as %s", vault_id, self.user)
            return token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        found = _VAULT_IN_PATH.search(request.path_url or "")
        if found is not None:
            request.headers["Authorization"] = f"Bearer {self.token_for(found.group(1))}"
        return request

    def invalidate(self, rejected: str) -> None:
        """Vault refused this token (ended or expired session): sign in again on next use."""
        with self._lock:
            for vault_id in [v for v, token in self._tokens.items() if token == rejected]:
                del self._tokens[vault_id]

    def drain(self) -> list[str]:
        """Forget every session and return their tokens (to sign them out)."""
        with self._lock:
            tokens, self._tokens = list(self._tokens.values()), {}
        return tokens
