"""The docker-compose topology, run as processes: a real deployment mirrors the demo account.

api-server, scheduler, dag-processor, triggerer and a Celery worker (the services of
docker-compose.yaml) run against the local PostgreSQL (metadata DB, Celery results) and
Redis (Celery broker). The run is triggered through the REST API, exactly as an operator's
tooling would, and tasks execute in the Celery worker's own processes: the Task SDK path,
where the ORM is blocked, not `airflow dags test`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis
import requests
import yaml

from aps_mirror.catalog import reader
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import (AIRFLOW, api_session, free_port, pg_admin, run_airflow,
                                      stop_processes, wait_until)
from tests.mirror.test_selection import selected_by_default

REPO = Path(__file__).resolve().parents[2]
REDIS_DB = 11  # a database of its own on the shared Redis
# The long-running Airflow services of docker-compose.yaml, run here as processes.
SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker")
BUCKET = "topology-mirror"
DIGEST = "aps_mirror_catalog_digest"
PASSWORD = secrets.token_urlsafe(12)
_DEFAULTED = re.compile(r"\$\{(\w+):?-([^}]*)\}")


def compose_environment(local: dict[str, str], service: str | None = None) -> dict[str, str]:
    """The Airflow services' shared environment from docker-compose.yaml (or `service`'s own),
    with the containers' host names and paths replaced by this machine's (`local`: old -> new)."""
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    source = compose["services"][service] if service else compose["x-airflow-common"]
    env = {}
    for key, value in source["environment"].items():
        value = _DEFAULTED.sub(lambda m: os.environ.get(m.group(1), m.group(2)), str(value))
        for old, new in local.items():
            value = value.replace(old, new)
        env[key] = value
    return env


def compose_command(service: str) -> list[str]:
    command = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"][service]["command"]
    return command.split() if isinstance(command, str) else list(command)






@pytest.fixture(scope="module")
def deployment(tmp_path_factory, s3_endpoint) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("airflow-topology")
    database = f"aps_mirror_topology_{uuid.uuid4().hex[:8]}"
    pg_admin(f"CREATE DATABASE {database}")
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    port = free_port()
    config_dir = home / "config"
    config_dir.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(compose_environment({
        "airflow:airflow@postgres/airflow": f"postgres@127.0.0.1:5432/{database}",
        "redis://:@redis:6379/0": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "http://airflow-apiserver:8080": f"http://127.0.0.1:{port}",
        "/opt/airflow/config": str(config_dir),
    }))
    user = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")[0]
    Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(json.dumps({user: PASSWORD}))
    env.update({  # what the image's volumes and defaults provide in the containers
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",  # its port would clash between runs
        "AIRFLOW__TRIGGERER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "APS_MIRROR_BUCKET": BUCKET,
    })
    for var in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
        del env[var]  # connections come from the metadata database here, as in production
    processes: list[subprocess.Popen] = []
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as simulator:
        try:
            run_airflow(env, "db", "migrate")
            run_airflow(env, "pools", "set", "autodesk_api", "4", "APS API concurrency")
            run_airflow(env, "connections", "add", "autodesk_default", "--conn-json", json.dumps({
                "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
                "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}}))
            run_airflow(env, "connections", "add", "aws_default", "--conn-json", json.dumps({
                "conn_type": "aws", "login": "topology-key", "password": "topology-secret",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}))
            for name in SERVICES:
                log = open(home / f"{name}.log", "w")
                processes.append(subprocess.Popen([AIRFLOW, *compose_command(name)], env=env,
                                                  stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: requests.get(f"{base}/api/v2/version", timeout=2).ok, 120, "api-server")
            yield {"api": api_session(base, user, PASSWORD), "base": base, "simulator": simulator, "home": home}
        finally:
            stop_processes(processes)
            pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")






def _component_logs(home: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(home.glob("airflow-*.log")))


@pytest.mark.timeout(900)
def test_celery_deployment_mirrors_the_demo_account(deployment, s3):
    api, base, simulator = deployment["api"], deployment["base"], deployment["simulator"]
    s3.create_bucket(Bucket=BUCKET)
    wait_until(lambda: api.get(f"{base}/api/v2/dags/aps_mirror", timeout=5).ok, 180, "the parsed aps_mirror DAG")
    # New DAGs start paused in this deployment (as in Airflow's official compose file).
    assert api.patch(f"{base}/api/v2/dags/aps_mirror", json={"is_paused": False}, timeout=10).ok
    # The example downstream DAG runs on the catalog's assets once each mirror run published them.
    wait_until(lambda: api.get(f"{base}/api/v2/dags/{DIGEST}", timeout=5).ok, 180, "the parsed digest DAG")
    assert api.patch(f"{base}/api/v2/dags/{DIGEST}", json={"is_paused": False}, timeout=10).ok
    # Unpausing also schedules the latest @daily interval; the manual run comes after it
    # (max_active_runs=1), so the first run copies everything and the second nothing.
    created = api.post(f"{base}/api/v2/dags/aps_mirror/dagRuns", json={"logical_date": None}, timeout=10)
    assert created.status_code in (200, 201), created.text
    runs_url = f"{base}/api/v2/dags/aps_mirror/dagRuns"

    def runs() -> list[dict]:
        return api.get(runs_url, params={"order_by": "start_date"}, timeout=10).json()["dag_runs"]

    try:
        wait_until(lambda: all(r["state"] in ("success", "failed") for r in runs()), 600, "the DAG runs")
    except AssertionError:
        raise AssertionError("DAG runs did not finish\n" + _component_logs(deployment["home"])) from None
    finished = runs()
    assert len(finished) == 2 and all(r["state"] == "success" for r in finished), \
        _component_logs(deployment["home"])

    files = selected_by_default(simulator.sim)  # the DAG's default top folders
    copied = []
    for night, run in enumerate(finished):
        run_url = f"{runs_url}/{run['dag_run_id']}"
        tasks = api.get(f"{run_url}/taskInstances", timeout=10).json()["task_instances"]
        mapped = [t for t in tasks if t["task_id"] == "sync_batch" and t["map_index"] >= 0]
        if night == 0:  # the first copy: one batch per project, named after it
            assert len(mapped) == 3 and all(t["state"] == "success" for t in mapped)
            assert {t["rendered_map_index"] for t in mapped} == {
                "Northwind Construction / Riverside Tower", "Northwind Construction / Harbor Bridge Retrofit",
                "Fusion Design Team / Drone Gimbal"}
            assert all(t["pool"] == "autodesk_api" for t in mapped)
        else:  # nothing changed: the plan maps no batch at all
            assert mapped == []
        summary = api.get(f"{run_url}/taskInstances/summarize/xcomEntries/return_value",
                          timeout=10).json()["value"]
        assert summary["files_failed"] == 0
        assert summary["files_copied"] + summary["files_skipped"] == len(files)
        copied.append(summary["files_copied"])
        events = api.get(f"{base}/api/v2/assets/events", params={"source_run_id": run["dag_run_id"]},
                         timeout=10).json()["asset_events"]
        by_uri = {e["uri"]: e for e in events}
        assert len(events) == 7, "the mirror's asset and one per catalog table"
        event = by_uri[f"s3://{BUCKET}/autodesk"]
        assert event["extra"]["files_copied"] == summary["files_copied"]
        assert event["extra"]["bucket"] == BUCKET
        files_event = by_uri[f"s3://{BUCKET}/autodesk/_aps_mirror/catalog/files"]
        assert files_event["extra"]["rows"] == len(files) and files_event["extra"]["run_id"] == run["dag_run_id"]
    assert copied == [len(files), 0]

    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix="autodesk/")["Contents"]
    for f in files:  # every file arrived intact, found through its object metadata
        heads = [(o["Key"], s3.head_object(Bucket=BUCKET, Key=o["Key"])) for o in objects
                 if o["Size"] == f.tip.size]
        (key,) = [k for k, h in heads if h["Metadata"].get("aps-item-id") == f.item_id]
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == simulator.sim.file_bytes(f.tip.id)

    # The catalog says the same as the simulator; the digest DAG ran on each publish.
    con = reader.connect(s3, BUCKET, "autodesk")
    assert con.execute("SELECT count(*) FROM files WHERE status = 'mirrored'").fetchone()[0] == len(files)
    assert con.execute("SELECT count(DISTINCT run_id) FROM runs").fetchone()[0] == 2
    digest_url = f"{base}/api/v2/dags/{DIGEST}/dagRuns"
    wait_until(lambda: [r["state"] for r in api.get(digest_url, timeout=10).json()["dag_runs"]].count("success") >= 1,
               300, "the catalog digest DAG run")
    digest = api.get(digest_url, params={"order_by": "start_date"}, timeout=10).json()["dag_runs"]
    answer = api.get(f"{digest_url}/{digest[0]['dag_run_id']}/taskInstances/digest/xcomEntries/return_value",
                     timeout=10).json()["value"]
    assert answer["ten largest files"] == 10 and answer["changed in the latest run"] > 0

    # The Celery workers shared one APS request budget through the broker's Redis.
    budgets = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).keys("aps-mirror:rate:*")
    assert {key.decode().rsplit(":", 1)[1] for key in budgets} >= {"folder_contents", "oss"}
