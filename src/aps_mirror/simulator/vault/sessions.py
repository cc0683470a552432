"""Vault accounts and sessions: sign-in (``V:`` tokens), sign-out, and who a bearer token is.

A bearer token is a Vault session token (``V:<opaque>``, bound to the vault it signed in to)
or an APS 3-legged access token whose Autodesk user is mapped to a Vault account. A 2-legged
token has no user and is refused ("user context required").
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from ..clock import Clock
from ..errors import InvalidAccessToken
from ..oauth import TokenService
from .errors import NoPermission, NotAuthenticated, SigninFailed, VaultBadRequest
from .model import Vault, VaultUser

SESSION_PREFIX = "V:"


@dataclass(eq=False)
class Session:
    id: str
    token: str = field(repr=False)
    user: VaultUser
    vault: Vault
    app_code: str
    create_time: float


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the Vault user, and the session when signed in with one."""

    user: VaultUser
    session: Session | None = None


def gateway_password_ok(password: str) -> bool:
    """The Vault Gateway's rule for Vault accounts: 8+ characters, a letter and a digit."""
    return len(password) >= 8 and any(c.isalpha() for c in password) and any(c.isdigit() for c in password)


class Sessions:
    """Accounts (by name), their Autodesk ID mappings and the open sessions."""

    def __init__(self, clock: Clock, users: list[VaultUser]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.users: dict[str, VaultUser] = {u.name.casefold(): u for u in users}
        self._by_token: dict[str, Session] = {}

    def user(self, name: str) -> VaultUser:
        found = self.users.get(name.casefold())
        if found is None:
            raise KeyError(f"no Vault user {name!r}")
        return found

    def add_user(self, user: VaultUser) -> None:
        with self._lock:
            self.users[user.name.casefold()] = user

    def login(self, vault: Vault, user_name: str, password: str, app_code: str, gateway: bool) -> Session:
        if not user_name:
            raise VaultBadRequest("Illegal null parameter passed to server.", params=["userName"])
        found = self.users.get(user_name.casefold())
        if found is None or not secrets.compare_digest(found.password.encode(), password.encode()):
            raise SigninFailed("The user name and/or password appears to be invalid; please try again.")
        if gateway and not gateway_password_ok(password):
            # The gateway refuses blank and weak Vault-account passwords (its FAQ); GUESS: as a failed sign-in.
            raise SigninFailed("The Vault Gateway requires a password of at least 8 characters with a letter "
                               "and a digit for Vault accounts.")
        session = Session(secrets.token_hex(8), SESSION_PREFIX + secrets.token_urlsafe(32), found, vault, app_code,
                          self.clock.now())
        with self._lock:
            self._by_token[session.token] = session
        return session

    def logout(self, session: Session) -> None:
        with self._lock:
            self._by_token.pop(session.token, None)

    def expire_all(self) -> None:
        """Every open session ends (Vault does not document a lifetime; tests end them at will)."""
        with self._lock:
            self._by_token.clear()

    def open_sessions(self) -> int:
        with self._lock:
            return len(self._by_token)

    def caller(self, authorization: str | None, vault: Vault | None, oauth: TokenService) -> Caller:
        """The caller of a request for ``vault`` (None: a request outside any vault)."""
        scheme, _, value = (authorization or "").partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("The Authorization header must be 'Bearer <token>'.")
        if token.startswith(SESSION_PREFIX):
            with self._lock:
                session = self._by_token.get(token)
            if session is None:
                raise NotAuthenticated("The session is invalid or has ended.")
            if vault is not None and session.vault is not vault:
                raise NoPermission(f"The session is for the vault {session.vault.name!r}.")
            return Caller(session.user, session)
        try:
            access = oauth.validate(authorization)
        except InvalidAccessToken as exc:
            raise NotAuthenticated(exc.message) from None
        if access.user_id is None:
            raise NotAuthenticated("A user context is required: use a 3-legged token or a Vault session.")
        for user in self.users.values():
            if user.autodesk_user_id == access.user_id:
                return Caller(user)
        raise NotAuthenticated("The Autodesk account is not mapped to a Vault user.")
