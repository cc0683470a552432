"""A 3-legged connection on the docker-compose deployment: one consent, then rotations unattended.

The compose topology runs as processes, as in tests/deploy/test_topology.py: the services'
commands and environment come from docker-compose.yaml, and so does what airflow-init
provisions (the pool, and SimpleAuthManager's users with aps-mirror's REST credentials, written
by the very script init runs). A person connects the Autodesk account once on the Autodesk
accounts page; from then on every run triggered through the REST API spends the single-use
refresh token in a Celery worker's task process and saves the next one through the REST API as
`aps_mirror` (role op), with no other step. The simulator spends refresh tokens once and
revokes the whole chain on reuse, so a lost or stale token would fail the next run.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import boto3
import pytest
import redis
import requests
import yaml

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import (AIRFLOW, Deployment, api_session, free_port, pg_admin, run_airflow,
                                      stop_processes, unscheduled_dag, wait_until)
from tests.airflow_provider.oauth_helpers import SCOPES
from tests.deploy.test_topology import SERVICES, compose_command, compose_environment
from tests.e2e.test_token_rotation_deployment import allow

REPO = Path(__file__).resolve().parents[2]
REDIS_DB = 10  # a database of its own on the shared Redis
CONN_ID = "autodesk_default"  # the connection the DAGs use by default
KEEPALIVE = "aps_mirror_keepalive"
BUCKET = "compose-rotation"


def init_steps() -> tuple[list[list[str]], list[str]]:
    """What airflow-init's script runs that the services rely on: its `airflow pools set`
    commands and its provisioning script (a path in the image, mapped to this repository)."""
    script = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]["airflow-init"]["command"][1]
    lines = [line.strip() for line in script.splitlines()]
    pools = [shlex.split(line.split("/entrypoint airflow ", 1)[1]) for line in lines
             if line.startswith("/entrypoint airflow pools set ")]
    (provision,) = [shlex.split(line) for line in lines if line.startswith("python /opt/airflow/include/")]
    assert pools and len(provision) == 2, (pools, provision)
    return pools, [sys.executable, provision[1].replace("/opt/airflow/include", str(REPO / "include"))]


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="demo", rate_scale=0, reuse_detection=True)) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-compose-rotation")
    database = f"aps_mirror_compose_rotation_{uuid.uuid4().hex[:8]}"
    pg_admin(f"CREATE DATABASE {database}")
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_dir = home / "config"  # the ./config volume every service and init share
    config_dir.mkdir()
    dags = home / "dags"
    for dag_file in ("aps_mirror_keepalive.py", "aps_mirror.py"):
        unscheduled_dag(REPO / "dags" / dag_file, dags)
    local = {
        "airflow:airflow@postgres/airflow": f"postgres@127.0.0.1:5432/{database}",
        "redis://:@redis:6379/0": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "http://airflow-apiserver:8080": base,
        "/opt/airflow/config": str(config_dir),
    }
    shared = compose_environment(local)  # x-airflow-common's environment
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(shared)
    env.update({  # what the image's volumes and defaults, and the containers' own ports, provide
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",  # its port would clash between runs
        "AIRFLOW__TRIGGERER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "APS_MIRROR_BUCKET": BUCKET,
    })
    for var in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
        del env[var]  # connections live in the metadata database, as 3-legged ones must
    init_env = {**env, **{k: v for k, v in compose_environment(local, "airflow-init").items() if k not in shared}}
    pools, provision = init_steps()
    processes: list[subprocess.Popen] = []
    try:
        run_airflow(env, "db", "migrate")  # the image's entrypoint, for init (_AIRFLOW_DB_MIGRATE)
        for args in pools:
            run_airflow(env, *args)
        provisioned = subprocess.run(provision, env=init_env, capture_output=True, text=True, check=False)
        assert provisioned.returncode == 0, provisioned.stderr
        (home / "component-airflow-init.log").write_text(provisioned.stdout + provisioned.stderr)
        for name in SERVICES:
            log = open(home / f"component-{name}.log", "w")
            processes.append(subprocess.Popen([AIRFLOW, *compose_command(name)], env=env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(lambda: requests.get(f"{base}/api/v2/version", timeout=2).ok, 120, "api-server")
        login, password = init_env["_AIRFLOW_WWW_USER_USERNAME"], init_env["_AIRFLOW_WWW_USER_PASSWORD"]
        yield Deployment(home=home, base=base, env=env, password=password, api=api_session(base, login, password))
    finally:
        stop_processes(processes)
        pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


def live_refresh_tokens(simulator: SimulatorServer) -> set[str]:
    return set(simulator.sim.oauth._refresh)


def connect_account(deployment: Deployment, simulator: SimulatorServer) -> None:
    """The one manual step, as a person does it: Browse > Autodesk accounts > Connect, then
    Allow on Autodesk's consent page (the callback URL was registered with the APS app)."""
    simulator.sim.add_redirect_uri(f"{deployment.base}/aps-mirror/callback")
    page = deployment.api.get(f"{deployment.base}/aps-mirror/connect/{CONN_ID}", timeout=30)
    assert page.status_code == 200, page.text
    consent = html.unescape(re.search(r"id='continue' href='([^']+)'", page.text).group(1))
    callback = deployment.api.get(allow(consent), timeout=30)  # the browser follows the redirect
    assert callback.status_code == 200 and "id='connected'" in callback.text, callback.text


@pytest.mark.timeout(1200)
def test_one_consent_then_every_rotation_is_saved_unattended(deployment: Deployment, simulator: SimulatorServer,
                                                             s3_endpoint: str) -> None:
    base, api = deployment.base, deployment.api
    # Admin > Connections: the app's credentials and the 3-legged mode, no token yet.
    created = api.post(f"{base}/api/v2/connections", timeout=30, json={
        "connection_id": CONN_ID, "conn_type": "autodesk", "host": simulator.base_url,
        "login": simulator.client_id, "password": simulator.client_secret,
        "extra": json.dumps({"auth_mode": "authorization_code", "scopes": SCOPES})})
    assert created.status_code == 201, created.text
    connect_account(deployment, simulator)
    extra = deployment.connection_extra(CONN_ID)
    assert live_refresh_tokens(simulator) == {extra["refresh_token"]} and extra["rt_generation"] == 1

    # The connection form's Test button is enabled, and on a 3-legged connection it does not
    # spend the refresh token (it could not save the next one).
    shown = api.get(f"{base}/api/v2/connections/{CONN_ID}", timeout=30).json()
    tested = api.post(f"{base}/api/v2/connections/test", timeout=60,
                      json={k: shown[k] for k in ("connection_id", "conn_type", "host", "login", "extra")})
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] is False and "Not tested against APS" in tested.json()["message"]
    assert deployment.connection_extra(CONN_ID) == extra

    # Three keep-alive runs: each task process spends the token once and saves the next one.
    for _ in range(3):
        before = extra
        run = deployment.trigger(KEEPALIVE, wait=240)
        assert run["state"] == "success", deployment.task_logs()[-6000:]
        extra = deployment.connection_extra(CONN_ID)
        assert extra["rt_generation"] == before["rt_generation"] + 1
        assert extra["refresh_token"] != before["refresh_token"] and "rt_pending" not in extra
        assert live_refresh_tokens(simulator) == {extra["refresh_token"]}

    # A mirror run: several task processes on the Celery worker rotate the same connection.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket=BUCKET)
    assert api.post(f"{base}/api/v2/connections", timeout=30, json={
        "connection_id": "aws_default", "conn_type": "aws", "login": "test", "password": "test",
        "extra": json.dumps({"endpoint_url": s3_endpoint, "region_name": "us-east-1"})}).status_code == 201
    before = extra
    run = deployment.trigger("aps_mirror", wait=600)
    assert run["state"] == "success", deployment.task_logs()[-6000:]
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="autodesk/")["KeyCount"] > 0
    extra = deployment.connection_extra(CONN_ID)
    assert extra["rt_generation"] > before["rt_generation"] and "rt_pending" not in extra
    assert live_refresh_tokens(simulator) == {extra["refresh_token"]}

    logs = deployment.task_logs()
    assert logs.count("Stored the rotated APS refresh token") == extra["rt_generation"] - 1
    assert "could NOT be saved" not in logs and "invalid_grant" not in logs
    # No token, client secret or aps-mirror's REST password in any task or component log.
    everything = logs + deployment.component_logs(tail=10**9)
    oauth = simulator.sim.oauth
    api_password = Path(deployment.env["APS_MIRROR_AIRFLOW_API_PASSWORD_FILE"]).read_text().strip()
    secrets_seen = [*oauth._refresh, *oauth._spent, *oauth._access, simulator.client_secret, api_password]
    assert len(oauth._spent) == extra["rt_generation"] - 1
    assert not [s for s in secrets_seen if s in everything]
