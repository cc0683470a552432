"""AutodeskHook against a live APS simulator: client, connection test, 429s, token rotation."""

from __future__ import annotations

import json
import logging
import time
from typing import Iterator

import pytest

from aps_mirror.airflow_provider import connections
from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
from aps_mirror.errors import ConfigError
from aps_mirror.simulator import SimulatorServer
from tests.airflow_provider.oauth_helpers import CALLBACK, SCOPES, authorize, refresh


def conn_json(server: SimulatorServer, **extra: str) -> str:
    return json.dumps({"conn_type": "autodesk", "host": server.base_url, "login": server.client_id,
                       "password": server.client_secret,
                       "extra": {"auth_mode": "client_credentials", **extra}})


@pytest.fixture
def env_conn(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> SimulatorServer:
    """`autodesk_test`, a 2-legged connection defined by AIRFLOW_CONN_AUTODESK_TEST."""
    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_TEST", conn_json(simulator))
    return simulator


@pytest.fixture(autouse=True)
def _forget_unsaved_tokens() -> Iterator[None]:
    yield
    connections._unsaved.clear()


def test_get_conn_returns_a_ready_client(env_conn: SimulatorServer) -> None:
    hubs = AutodeskHook("autodesk_test").get_conn().hubs()
    assert hubs and all(hub.id and hub.name for hub in hubs)


def test_connection_test_passes_for_a_2_legged_app(env_conn: SimulatorServer) -> None:
    ok, message = AutodeskHook("autodesk_test").test_connection()
    assert ok, message
    assert "2-legged" in message and "403" in message  # @me is refused for app tokens: expected
    assert "[ok] hubs: 2 visible" in message
    for capability in ("projects", "folder contents", "download"):
        assert f"[ok] {capability}:" in message


def test_connection_test_checks_the_vault_too(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_TEST", conn_json(
        simulator, vault_url=simulator.base_url, vault_user="sam.builder", vault_password="Builder2024"))
    ok, message = AutodeskHook("autodesk_test").test_connection()
    assert ok, message
    for capability in ("vault server", "vaults", "vault folders", "vault files", "vault download"):
        assert f"[ok] {capability}:" in message
    assert "Builder2024" not in message


def test_a_rate_limited_call_waits_and_succeeds(env_conn: SimulatorServer) -> None:
    env_conn.sim.inject_fault("hubs", 429, count=2, retry_after=1)
    started = time.monotonic()
    hubs = AutodeskHook("autodesk_test").get_conn().hubs()
    assert hubs
    assert time.monotonic() - started >= 2.0  # Retry-After: 1, honoured twice
    assert env_conn.sim.stats()["requests"]["hubs"] == 3


def test_a_missing_connection_is_reported_plainly() -> None:
    with pytest.raises(ConfigError, match="'autodesk_nowhere' was not found"):
        AutodeskHook("autodesk_nowhere").get_conn()
    ok, message = AutodeskHook("autodesk_nowhere").test_connection()
    assert not ok and "AIRFLOW_CONN_AUTODESK_NOWHERE" in message


def test_bad_client_secret_fails_the_connection_test(simulator: SimulatorServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(conn_json(simulator))
    conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_TEST", json.dumps(conn))
    ok, message = AutodeskHook("autodesk_test").test_connection()
    assert not ok and "refused the client id/secret" in message


def test_secrets_and_tokens_are_masked(env_conn: SimulatorServer) -> None:
    from airflow._shared.secrets_masker import redact as redact_core
    from airflow.sdk._shared.secrets_masker import redact as redact_task

    client = AutodeskHook("autodesk_test").get_conn()
    client.hubs()
    access_token = client.transport.tokens.access_token()
    for secret in (env_conn.client_secret, access_token):
        line = f"about to log {secret} here"
        assert redact_task(line) == "about to log *** here"
        assert redact_core(line) == "about to log *** here"


# -- authorization_code: rotated refresh tokens go back into the connection ---------------------

def add_db_connection(conn_id: str, server: SimulatorServer, extra: dict) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="autodesk", host=server.base_url,
                               login=server.client_id, password=server.client_secret,
                               extra=json.dumps(extra)))


def db_extra(conn_id: str) -> dict:
    from sqlalchemy import select

    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        return json.loads(row.extra)


def test_rotated_refresh_token_is_saved_in_the_db_row(airflow_db, simulator: SimulatorServer) -> None:
    first = authorize(simulator)
    add_db_connection("autodesk_rotation", simulator, {
        "auth_mode": "authorization_code", "scopes": SCOPES, "callback_url": CALLBACK,
        "refresh_token": first, "note": "kept"})

    assert AutodeskHook("autodesk_rotation").get_conn().hubs()

    extra = db_extra("autodesk_rotation")
    second = extra["refresh_token"]
    assert second != first
    assert extra["note"] == "kept" and extra["callback_url"] == CALLBACK
    # A new hook (a later run) starts from the saved token, and saves the next one in turn.
    ok, message = AutodeskHook("autodesk_rotation").test_connection()
    assert ok and "[ok] user profile: signed in as" in message, message
    assert db_extra("autodesk_rotation")["refresh_token"] not in (first, second)
    # The first token is spent: Autodesk (and the simulator) refuse it.
    reused = refresh(simulator, first)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_an_env_var_connection_is_refused_before_its_refresh_token_is_spent(
        simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # An AIRFLOW_CONN_* variable shadows the DB row: a rotated token saved there is never read.
    first = authorize(simulator)
    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_ENV3L", json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret,
        "extra": {"auth_mode": "authorization_code", "scopes": SCOPES, "refresh_token": first}}))

    with pytest.raises(ConfigError) as raised:
        AutodeskHook("autodesk_env3l").get_conn().hubs()
    message = str(raised.value)
    assert "AIRFLOW_CONN_AUTODESK_ENV3L" in message and "Nothing was spent" in message
    assert first not in message
    assert refresh(simulator, first).status_code == 200  # still the live token


def test_ui_connection_test_does_not_burn_a_refresh_token(
        simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Airflow's UI tests a copy of the connection in a temporary AIRFLOW_CONN_* variable.
    first = authorize(simulator)
    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_UI", json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret,
        "extra": {"auth_mode": "authorization_code", "refresh_token": first}}))
    simulator.sim.reset_stats()
    ok, message = AutodeskHook("autodesk_ui").test_connection()
    assert not ok and "Not tested" in message
    assert simulator.sim.stats()["requests"].get("token", 0) == 0
    assert refresh(simulator, first).status_code == 200  # still the live token
