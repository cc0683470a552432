"""OAuth v2: PKCE authorization codes, rotating refresh tokens, client authentication, expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from aps_mirror.simulator import SimulatorServer
from .sim_helpers import REDIRECT, Api, authorize, code_from, pkce_pair

TOKEN = "/authentication/v2/token"


def _exchange(server: SimulatorServer, code: str, verifier: str, redirect_uri: str = REDIRECT) -> requests.Response:
    return requests.post(server.base_url + TOKEN, auth=(server.client_id, server.client_secret),
                         data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                               "code_verifier": verifier})


def _refresh(server: SimulatorServer, refresh_token: str) -> requests.Response:
    # Body credentials this time (the other accepted way).
    return requests.post(server.base_url + TOKEN, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": server.client_id, "client_secret": server.client_secret})


def test_pkce_flow(fresh_server: SimulatorServer) -> None:
    verifier, challenge = pkce_pair()
    redirect = authorize(fresh_server, challenge, state="s-123")
    location = redirect.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    assert parse_qs(urlsplit(location).query)["state"] == ["s-123"]
    r = _exchange(fresh_server, code_from(redirect), verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["refresh_token"]
    me = requests.get(fresh_server.base_url + "/userprofile/v1/users/@me",
                      headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert set(me.json()) >= {"userId", "userName", "emailId", "firstName", "lastName"}


def test_code_replay_and_wrong_verifier(fresh_server: SimulatorServer) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(fresh_server, challenge))
    assert _exchange(fresh_server, code, verifier).status_code == 200
    replay = _exchange(fresh_server, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"

    verifier2, challenge2 = pkce_pair()
    code2 = code_from(authorize(fresh_server, challenge2))
    wrong = _exchange(fresh_server, code2, verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert set(wrong.json()) == {"error", "error_description"}


def test_code_expires_after_five_minutes(fresh_server: SimulatorServer) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(authorize(fresh_server, challenge))
    fresh_server.sim.advance_clock(301)
    assert _exchange(fresh_server, code, verifier).json()["error"] == "invalid_grant"


def test_authorize_errors_render_a_page(fresh_server: SimulatorServer) -> None:
    _verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": fresh_server.client_id, "redirect_uri": "http://evil.example/cb",
              "scope": "data:read", "state": "x", "code_challenge": challenge, "code_challenge_method": "S256"}
    for bad in (params, {**params, "redirect_uri": REDIRECT, "client_id": "nobody"}):
        page = requests.get(fresh_server.base_url + "/authentication/v2/authorize", params=bad, allow_redirects=False)
        assert page.status_code == 400 and "text/html" in page.headers["content-type"]
        post = requests.post(fresh_server.base_url + "/authentication/v2/authorize", data=bad, allow_redirects=False)
        assert post.status_code == 400 and "Location" not in post.headers


def test_refresh_token_rotation(fresh_server: SimulatorServer) -> None:
    verifier, challenge = pkce_pair()
    first = _exchange(fresh_server, code_from(authorize(fresh_server, challenge)), verifier).json()
    second = _refresh(fresh_server, first["refresh_token"])
    assert second.status_code == 200
    new_refresh = second.json()["refresh_token"]
    assert new_refresh != first["refresh_token"]
    reuse = _refresh(fresh_server, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json() == {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}


def test_refresh_reuse_revokes_the_chain_and_tokens_expire_after_15_days(fresh_server: SimulatorServer) -> None:
    verifier, challenge = pkce_pair()
    first = _exchange(fresh_server, code_from(authorize(fresh_server, challenge)), verifier).json()
    second = _refresh(fresh_server, first["refresh_token"]).json()
    _refresh(fresh_server, first["refresh_token"])  # reuse: worst case, the whole chain dies
    assert _refresh(fresh_server, second["refresh_token"]).status_code == 400

    verifier, challenge = pkce_pair()
    again = _exchange(fresh_server, code_from(authorize(fresh_server, challenge)), verifier).json()
    fresh_server.sim.advance_clock(15 * 86400 + 1)
    assert _refresh(fresh_server, again["refresh_token"]).json()["error"] == "invalid_grant"


def test_client_authentication(fresh_server: SimulatorServer) -> None:
    url = fresh_server.base_url + TOKEN
    both = requests.post(url, auth=(fresh_server.client_id, fresh_server.client_secret),
                         data={"grant_type": "client_credentials", "scope": "data:read",
                               "client_id": fresh_server.client_id, "client_secret": fresh_server.client_secret})
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    bad = requests.post(url, auth=(fresh_server.client_id, "wrong"), data={"grant_type": "client_credentials"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    two_legged = requests.post(url, auth=(fresh_server.client_id, fresh_server.client_secret),
                               data={"grant_type": "client_credentials", "scope": "data:read"}).json()
    assert "refresh_token" not in two_legged


def test_expired_access_token_is_auth_006(fresh_server: SimulatorServer) -> None:
    api = Api(fresh_server)
    api.client_credentials()
    assert api.get("/project/v1/hubs").status_code == 200
    requests.post(fresh_server.base_url + "/_sim/clock/advance", json={"seconds": 3600}).raise_for_status()
    r = api.get("/project/v1/hubs")
    assert r.status_code == 401 and r.json()["errorCode"] == "AUTH-006"


def test_two_legged_token_has_no_user(demo_api: Api) -> None:
    r = demo_api.get("/userprofile/v1/users/@me")
    assert r.status_code == 403 and r.json()["errorCode"] == "AUTH-010"


def test_access_token_ttl_is_configurable() -> None:
    with SimulatorServer(seed="empty", access_token_ttl=60) as server:
        assert Api(server).client_credentials()["expires_in"] == 60


def test_user_token_shortcut_and_expiry_helper(fresh_server: SimulatorServer) -> None:
    tokens = requests.post(fresh_server.base_url + "/_sim/user-token", json={"scope": "data:read"}).json()
    api = Api(fresh_server, tokens["access_token"])
    assert api.get("/project/v1/hubs").status_code == 200
    requests.post(fresh_server.base_url + "/_sim/tokens/expire").raise_for_status()
    assert api.get("/project/v1/hubs").json()["errorCode"] == "AUTH-006"
    fresh = _refresh(fresh_server, tokens["refresh_token"]).json()
    assert Api(fresh_server, fresh["access_token"]).get("/project/v1/hubs").status_code == 200
    missing_scope = Api(fresh_server, fresh_server.sim.user_tokens("user-profile:read")["access_token"])
    assert missing_scope.get("/project/v1/hubs").json()["errorCode"] == "AUTH-010"
