"""Who may call the Vault routes: a Vault session (``V:`` token) or an APS 3-legged token of a mapped
user; a 2-legged token is refused (user context required); sign-in rules, sign-out, vault binding."""

from __future__ import annotations

import pytest

from aps_mirror.simulator import SimulatorServer
from .vault_helpers import VaultApi


def _root(api: VaultApi):  # type: ignore[no-untyped-def]
    return api.get(api.vault_path("/folders/root"))


def test_a_session_token_works_until_signed_out(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server)
    session = api.sign_in()
    assert session["accessToken"].startswith("V:")
    assert _root(api).status_code == 200
    current = api.ok("/sessions/@current", "Session")
    assert current["id"] == session["id"] and api.ok(f"/sessions/{session['id']}")["id"] == session["id"]
    assert api.session.delete(api.url("/sessions/@current"), headers=api.headers()).status_code == 204
    body = api.error(_root(api), 401)
    assert body["errorCode"] == "300" and session["accessToken"] not in body["detail"]


def test_sessions_end_when_the_simulator_expires_them(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server)
    api.sign_in()
    fresh_server.sim.vault.expire_sessions()
    api.error(_root(api), 401)
    api.sign_in()
    assert _root(api).status_code == 200


@pytest.mark.parametrize("user", [None, "viewer"])
def test_aps_three_legged_tokens_of_mapped_users_work(demo_server: SimulatorServer, user: str | None) -> None:
    api = VaultApi(demo_server).aps_user(user)
    assert _root(api).status_code == 200
    api.error(api.get("/sessions/@current"), 404)  # an APS token has no Vault session


def test_a_two_legged_token_is_refused(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server)
    r = api.session.post(f"{demo_server.base_url}/authentication/v2/token", auth=(demo_server.client_id,
                         demo_server.client_secret), data={"grant_type": "client_credentials", "scope": "data:read"})
    api.token = r.json()["access_token"]
    body = api.error(_root(api), 401)
    assert "user context" in body["detail"]


def test_unmapped_autodesk_users_are_refused_until_mapped(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    api = VaultApi(fresh_server)
    api.token = sim.user_tokens(user="SIMOTHERUSER1")["access_token"]
    assert "not mapped" in api.error(_root(api), 401)["detail"]
    sim.vault.add_user("other.user", "Other2024x", autodesk_user_id="SIMOTHERUSER1")
    assert _root(api).status_code == 200


def test_missing_malformed_and_expired_tokens(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server)
    api.error(_root(api), 401)
    api.token = "V:not-a-session"
    api.error(_root(api), 401)
    api.aps_user()
    assert _root(api).status_code == 200
    fresh_server.sim.expire_access_tokens()
    api.error(_root(api), 401)


def test_routes_that_need_no_token(demo_server: SimulatorServer) -> None:
    api = VaultApi(demo_server)
    for path in ("/server-info", "/vaults", f"/vaults/{api.vault_id}"):
        assert api.get(path, auth=False).status_code == 200, path
    for path in ("/folders/root", "/file-versions", "/property-definitions", "/folders/root/contents"):
        api.error(api.get(api.vault_path(path), auth=False), 401)


def test_sign_in_errors(fresh_server: SimulatorServer) -> None:
    api = VaultApi(fresh_server)

    def sign_in(**given: str):  # type: ignore[no-untyped-def]
        body = {"vault": "Engineering", "userName": "sam.builder", "password": "Builder2024", "appCode": "t", **given}
        return api.post("/sessions", json={"input": body}, auth=False)

    assert api.error(sign_in(password="wrong-2024"), 400)["errorCode"] == "301"
    assert api.error(sign_in(userName="nobody"), 400)["errorCode"] == "301"
    assert api.error(sign_in(vault="Nope"), 404)["errorCode"] == "133"
    api.error(api.post("/sessions", json={"vault": "Engineering"}, auth=False), 400)
    # The gateway refuses blank and weak Vault-account passwords; the server itself does not.
    api.error(sign_in(userName="Administrator", password=""), 400)
    fresh_server.sim.vault.configure(gateway=False)
    assert sign_in(userName="Administrator", password="").status_code == 200


def test_a_session_belongs_to_its_vault(fresh_server: SimulatorServer) -> None:
    sim = fresh_server.sim
    other = sim.vault.add_vault("Archive")
    api = VaultApi(fresh_server)
    api.sign_in()
    assert api.error(api.get(f"/vaults/{other}/folders/root"), 403)["errorCode"] == "303"
    api.sign_in(vault="Archive")
    assert api.ok(f"/vaults/{other}/folders/root")["fullName"] == "$"
    api.aps_user()  # an Autodesk ID reaches every vault
    assert api.get(f"/vaults/{other}/folders/root").status_code == 200


def test_secrets_stay_out_of_reprs(fresh_server: SimulatorServer) -> None:
    vault = fresh_server.sim.vault
    session = vault.login(vault.vault("Engineering"), "sam.builder", "Builder2024", "t")
    assert session.token not in repr(session)
    assert "Builder2024" not in repr(vault.user("sam.builder")) and "Builder2024" not in repr(session)
