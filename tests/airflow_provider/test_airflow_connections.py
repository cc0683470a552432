"""Connection lookup through Airflow, and what the refresh-token store writes (or cannot)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from aps_mirror.airflow_provider.connections import get_connection_fields
from aps_mirror.airflow_provider.token_persistence import AirflowTokenStore
from aps_mirror.aps.auth import fingerprint
from aps_mirror.connection import lookup_connection


def _add_connection(conn_id: str, **fields: object) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(conn_id=conn_id, conn_type="autodesk", **fields))


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
    _add_connection("autodesk_in_db", login="cid", password="csecret",
                    extra=json.dumps({"auth_mode": "client_credentials"}))
    fields = lookup_connection("autodesk_in_db")
    assert fields is not None and fields.login == "cid"
    assert fields.extra["auth_mode"] == "client_credentials"


def test_a_token_that_cannot_be_saved_is_reported_and_used_by_this_process_only(airflow_db) -> None:
    _add_connection("autodesk_blocked", login="cid", password="s",
                    extra=json.dumps({"auth_mode": "authorization_code", "refresh_token": "rt-before-0123"}))
    # Inside a task Airflow blocks the ORM; do the same in a child process (it cannot be undone).
    script = textwrap.dedent("""
        from airflow.sdk.execution_time.supervisor import block_orm_access
        from aps_mirror.airflow_provider.token_persistence import AirflowTokenStore
        block_orm_access()
        store = AirflowTokenStore("autodesk_blocked")
        store.save_refresh_token("rt-rotated-0123456789")
        assert store.load_refresh_token() == "rt-rotated-0123456789"
        assert AirflowTokenStore("autodesk_blocked").load_refresh_token() == "rt-rotated-0123456789"
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "error" in output and "the refresh token of connection 'autodesk_blocked'" in output
    assert "could NOT be saved" in output and "aps-mirror authorize" in output
    assert "rt-rotated-0123456789" not in output
    # The report is true: the database still holds the old token and no bookkeeping of a save.
    stored = get_connection_fields("autodesk_blocked").extra
    assert stored == {"auth_mode": "authorization_code", "refresh_token": "rt-before-0123"}


def test_saving_a_token_changes_only_the_token_and_its_bookkeeping(airflow_db) -> None:
    before_extra = {"auth_mode": "authorization_code", "refresh_token": "old", "scopes": "data:read",
                    "callback_url": "http://localhost:8080/callback"}
    _add_connection("autodesk_store", host="https://aps.example", login="cid", password="s",
                    extra=json.dumps(before_extra))
    store = AirflowTokenStore("autodesk_store")
    assert store.load_refresh_token() == "old"
    saved_from = datetime.now(timezone.utc).replace(microsecond=0)
    for generation, token in enumerate(("new-token-value", "newer-token-value"), start=1):
        store.save_refresh_token(token)
        assert AirflowTokenStore("autodesk_store").load_refresh_token() == token  # a new reader sees it
        after = get_connection_fields("autodesk_store")
        assert (after.host, after.login, after.password) == ("https://aps.example", "cid", "s")
        changed = {k: v for k, v in after.extra.items() if before_extra.get(k) != v}
        assert set(changed) == {"refresh_token", "rt_generation", "rt_fingerprint", "rt_rotated_at"}
        assert {k: after.extra.get(k) for k in before_extra if k != "refresh_token"} == {
            k: v for k, v in before_extra.items() if k != "refresh_token"}
        assert changed["refresh_token"] == token and changed["rt_generation"] == generation
        assert changed["rt_fingerprint"] == fingerprint(token) and token not in changed["rt_fingerprint"]
        rotated_at = datetime.fromisoformat(changed["rt_rotated_at"])
        assert saved_from <= rotated_at <= datetime.now(timezone.utc)
