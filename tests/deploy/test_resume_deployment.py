"""A first copy killed in the middle, on a real deployment, resumes without downloading again.

The aps_mirror DAG runs on api-server, scheduler and dag-processor processes (LocalExecutor on
the local PostgreSQL). While its sync task copies (downloads slowed by the simulator), the task's
process is SIGKILLed, as a worker restart or an OOM kill would; the task is then run again. The
rerun downloads only the files that had no object in S3 yet: what the killed task copied is
adopted (checkpointed, or proven by its metadata), not fetched again.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Iterator

import boto3
import psutil
import pytest

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import Deployment, mirror_connections, mirror_deployment, wait_until

DAG_ID = "aps_mirror"
PREFIX = "autodesk"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(seed="demo", rate_scale=0)) as server:
        yield server


@pytest.fixture(scope="module")
def s3_client(s3_endpoint: str):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="mirror-key", aws_secret_access_key="mirror-secret")


@pytest.fixture(scope="module")
def bucket(s3_client) -> str:
    name = f"resume-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer, s3_endpoint: str, bucket: str) -> Iterator[Deployment]:
    connections = mirror_connections(aps_url=simulator.base_url, client_id=simulator.client_id,
                                     client_secret=simulator.client_secret, s3_endpoint=s3_endpoint)
    with mirror_deployment(tmp_path_factory.mktemp("airflow-resume"), connections, bucket=bucket) as deployed:
        yield deployed


def mirrored_objects(s3, bucket: str) -> dict[str, tuple[str, object]]:
    """Key -> (ETag, LastModified) of every mirrored file (the mirror's own objects left out)."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX + "/"):
        for obj in page.get("Contents", []):
            if not obj["Key"].startswith(f"{PREFIX}/_aps_mirror/"):
                found[obj["Key"]] = (obj["ETag"], obj["LastModified"])
    return found


def task_processes(home: Path, task_instance_ids: set[str]) -> tuple[list[psutil.Process], str]:
    """The processes running these task instances' code: the children of the LocalExecutor
    workers that setproctitle names after the task instance id (the worker supervises). Also a
    listing of the scheduler's descendants, for messages."""
    schedulers = [p for p in psutil.process_iter(["cmdline"]) if _home_of(p) == str(home)
                  and "scheduler" in " ".join(p.info["cmdline"] or [])]
    found, seen = [], []
    for process in (c for s in schedulers for c in s.children(recursive=True)):
        try:
            text = " ".join(process.cmdline())
        except psutil.Error:
            continue
        seen.append(f"{process.pid} {text}")
        if any(ti_id in text for ti_id in task_instance_ids):
            found += process.children(recursive=True)
    return found, "\n".join(seen)


SLOW_SECONDS = 0.6  # each download, while the first copy runs


def settled_downloads(sim) -> int:
    """The simulator's download count once the killed task's downloads in flight have ended.

    The dead processes start no request; one already in flight is counted when its slowed
    answer begins, at most SLOW_SECONDS later. A count that holds still over a longer window
    has counted them all."""
    deadline = time.monotonic() + 30
    before = sim.stats()["downloads"]
    while time.monotonic() < deadline:
        time.sleep(SLOW_SECONDS + 0.5)
        now = sim.stats()["downloads"]
        if now == before:
            return now
        before = now
    raise AssertionError("the simulator kept counting downloads after the kill")


def _home_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("AIRFLOW_HOME")
    except psutil.Error:
        return None


def test_a_killed_sync_task_resumes_without_downloading_again(deployment: Deployment, simulator: SimulatorServer,
                                                              s3_client, bucket: str):
    sim = simulator.sim
    files = len(list(sim.iter_files()))
    sim.inject_fault("download", kind="slow", seconds=SLOW_SECONDS, count=None)  # a first copy that takes a while
    api, base = deployment.api, deployment.base
    wait_until(lambda: api.get(f"{base}/api/v2/dags/{DAG_ID}", timeout=5).ok, 120, "the parsed DAG")
    api.patch(f"{base}/api/v2/dags/{DAG_ID}", json={"is_paused": False}, timeout=10)
    created = api.post(f"{base}/api/v2/dags/{DAG_ID}/dagRuns", timeout=10,
                       json={"logical_date": None, "conf": {"top_folders": ["*"]}})
    assert created.status_code in (200, 201), created.text
    run_id = created.json()["dag_run_id"]
    run_url = f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"

    # Kill the sync task once a few files are in S3 (and a checkpoint may not have caught them).
    wait_until(lambda: len(mirrored_objects(s3_client, bucket)) >= 5, 240, "the first copies in S3")
    running = {t["id"] for t in deployment.task_instances(api.get(run_url, timeout=5).json())
               if t["task_id"].startswith("sync_") and t["state"] == "running"}
    victims, seen = task_processes(deployment.home, running)
    assert victims, "no sync task process found among the scheduler's:\n" + seen
    for process in victims:
        os.kill(process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    sim.clear_faults()
    in_s3 = mirrored_objects(s3_client, bucket)
    assert 0 < len(in_s3) < files, "killed in the middle of the first copy"
    downloads = settled_downloads(sim)

    # The task is run again (a retry, or cleared by an operator: here, cleared at once).
    def sync_task_ended() -> bool:
        states = [t["state"] for t in deployment.task_instances(api.get(run_url, timeout=5).json())
                  if t["task_id"].startswith("sync_")]
        return bool(states) and all(s in ("failed", "up_for_retry", "success") for s in states)

    wait_until(sync_task_ended, 180, "Airflow to notice the killed task")
    cleared = api.post(f"{base}/api/v2/dags/{DAG_ID}/clearTaskInstances", timeout=30, json={
        "dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True,
        "task_ids": [t["task_id"] for t in deployment.tasks(DAG_ID) if t["task_id"].startswith("sync_")],
        "include_downstream": True})
    assert cleared.status_code == 200, cleared.text
    wait_until(lambda: api.get(run_url, timeout=5).json()["state"] in ("success", "failed"), 300,
               "the resumed run")
    run = api.get(run_url, timeout=5).json()
    assert run["state"] == "success", deployment.component_logs()
    assert time.monotonic() - killed_at < 600

    after = mirrored_objects(s3_client, bucket)
    assert {k: after[k] for k in in_s3} == in_s3, "what the killed task copied is kept, not rewritten"
    assert sim.stats()["downloads"] - downloads <= files - len(in_s3), \
        "the rerun downloads only the files that had no object in S3"
    truth = {f.item_id: f for f in sim.iter_files()}
    assert len(after) == len(truth) == files
    for key in after:  # every object holds its file's current bytes
        head = s3_client.head_object(Bucket=bucket, Key=key)
        item = truth[head["Metadata"]["aps-item-id"]]
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == sim.file_bytes(item.tip.id)
