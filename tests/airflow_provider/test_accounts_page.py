"""The "Autodesk accounts" page and the dashboard's connection list ask Airflow's auth manager
(SimpleAuthManager, real JWTs) whether the user may read connections, as Airflow's own UI does."""

from __future__ import annotations

import json
import secrets
from typing import Iterator

import pytest

from aps_mirror.airflow_provider.ui.connection_health import token_health

CONNECTED = "autodesk_page_connected"
FRESH = "autodesk_page_fresh"
EMAIL = "sam.builder@example.com"


@pytest.fixture(scope="module")
def connections(airflow_db) -> list[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        for conn_id, extra in ((CONNECTED, {"refresh_token": "rt-" + secrets.token_hex(8),
                                            "rt_rotated_at": "2020-01-01T00:00:00+00:00",
                                            "connected_account": {"name": "Sam Builder", "email": EMAIL}}),
                               (FRESH, {})):
            session.merge(Connection(conn_id=conn_id, conn_type="autodesk", host="https://aps.example.test",
                                     login="cid", password="csecret",
                                     extra=json.dumps({"auth_mode": "authorization_code", **extra})))
    return [CONNECTED, FRESH]


@pytest.fixture
def as_role(connections, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """A TestClient over the plugin's app, signed in (a real JWT) as a user of a given role."""
    from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from aps_mirror.airflow_provider.ui.app import create_app

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    purge_cached_app()
    manager = create_auth_manager()
    app = create_app()

    def client(role: str) -> TestClient:
        token = manager.generate_jwt(SimpleAuthManagerUser(username=f"a-{role}", role=role))
        return TestClient(app, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)

    yield client
    purge_cached_app()


@pytest.mark.parametrize("role", ["viewer", "user"])
def test_a_user_who_may_not_read_connections_gets_403_and_no_ids(as_role, role: str) -> None:
    client = as_role(role)
    page = client.get("/")
    assert page.status_code == 403
    assert EMAIL not in page.text and CONNECTED not in page.text and FRESH not in page.text
    connect = client.get(f"/connect/{FRESH}")
    assert connect.status_code == 403 and "Continue to Autodesk" not in connect.text
    # The dashboard is for DAG readers, but its connection list is connection data.
    dashboard = client.get("/dashboard.json")
    assert dashboard.status_code == 200, dashboard.text  # viewers may read DAGs
    assert dashboard.json()["connections"] == [] and EMAIL not in dashboard.text


@pytest.mark.parametrize("role", ["op", "admin"])
def test_a_user_who_may_read_connections_sees_them(as_role, role: str) -> None:
    client = as_role(role)
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert CONNECTED in page.text and FRESH in page.text and EMAIL in page.text
    assert page.text.count("class='connect'") == 2  # op and admin may edit connections too
    assert "Not connected" in page.text and "last rotated its refresh token" in page.text
    dashboard = client.get("/dashboard.json").json()
    shown = {c["conn_id"]: c for c in dashboard["connections"]}
    assert {CONNECTED, FRESH} <= set(shown) and EMAIL in shown[CONNECTED]["account"]
    assert client.get(f"/connect/{FRESH}").status_code == 200


def test_no_token_means_the_login_page(as_role) -> None:
    from fastapi.testclient import TestClient

    from aps_mirror.airflow_provider.ui.app import create_app

    anonymous = TestClient(create_app(), follow_redirects=False).get("/")
    assert anonymous.status_code == 302 and EMAIL not in anonymous.text


def test_one_token_rule_for_the_page_the_dashboard_and_the_keepalive_dag() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 3, 20, tzinfo=timezone.utc)
    rotated = {"refresh_token": "x", "rt_rotated_at": "2026-03-09T00:00:00+00:00"}  # 11 days
    assert token_health({}, now).level == "alert"
    assert token_health({**rotated, "rt_pending": {"since": "..."}}, now).level == "alert"
    assert token_health(rotated, now).level == "warn"  # the page's threshold: 10 days
    assert token_health(rotated, now, warn_after_days=12).level == "ok"  # the DAG's param
    assert "11 days ago" in token_health(rotated, now).message
