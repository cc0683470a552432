"""Get a 3-legged refresh token from the simulator the way a person would: authorize + PKCE."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import requests

from aps_mirror.simulator import SimulatorServer
from aps_mirror.simulator.oauth import DEFAULT_REDIRECT_URIS

CALLBACK = DEFAULT_REDIRECT_URIS[0]
SCOPES = "data:read user-profile:read"


def authorize(server: SimulatorServer, scopes: str = SCOPES) -> str:
    """Run authorization_code with PKCE against the simulator; return the first refresh token."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    allow = requests.post(f"{server.base_url}/authentication/v2/authorize", allow_redirects=False, data={
        "response_type": "code", "client_id": server.client_id, "redirect_uri": CALLBACK,
        "scope": scopes, "state": "s1", "code_challenge": challenge,
        "code_challenge_method": "S256", "action": "allow"}, timeout=10)
    assert allow.status_code == 302, allow.text
    code = parse_qs(urlsplit(allow.headers["location"]).query)["code"][0]
    token = requests.post(f"{server.base_url}/authentication/v2/token",
                          auth=(server.client_id, server.client_secret), timeout=10, data={
                              "grant_type": "authorization_code", "code": code,
                              "redirect_uri": CALLBACK, "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return token.json()["refresh_token"]


def refresh(server: SimulatorServer, refresh_token: str) -> requests.Response:
    """Present a refresh token to the simulator's token endpoint."""
    return requests.post(f"{server.base_url}/authentication/v2/token",
                         auth=(server.client_id, server.client_secret), timeout=10,
                         data={"grant_type": "refresh_token", "refresh_token": refresh_token})
