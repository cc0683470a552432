"""The aps_mirror DAG on a real deployment, with an account of more projects than Airflow maps.

Airflow refuses to map more than `[core] max_map_length` (1,024 by default) task instances
from one list; large ACC accounts hold thousands of projects. Here api-server, scheduler and
dag-processor run as processes (LocalExecutor on the local PostgreSQL) with Airflow's default
configuration, against the simulator serving 1,100 generated projects and moto's S3 server.
The first run mirrors every file; the second, on an unchanged account, maps no sync work,
runs as many task instances as a 10-project account would, and still records every project's
night in the catalog and on the dashboard.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Iterator

import boto3
import pytest

from aps_mirror.catalog import reader
from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import Deployment, mirror_connections, mirror_deployment
from tests.mirror.test_selection import selected_by_default

PROJECTS = 1100  # more than max_map_length's default of 1,024
# One folder with one small file per project: the test is about the project count.
SEED = f"generate:projects={PROJECTS},folders=1,files=1,max_size=4096"
BUCKET = "big-account"
PREFIX = "autodesk"  # the DAG's default
SYNC_TASK = "sync_batch"
MAX_BATCHES = 32  # the DAG's default max_batches
RUN_SECONDS = 420


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed=SEED, rate_scale=0)) as server:
        yield server


@pytest.fixture(scope="module")
def s3_client(s3_endpoint: str) -> Any:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer, s3_endpoint: str, s3_client: Any) -> Iterator[Deployment]:
    # rate_scale 0: no client-side budget either (at Autodesk's rates a quiet night of 1,100
    # projects takes 220 s of root-folder calls alone; the benchmark measures that).
    connections = mirror_connections(aps_url=simulator.base_url, client_id=simulator.client_id,
                                     client_secret=simulator.client_secret, s3_endpoint=s3_endpoint,
                                     autodesk_extra={"rate_scale": 0})
    with mirror_deployment(tmp_path_factory.mktemp("airflow-big-account"), connections, bucket=BUCKET) as dep:
        yield dep


def finished(deployment: Deployment, run: dict) -> tuple[dict, list[dict]]:
    """The run and its task instances, after checking it succeeded (else: what failed, and logs)."""
    instances = deployment.task_instances(run)
    bad = [f"{t['task_id']}[{t['map_index']}]: {t['state']}" for t in instances
           if t["state"] not in ("success", "skipped")]
    assert run["state"] == "success", f"run {run['state']}: {bad}\n{deployment.task_logs()[-6000:]}"
    return run, instances


@pytest.fixture(scope="module")
def first_run(deployment: Deployment, simulator: SimulatorServer) -> tuple[dict, list[dict]]:
    simulator.sim.reset_stats()
    return finished(deployment, deployment.trigger("aps_mirror", wait=RUN_SECONDS))


@pytest.fixture(scope="module")
def quiet_run(deployment: Deployment, simulator: SimulatorServer, first_run) -> tuple[dict, list[dict], dict]:
    simulator.sim.reset_stats()
    run = deployment.trigger("aps_mirror", wait=RUN_SECONDS)
    return (*finished(deployment, run), simulator.sim.stats())


def runs_by_project(s3_client: Any, run_id: str) -> tuple[Counter, int]:
    """The catalog's `runs` rows of one run: their statuses, and how many projects they cover."""
    con = reader.connect(s3_client, BUCKET, PREFIX, tables=("runs",))
    rows = con.execute("SELECT project_id, status FROM runs WHERE run_id = ?", [run_id]).fetchall()
    return Counter(status for _, status in rows), len({project for project, _ in rows})


@pytest.mark.timeout(900)
def test_first_run_mirrors_every_project_with_the_default_max_map_length(
        deployment: Deployment, simulator: SimulatorServer, s3_client: Any, first_run) -> None:
    assert not any(k.endswith("MAX_MAP_LENGTH") for k in deployment.env)
    assert deployment.airflow("config", "get-value", "core", "max_map_length").stdout.strip() == "1024"
    run, instances = first_run
    batches = [t for t in instances if t["task_id"] == SYNC_TASK]
    assert 1 <= len(batches) <= MAX_BATCHES and all(t["state"] == "success" for t in batches), batches
    assert all(t["rendered_map_index"] for t in batches), "a batch's name says which projects it holds"
    others = {t["task_id"] for t in instances} - {SYNC_TASK}
    assert len(instances) == len(batches) + len(others)  # nothing else is mapped

    # Every selected file is one object, holding the simulator's bytes (all heads, a sample's bodies).
    files = {f.item_id: f for f in selected_by_default(simulator.sim)}
    assert len({(f.hub, f.project) for f in files.values()}) == PROJECTS
    keys = [o["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
            for o in page.get("Contents", []) if not o["Key"].startswith(f"{PREFIX}/_aps_mirror/")]
    assert len(keys) == len(files)
    held = {s3_client.head_object(Bucket=BUCKET, Key=k)["Metadata"]["aps-item-id"]: k for k in keys}
    assert held.keys() == files.keys()
    for item_id in sorted(held)[:: len(held) // 25]:
        body = s3_client.get_object(Bucket=BUCKET, Key=held[item_id])["Body"].read()
        assert body == simulator.sim.file_bytes(files[item_id].tip.id)

    statuses, projects = runs_by_project(s3_client, run["dag_run_id"])
    assert projects == PROJECTS and statuses == {"success": PROJECTS}


@pytest.mark.timeout(900)
def test_a_quiet_night_maps_no_sync_work_and_runs_as_few_tasks_as_a_small_account(
        deployment: Deployment, quiet_run) -> None:
    run, instances, stats = quiet_run
    mapped = [t for t in instances if t["task_id"] == SYNC_TASK and t["map_index"] >= 0]
    assert mapped == []
    # One instance per task of the DAG: the count a 10-project account's quiet night has too.
    tasks = deployment.tasks("aps_mirror")
    assert sorted(t["task_id"] for t in instances) == sorted(t["task_id"] for t in tasks)
    assert len(instances) <= 8
    # About one call per project decides it is unchanged; nothing is listed or downloaded.
    assert stats["downloads"] == 0 and "folder_contents" not in stats["requests"], stats["requests"]
    assert sum(stats["requests"].values()) <= PROJECTS + 20


@pytest.mark.timeout(900)
def test_catalog_and_dashboard_show_every_projects_last_result_after_the_quiet_night(
        deployment: Deployment, s3_client: Any, quiet_run) -> None:
    run = quiet_run[0]
    statuses, projects = runs_by_project(s3_client, run["dag_run_id"])
    assert projects == PROJECTS and statuses == {"success": PROJECTS}

    dashboard = deployment.api.get(f"{deployment.base}/aps-mirror/dashboard.json", timeout=120).json()
    (mirror,) = [m for m in dashboard["mirrors"] if (m["bucket"], m["prefix"]) == (BUCKET, PREFIX)]
    assert mirror["error"] is None, mirror["error"]
    shown = mirror["report"]["projects"]
    started = datetime.fromisoformat(run["start_date"])
    assert len(shown) == PROJECTS
    assert Counter(p["status"] for p in shown) == {"ok": PROJECTS}
    assert all(datetime.fromisoformat(p["last_run_at"]) >= started for p in shown)
    assert sum(p["files"] for p in shown) == PROJECTS
