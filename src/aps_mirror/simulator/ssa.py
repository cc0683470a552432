"""Secure Service Accounts: registered RSA keys and RS256 JWT assertions for the jwt-bearer grant."""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import OAuthError

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUTODESK_TOKEN_URL = "https://developer.api.autodesk.com/authentication/v2/token"
MAX_ASSERTION_LIFETIME = 300  # Autodesk: exp at most 5 minutes ahead


@dataclass
class ServiceAccount:
    account_id: str
    client_id: str
    email: str
    enabled: bool = True
    keys: dict[str, bytes] = field(default_factory=dict)  # kid -> public key PEM


@dataclass(frozen=True)
class Registration:
    """What ``add_service_account`` hands back: the account id, key id and the private key (PEM)."""

    service_account_id: str
    kid: str
    private_key_pem: str
    email: str


def new_key_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


class ServiceAccounts:
    """Service accounts per client id and the verification of their assertions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, ServiceAccount] = {}

    def add(self, client_id: str, name: str = "mirror") -> Registration:
        private, public = new_key_pair()
        account_id = hashlib.sha1(f"{client_id}/{name}/{len(self._accounts)}".encode()).hexdigest()[:16].upper()
        kid = str(uuid.uuid4())
        email = f"{name.lower()}@{account_id.lower()}.adskserviceaccount.com"
        with self._lock:
            self._accounts[account_id] = ServiceAccount(account_id, client_id, email, keys={kid: public})
        return Registration(account_id, kid, private.decode(), email)

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"serviceAccountId": a.account_id, "email": a.email, "clientId": a.client_id,
                     "status": "ENABLED" if a.enabled else "DISABLED", "keys": sorted(a.keys)}
                    for a in self._accounts.values()]

    def set_enabled(self, account_id: str, enabled: bool) -> None:
        with self._lock:
            self._accounts[account_id].enabled = enabled

    def verify(self, assertion: str, client_id: str, audiences: tuple[str, ...],
               now: float) -> tuple[str, tuple[str, ...]]:
        """(service account id, scopes) of a valid assertion, else 400 ``invalid_grant``."""
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "The assertion is not a valid JWT.") from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "The assertion must be signed with RS256.")
        with self._lock:
            account = self._accounts.get(str(claims.get("sub", "")))
        if account is None or not account.enabled:
            raise OAuthError("invalid_grant", "The service account is unknown or not enabled.")
        if claims.get("iss") != client_id or account.client_id != client_id:
            raise OAuthError("invalid_grant", "The assertion issuer must be the client id of the service account.")
        keys = [account.keys[header["kid"]]] if header.get("kid") in account.keys else list(account.keys.values())
        for public in keys:
            try:
                claims = jwt.decode(assertion, public, algorithms=["RS256"], audience=list(audiences),
                                    options={"verify_exp": False, "require": ["iss", "sub", "aud", "exp"]})
                break
            except jwt.InvalidAudienceError:
                raise OAuthError("invalid_grant", "The assertion audience must be the token URL.") from None
            except jwt.PyJWTError:
                continue
        else:
            raise OAuthError("invalid_grant", "The assertion signature does not verify.")
        exp = float(claims["exp"])
        if exp <= now:
            raise OAuthError("invalid_grant", "The assertion has expired.")
        if exp > now + MAX_ASSERTION_LIFETIME + 5:
            raise OAuthError("invalid_grant", "The assertion expiry must be at most 5 minutes ahead.")
        raw_scope = claims.get("scope")
        scopes = tuple(raw_scope.split() if isinstance(raw_scope, str) else raw_scope or ())
        if not scopes:
            raise OAuthError("invalid_scope", "The assertion carries no scope claim.")
        return account.account_id, scopes
