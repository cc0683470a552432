"""The `aps_mirror_keepalive` DAG in a real deployment (LocalExecutor on PostgreSQL).

One run keeps two connections alive: a healthy one (its refresh token rotates and the database
row then holds the new, live token; the old one is refused by APS) and one whose token chain the
simulator revoked (that task fails at once, without retries, with an "ACTION NEEDED" message
saying what to click).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import AIRFLOW, REPO, Deployment, airflow_deployment
from tests.airflow_provider.oauth_helpers import SCOPES, authorize, refresh

ALIVE = "autodesk_keepalive"
REVOKED = "autodesk_revoked"
DAG_ID = "aps_mirror_keepalive"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="demo", rate_scale=0, reuse_detection=True)) as server:
        yield server


@pytest.fixture(scope="module")
def tokens(simulator: SimulatorServer) -> dict[str, str]:
    """The refresh token each connection starts with; REVOKED's chain is revoked at APS."""
    issued = {ALIVE: authorize(simulator), REVOKED: authorize(simulator)}
    oauth = simulator.sim.oauth
    with oauth._lock:
        oauth._revoke_family(oauth._refresh[issued[REVOKED]].family)
    return issued


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer, tokens: dict[str, str]) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-keepalive")
    dags = home / "dags"
    dags.mkdir()
    # The real DAG file, unscheduled: unpausing would otherwise start a run of its own too.
    source = (REPO / "dags" / "aps_mirror_keepalive.py").read_text()
    assert source.count("schedule=timedelta(hours=12)") == 1
    (dags / "aps_mirror_keepalive.py").write_text(source.replace("schedule=timedelta(hours=12)",
                                                                 "schedule=None"))
    stale = (datetime.now(timezone.utc) - timedelta(days=11)).isoformat(timespec="seconds")

    def setup(env: dict[str, str]) -> None:
        for conn_id, extra in ((ALIVE, {"rt_rotated_at": stale, "rt_generation": 7}), (REVOKED, {})):
            subprocess.run([AIRFLOW, "connections", "add", conn_id, "--conn-json", json.dumps({
                "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
                "password": simulator.client_secret,
                "extra": {"auth_mode": "authorization_code", "scopes": SCOPES,
                          "refresh_token": tokens[conn_id], **extra}})],
                env=env, check=True, capture_output=True)

    password = secrets.token_urlsafe(12)
    extra_env = {"APS_MIRROR_AIRFLOW_API_USERNAME": "admin", "APS_MIRROR_AIRFLOW_API_PASSWORD": password}
    with airflow_deployment(home, dags, extra_env=extra_env, setup=setup, password=password,
                            redis_db=14) as dep:
        yield dep


def task_log(deployment: Deployment, run: dict, map_index: int) -> str:
    folder = deployment.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run['dag_run_id']}"
    files = sorted(folder.glob(f"task_id=keep_alive/map_index={map_index}/attempt=*.log"))
    assert files, f"no log for keep_alive[{map_index}]"
    return "\n".join(Path(f).read_text(errors="replace") for f in files)


def test_keepalive_rotates_a_live_token_and_says_what_to_do_for_a_dead_one(
        deployment: Deployment, simulator: SimulatorServer, tokens: dict[str, str]) -> None:
    run = deployment.trigger(DAG_ID, {"conn_ids": [ALIVE, REVOKED], "warn_after_days": 10}, wait=180)
    assert run["state"] == "failed"  # one connection needs a person: the run says so
    keep_alive = {t["map_index"]: t for t in deployment.task_instances(run) if t["task_id"] == "keep_alive"}
    assert keep_alive[0]["state"] == "success", task_log(deployment, run, 0)
    # Fails at once: retrying cannot re-authorize (the retry policy fails setup errors fast).
    assert keep_alive[1]["state"] == "failed" and keep_alive[1]["try_number"] == 1, keep_alive[1]

    # The healthy connection: rotated, the row holds the one live token, the old one is dead.
    extra = deployment.connection_extra(ALIVE)
    new = extra["refresh_token"]
    assert new != tokens[ALIVE] and extra["rt_generation"] == 8 and "rt_pending" not in extra
    assert datetime.fromisoformat(extra["rt_rotated_at"]) > datetime.now(timezone.utc) - timedelta(minutes=5)
    assert new in simulator.sim.oauth._refresh
    alive_log = task_log(deployment, run, 0)
    assert "ATTENTION" in alive_log and "last rotated its refresh token" in alive_log  # it was 11 days old
    assert f"Connection {ALIVE!r} is alive" in alive_log
    refused = refresh(simulator, tokens[ALIVE])  # last: reusing it revokes the chain (reuse detection)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    # The revoked connection: an actionable message, and its row is left as it was.
    dead_log = task_log(deployment, run, 1)
    assert f"ACTION NEEDED for connection {REVOKED!r}" in dead_log
    assert "Connect Autodesk account" in dead_log and f"aps-mirror authorize --conn-id {REVOKED}" in dead_log
    assert deployment.connection_extra(REVOKED)["refresh_token"] == tokens[REVOKED]
    # Neither token appears in any log of the run.
    logs = deployment.task_logs() + deployment.component_logs(tail=10**9)
    assert not [t for t in (*tokens.values(), new, simulator.client_secret) if t in logs]
