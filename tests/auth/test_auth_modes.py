"""The three auth modes against the simulator, and the pieces of the consent flow."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from aps_mirror.aps.auth import (
    MemoryTokenStore,
    PkcePair,
    SsaConnection,
    TokenProvider,
    authorize_url,
    exchange_code,
    new_state,
)
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.connection import AuthMode, ConnectionFields
from aps_mirror.errors import AuthError, ConfigError, ReauthorizationRequired
from aps_mirror.simulator import SimulatorServer
from aps_mirror.simulator.oauth import DEFAULT_REDIRECT_URIS
from tests.conftest import connection_for

CALLBACK = DEFAULT_REDIRECT_URIS[0]


def test_client_credentials_with_a_user_id_lists_hubs(simulator: SimulatorServer) -> None:
    conn = connection_for(simulator, user_id="SIMU5ER7DEMO")
    assert ApsClient(ApsTransport(conn)).hubs()


def test_authorization_code_rotates_and_stores_each_new_token(simulator: SimulatorServer) -> None:
    first = simulator.sim.user_tokens()["refresh_token"]
    store = MemoryTokenStore(first)
    conn = connection_for(simulator, auth_mode=AuthMode.AUTHORIZATION_CODE, scopes=("data:read",))
    for _ in range(3):
        TokenProvider(conn, requests.Session(), store).access_token()
    assert store.load_refresh_token() != first
    assert set(simulator.sim.oauth._refresh) == {store.load_refresh_token()}


def test_a_spent_refresh_token_asks_for_reauthorization(simulator: SimulatorServer) -> None:
    store = MemoryTokenStore(simulator.sim.user_tokens()["refresh_token"])
    conn = connection_for(simulator, auth_mode=AuthMode.AUTHORIZATION_CODE)
    spent = store.load_refresh_token()
    TokenProvider(conn, requests.Session(), store).access_token()
    with pytest.raises(ReauthorizationRequired, match="aps-mirror authorize"):
        TokenProvider(conn, requests.Session(), MemoryTokenStore(spent)).access_token()


def ssa_fields(simulator: SimulatorServer, **extra: str) -> ConnectionFields:
    account = simulator.sim.add_service_account()
    values = {"auth_mode": "ssa", "scopes": "data:read user-profile:read",
              "service_account_id": account.service_account_id,
              "private_key": account.private_key_pem, "private_key_id": account.kid, **extra}
    return ConnectionFields(conn_id="autodesk_ssa", conn_type="autodesk", host=simulator.base_url,
                            login=simulator.client_id, password=simulator.client_secret, extra=values)


def test_ssa_signs_a_jwt_bearer_assertion_and_acts_as_the_service_account(simulator) -> None:
    conn = SsaConnection.from_fields(ssa_fields(simulator))
    assert isinstance(conn, SsaConnection) and "PRIVATE" not in repr(conn)
    client = ApsClient(ApsTransport(conn))
    assert client.user_profile().user_id == conn.service_account_id
    assert client.hubs() is not None


def test_ssa_with_another_accounts_key_is_refused_plainly(simulator: SimulatorServer) -> None:
    other = simulator.sim.add_service_account("other")
    conn = SsaConnection.from_fields(ssa_fields(simulator, private_key=other.private_key_pem,
                                                private_key_id=""))
    with pytest.raises(AuthError, match="service-account assertion"):
        ApsClient(ApsTransport(conn)).hubs()


def test_ssa_without_a_key_is_a_config_error(simulator: SimulatorServer) -> None:
    with pytest.raises(ConfigError, match="private_key"):
        SsaConnection.from_fields(ssa_fields(simulator, private_key=""))


def test_pkce_and_the_code_exchange(simulator: SimulatorServer) -> None:
    pkce = PkcePair.new()
    digest = base64.urlsafe_b64encode(hashlib.sha256(pkce.verifier.encode()).digest()).rstrip(b"=")
    assert pkce.challenge == digest.decode() and 43 <= len(pkce.verifier) <= 128
    conn = connection_for(simulator, auth_mode=AuthMode.AUTHORIZATION_CODE,
                          scopes=("data:read", "user-profile:read"))
    state = new_state()
    url = authorize_url(conn, CALLBACK, state, pkce.challenge)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["code_challenge_method"] == "S256" and query["scope"] == "data:read user-profile:read"

    def consent() -> str:
        answer = requests.post(url.split("?")[0], data={**query, "action": "allow"},
                               allow_redirects=False, timeout=10)
        back = parse_qs(urlsplit(answer.headers["location"]).query)
        assert back["state"] == [state]
        return back["code"][0]

    with pytest.raises(AuthError, match="PKCE verifier"):  # a wrong verifier is refused
        exchange_code(conn, requests.Session(), code=consent(), redirect_uri=CALLBACK,
                      verifier=PkcePair.new().verifier)
    auth = exchange_code(conn, requests.Session(), code=consent(), redirect_uri=CALLBACK,
                         verifier=pkce.verifier)
    assert auth.refresh_token in simulator.sim.oauth._refresh
    assert auth.refresh_token not in repr(auth)
