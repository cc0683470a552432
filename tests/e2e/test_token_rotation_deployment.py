"""Refresh-token rotation in a real Airflow deployment (LocalExecutor on PostgreSQL).

Tasks run in executor-spawned Task SDK processes where the ORM is blocked, so every rotated
token travels through the Airflow REST API; refreshes are serialised by a PostgreSQL advisory
lock (APS_MIRROR_LOCK_URL). The simulator spends refresh tokens once and revokes the whole
chain on reuse.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import AIRFLOW, Deployment, airflow_deployment, free_port
from tests.airflow_provider.oauth_helpers import SCOPES, authorize

HERE = Path(__file__).resolve().parent
APS_MIRROR = str(Path(sys.executable).with_name("aps-mirror"))
CONN_ID = "autodesk_default"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    # Access tokens live 2 s: with the 60 s early-refresh margin, every API call rotates.
    with SimulatorServer(Simulator(seed="demo", rate_scale=0, access_token_ttl=2,
                                   reuse_detection=True)) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-rotation")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(HERE / "dags" / "aps_token_hammer.py", dags)
    fault_file = home / "fault"

    def setup(env: dict[str, str]) -> None:
        subprocess.run([AIRFLOW, "connections", "add", CONN_ID,
                        "--conn-json", json.dumps({
                            "conn_type": "autodesk", "host": simulator.base_url,
                            "login": simulator.client_id, "password": simulator.client_secret,
                            "extra": {"auth_mode": "authorization_code", "scopes": SCOPES,
                                      "refresh_token": authorize(simulator)}})],
                       env=env, check=True, capture_output=True)

    # Tasks save rotated tokens through the REST API as this user (docs/auth.md), and serialise
    # refreshes with a PostgreSQL advisory lock (tasks cannot see the metadata DB's URL, so it
    # is configured explicitly, as a multi-machine deployment would).
    password = secrets.token_urlsafe(12)
    extra_env = {"APS_MIRROR_AIRFLOW_API_USERNAME": "admin", "APS_MIRROR_AIRFLOW_API_PASSWORD": password,
                 "APS_MIRROR_FAULT_FILE": str(fault_file), "APS_MIRROR_LOCK_URL": "{db_url}"}
    with airflow_deployment(home, dags, extra_env=extra_env, setup=setup, password=password) as dep:
        yield dep


def stored_extra(deployment: Deployment) -> dict:
    return deployment.connection_extra(CONN_ID)


def live_refresh_tokens(simulator: SimulatorServer) -> set[str]:
    return set(simulator.sim.oauth._refresh)


def test_eight_parallel_tasks_share_one_rotating_refresh_token(deployment, simulator) -> None:
    before = stored_extra(deployment)
    simulator.sim.reset_stats()
    run = deployment.trigger("aps_token_hammer", {"conn_id": CONN_ID, "calls": 15}, wait=300)
    tasks = deployment.task_instances(run)
    assert run["state"] == "success", deployment.task_logs()[-6000:]
    assert len(tasks) == 8 and all(t["state"] == "success" for t in tasks)

    after = stored_extra(deployment)
    rotations = after["rt_generation"] - before.get("rt_generation", 0)
    assert rotations >= 100, rotations
    logs = deployment.task_logs()
    assert "invalid_grant" not in logs and "Reauthorization" not in logs and "re-authoriz" not in logs
    assert "could NOT be saved" not in logs
    # The connection holds the one live refresh token of the chain, and nothing is pending.
    assert live_refresh_tokens(simulator) == {after["refresh_token"]}
    assert "rt_pending" not in after
    # Secrets hygiene (logs of every component and task): no token, secret or password.
    everything = logs + deployment.component_logs(tail=10**9)
    oauth = simulator.sim.oauth
    secrets_seen = [*oauth._refresh, *oauth._spent, *oauth._access, simulator.client_secret,
                    deployment.password]
    assert len(secrets_seen) > 200
    assert not [s for s in secrets_seen if s in everything]


def test_a_worker_killed_between_refresh_and_persistence_is_explained_and_recovered(
        deployment, simulator) -> None:
    (deployment.home / "fault").write_text("kill-after-refresh")
    crashed = deployment.trigger("aps_token_probe", {"conn_id": CONN_ID})
    assert crashed["state"] == "failed"
    assert not (deployment.home / "fault").exists()  # the fault fired: the process was SIGKILLed
    assert stored_extra(deployment)["rt_pending"]["by"]  # the marker written before the refresh

    failed = deployment.trigger("aps_token_probe", {"conn_id": CONN_ID})
    assert failed["state"] == "failed"
    logs = deployment.task_logs()
    assert "died before saving its successor" in logs and "aps-mirror authorize" in logs

    # Recovery, as documented: connect the account again from a terminal.
    port = free_port()
    callback = f"http://127.0.0.1:{port}/callback"
    simulator.sim.add_redirect_uri(callback)
    cli = subprocess.Popen([APS_MIRROR, "authorize", "--conn-id", CONN_ID, "--no-browser",
                            "--callback-url", callback, "--timeout", "60"],
                           env=deployment.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = consent_url(cli)
    location = allow(url)
    assert requests.get(location, timeout=10).status_code == 200
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert "Connected" in out and "data:read" in out

    recovered = deployment.trigger("aps_token_probe", {"conn_id": CONN_ID})
    assert recovered["state"] == "success"
    extra = stored_extra(deployment)
    assert live_refresh_tokens(simulator) == {extra["refresh_token"]}
    assert extra["connected_account"]["email"]


def consent_url(cli: subprocess.Popen) -> str:
    assert cli.stdout is not None
    for line in cli.stdout:
        match = re.search(r"(http\S+/authentication/v2/authorize\?\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError(f"no authorize URL printed: {cli.stderr.read() if cli.stderr else ''}")


def allow(url: str) -> str:
    """Click Allow on the simulator's consent page; return where Autodesk redirects."""
    parts = urlsplit(url)
    form = {k: v[0] for k, v in parse_qs(parts.query).items()}
    answer = requests.post(f"{parts.scheme}://{parts.netloc}{parts.path}", allow_redirects=False,
                           data={**form, "action": "allow"}, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]
