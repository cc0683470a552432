"""Connection lookup through Airflow, and the refresh-token store when it cannot write."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from aps_mirror.airflow_provider.connections import AirflowConnectionTokenStore, get_connection_fields
from aps_mirror.aps.auth import fingerprint
from aps_mirror.connection import lookup_connection


def test_unknown_connection_is_none() -> None:
    assert get_connection_fields("autodesk_does_not_exist") is None


def test_env_var_connection_becomes_connection_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_FIELDS", json.dumps({
        "conn_type": "autodesk", "host": "https://example.test", "login": "cid", "password": "csecret",
        "extra": {"auth_mode": "ssa", "scopes": "data:read"}}))
    fields = get_connection_fields("autodesk_fields")
    assert fields is not None
    assert (fields.conn_type, fields.host, fields.login, fields.password) == (
        "autodesk", "https://example.test", "cid", "csecret")
    assert fields.extra == {"auth_mode": "ssa", "scopes": "data:read"}
    assert "csecret" not in repr(fields)


def test_core_lookup_finds_a_db_connection_through_airflow(airflow_db) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id="autodesk_in_db", conn_type="autodesk", login="cid",
                               password="csecret", extra=json.dumps({"auth_mode": "client_credentials"})))
    fields = lookup_connection("autodesk_in_db")
    assert fields is not None and fields.login == "cid"
    assert fields.extra["auth_mode"] == "client_credentials"


def test_store_warns_and_keeps_the_token_when_the_db_is_blocked(airflow_db) -> None:
    # Inside a task Airflow blocks the ORM; do the same in a child process (it cannot be undone).
    script = textwrap.dedent("""
        from airflow.sdk.execution_time.supervisor import block_orm_access
        from aps_mirror.airflow_provider import connections
        block_orm_access()
        store = connections.AirflowConnectionTokenStore("autodesk_blocked")
        store.save_refresh_token("rt-rotated-0123456789")
        assert store.load_refresh_token() == "rt-rotated-0123456789"
        assert connections.AirflowConnectionTokenStore("autodesk_blocked").load_refresh_token() == "rt-rotated-0123456789"
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "error" in output and "the refresh token of connection 'autodesk_blocked'" in output
    assert "could NOT be saved" in output and "aps-mirror authorize" in output
    assert "rt-rotated-0123456789" not in output


def test_store_writes_only_the_refresh_token_key(airflow_db) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id="autodesk_store", conn_type="autodesk", login="cid", password="s",
                               extra=json.dumps({"auth_mode": "authorization_code", "refresh_token": "old",
                                                 "scopes": "data:read"})))
    store = AirflowConnectionTokenStore("autodesk_store")
    assert store.load_refresh_token() == "old"
    store.save_refresh_token("new-token-value")
    assert store.load_refresh_token() == "new-token-value"
    extra = get_connection_fields("autodesk_store").extra
    bookkeeping = {k: extra.pop(k) for k in ("rt_generation", "rt_fingerprint", "rt_rotated_at")}
    assert extra == {"auth_mode": "authorization_code", "refresh_token": "new-token-value",
                     "scopes": "data:read"}
    assert bookkeeping["rt_generation"] == 1 and bookkeeping["rt_fingerprint"] == fingerprint("new-token-value")
