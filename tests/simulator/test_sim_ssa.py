"""Secure Service Accounts (jwt-bearer grant) and the refresh-token reuse-detection switch."""

from __future__ import annotations

from typing import Any

import jwt
import requests

from aps_mirror.simulator import Clock, Simulator, SimulatorServer
from .sim_helpers import Api, enc, validate

TOKEN = "/authentication/v2/token"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _assertion(server: SimulatorServer, reg: Any, **overrides: Any) -> str:
    now = int(server.sim.clock.now())
    claims = {"iss": server.client_id, "sub": reg.service_account_id, "aud": server.base_url + TOKEN,
              "exp": now + 300, "scope": ["data:read", "user-profile:read"], **overrides}
    return jwt.encode(claims, reg.private_key_pem, algorithm="RS256", headers={"kid": reg.kid})


def _exchange(server: SimulatorServer, assertion: str, **extra: str) -> requests.Response:
    return requests.post(server.base_url + TOKEN, auth=(server.client_id, server.client_secret),
                         data={"grant_type": GRANT, "assertion": assertion, **extra})


def test_jwt_bearer_gives_a_user_token_without_refresh(fresh_server: SimulatorServer) -> None:
    reg = fresh_server.sim.add_service_account("nightly")
    r = _exchange(fresh_server, _assertion(fresh_server, reg))
    assert r.status_code == 200, r.text
    body = r.json()
    assert "refresh_token" not in body and body["token_type"] == "Bearer" and body["expires_in"] == 3599
    validate(body, "authentication.yaml", "twoLeggedToken")
    api = Api(fresh_server, body["access_token"])
    me = api.ok("/userprofile/v1/users/@me")
    assert me["userId"] == reg.service_account_id
    hub = api.ok("/project/v1/hubs")["data"][0]["id"]
    assert api.get(f"/project/v1/hubs/{enc(hub)}/projects").status_code == 200
    narrower = _exchange(fresh_server, _assertion(fresh_server, reg), scope="data:read")
    assert narrower.status_code == 200
    assert Api(fresh_server, narrower.json()["access_token"]).get("/userprofile/v1/users/@me").status_code == 403


def test_jwt_bearer_refusals(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    reg = sim.add_service_account()
    other = sim.add_service_account("other")
    now = int(sim.clock.now())
    cases = {
        "wrong issuer": _assertion(fresh_server, reg, iss="someone-else"),
        "wrong audience": _assertion(fresh_server, reg, aud="https://example.com/token"),
        "expired": _assertion(fresh_server, reg, exp=now - 1),
        "too long": _assertion(fresh_server, reg, exp=now + 3600),
        "unknown subject": _assertion(fresh_server, reg, sub="NOPE"),
        "no scope": _assertion(fresh_server, reg, scope=[]),
        "wrong key": jwt.encode({"iss": fresh_server.client_id, "sub": reg.service_account_id,
                                 "aud": fresh_server.base_url + TOKEN, "exp": now + 60, "scope": ["data:read"]},
                                other.private_key_pem, algorithm="RS256"),
        "not a jwt": "abc.def",
        "HS256": jwt.encode({"iss": fresh_server.client_id, "sub": reg.service_account_id}, "k" * 32,
                            algorithm="HS256"),
    }
    for name, assertion in cases.items():
        r = _exchange(fresh_server, assertion)
        assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_scope"), name
    assert _exchange(fresh_server, _assertion(fresh_server, reg), scope="data:write").json()["error"] == "invalid_scope"
    # Autodesk's own token URL is an accepted audience too.
    ok = _exchange(fresh_server, _assertion(fresh_server, reg,
                                            aud="https://developer.api.autodesk.com/authentication/v2/token"))
    assert ok.status_code == 200


def test_service_accounts_over_http(fresh_server: SimulatorServer) -> None:
    made = requests.post(fresh_server.base_url + "/_sim/service-accounts", json={"name": "ci"}).json()
    assert made["privateKey"].startswith("-----BEGIN PRIVATE KEY-----") and made["clientId"] == fresh_server.client_id
    listed = requests.get(fresh_server.base_url + "/_sim/service-accounts").json()["serviceAccounts"]
    assert [a["serviceAccountId"] for a in listed] == [made["serviceAccountId"]]
    claims = {"iss": fresh_server.client_id, "sub": made["serviceAccountId"], "aud": fresh_server.base_url + TOKEN,
              "exp": int(fresh_server.sim.clock.now()) + 120, "scope": "data:read"}
    assertion = jwt.encode(claims, made["privateKey"], algorithm="RS256", headers={"kid": made["kid"]})
    assert _exchange(fresh_server, assertion).status_code == 200


def _refresh(server: SimulatorServer, token: str) -> requests.Response:
    return requests.post(server.base_url + TOKEN, auth=(server.client_id, server.client_secret),
                         data={"grant_type": "refresh_token", "refresh_token": token})


def test_reuse_detection_can_be_switched_off() -> None:
    for detect in (True, False):
        with SimulatorServer(Simulator(seed="empty", rate_scale=0, clock=Clock(start=1_800_000_000.0),
                                       reuse_detection=detect)) as server:
            first = server.sim.user_tokens()["refresh_token"]
            second = _refresh(server, first).json()["refresh_token"]
            assert _refresh(server, first).status_code == 400  # always single use
            assert (_refresh(server, second).status_code == 200) is (not detect)
    with SimulatorServer(Simulator(seed="empty", rate_scale=0)) as server:
        r = requests.post(server.base_url + "/_sim/switches", json={"reuse_detection": False})
        assert r.json()["reuse_detection"] is False and server.sim.reuse_detection is False
