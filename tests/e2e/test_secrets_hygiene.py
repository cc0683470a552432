"""Secrets hygiene over a FULL `aps_mirror` run in a real deployment (LocalExecutor, PostgreSQL).

The real DAG file mirrors the simulator's demo account into moto's S3 server, with connections
in the metadata database: a 3-legged `autodesk` connection whose access tokens expire every few
seconds (so the refresh token rotates many times during the run) and an `aws` connection with a
secret key. Afterwards every secret value of the run is collected (client secret, every access
and refresh token the simulator issued, every signed-URL signature, the AWS secret key, the
Airflow API password) and looked for in every task and component log, every XCom entry (mapped
tasks included), every task instance's rendered fields and the asset event's extra.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import boto3
import pytest
import requests

from aps_mirror.simulator import SimulatorServer
from tests.airflow_deployment import AIRFLOW, REPO, Deployment, airflow_deployment
from tests.airflow_provider.oauth_helpers import SCOPES, authorize
from tests.mirror.test_selection import selected_by_default
from tests.signing_simulator import SigningSimulator

CONN_ID = "autodesk_default"
AWS_CONN_ID = "aws_default"
ACCESS_KEY_ID = "AKIAAPSMIRRORHYGIENE"
AWS_SECRET = "aws-" + secrets.token_urlsafe(30)
PREFIX = "hygiene"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    # Access tokens live 64 s, refreshed 60 s early: a fresh one every ~4 s of the run.
    with SimulatorServer(SigningSimulator(seed="demo", rate_scale=0, access_token_ttl=64,
                                          reuse_detection=True)) as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"hygiene-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY_ID,
                 aws_secret_access_key=AWS_SECRET).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, simulator: SimulatorServer, s3_endpoint: str,
               bucket: str) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow-hygiene")
    dags = home / "dags"
    dags.mkdir()
    # The real DAG file, unscheduled: unpausing a @daily DAG would also start a scheduled run,
    # and the triggered run must be the one that copies (and so signs URLs and rotates tokens).
    source = (REPO / "dags" / "aps_mirror.py").read_text()
    assert source.count('schedule="@daily"') == 1
    (dags / "aps_mirror.py").write_text(source.replace('schedule="@daily"', "schedule=None"))

    def setup(env: dict[str, str]) -> None:
        def airflow(*args: str) -> None:
            subprocess.run([AIRFLOW, *args], env=env, check=True, capture_output=True)

        airflow("connections", "add", CONN_ID, "--conn-json", json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url,
            "login": simulator.client_id, "password": simulator.client_secret,
            "extra": {"auth_mode": "authorization_code", "scopes": SCOPES,
                      "refresh_token": authorize(simulator)}}))
        airflow("connections", "add", AWS_CONN_ID, "--conn-json", json.dumps({
            "conn_type": "aws", "login": ACCESS_KEY_ID, "password": AWS_SECRET,
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}))
        airflow("pools", "set", "autodesk_api", "4", "APS API concurrency")

    password = secrets.token_urlsafe(12)
    extra_env = {"APS_MIRROR_AIRFLOW_API_USERNAME": "admin", "APS_MIRROR_AIRFLOW_API_PASSWORD": password,
                 "APS_MIRROR_BUCKET": bucket, "APS_MIRROR_PREFIX": PREFIX}
    with airflow_deployment(home, dags, extra_env=extra_env, setup=setup, password=password,
                            redis_db=13) as dep:
        yield dep


def test_a_full_mirror_run_leaks_no_secret(deployment: Deployment, simulator: SimulatorServer,
                                           s3_endpoint: str, bucket: str) -> None:
    sim = simulator.sim
    generation_before = deployment.connection_extra(CONN_ID).get("rt_generation", 0)
    run = deployment.trigger("aps_mirror", wait=240)
    assert run["state"] == "success", deployment.task_logs()[-8000:]

    # The run really mirrored, and really rotated the refresh token several times.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=AWS_SECRET)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
            for o in page.get("Contents", [])]
    files = selected_by_default(sim)  # the DAG's default top folders
    assert len(keys) >= len(files)
    assert f'"files_copied": {len(files)}' in places_summary(deployment, run)
    extra = deployment.connection_extra(CONN_ID)
    assert extra["rt_generation"] - generation_before >= 3, extra["rt_generation"]
    assert set(sim.oauth._refresh) == {extra["refresh_token"]}

    # Every secret the run handled.
    oauth = sim.oauth
    tokens = {*oauth._refresh, *oauth._spent, *oauth._access}
    signatures = set(sim.signatures)
    assert len(tokens) >= 6 and len(signatures) >= 40
    named = {"client secret": simulator.client_secret, "AWS secret key": AWS_SECRET,
             "Airflow API password": deployment.password}
    named.update({f"APS token {t[:4]}…": t for t in tokens})
    named.update({f"signed-URL signature {s[:6]}…": s for s in signatures})

    # Everywhere a secret could end up.
    places = {"task and component logs": deployment.task_logs() + deployment.component_logs(tail=10**9)}
    places.update(run_artifacts(deployment, run))
    # Controls: the material is real (non-secret identifiers of the run are in it).
    assert "Riverside Tower" in places["task and component logs"]  # a demo project's name
    leaks = [f"{what} in {where}" for where, text in places.items() for what, value in named.items()
             if value in text]
    assert not leaks, leaks


def places_summary(deployment: Deployment, run: dict) -> str:
    url = (f"{deployment.base}/api/v2/dags/{run['dag_id']}/dagRuns/{quote(run['dag_run_id'], safe='')}"
           "/taskInstances/summarize/xcomEntries/return_value")
    return json.dumps(deployment.api.get(url, timeout=10).json()["value"])


def run_artifacts(deployment: Deployment, run: dict) -> dict[str, str]:
    """Every XCom value, rendered field and asset event extra of the run, as text by source."""
    api, base = deployment.api, deployment.base
    run_url = f"{base}/api/v2/dags/{run['dag_id']}/dagRuns/{quote(run['dag_run_id'], safe='')}"
    found: dict[str, str] = {}
    tis = api.get(f"{run_url}/taskInstances", params={"limit": 100}, timeout=10).json()["task_instances"]
    assert {"plan_work", "sync_batch", "summarize"} <= {t["task_id"] for t in tis}
    assert sum(t["task_id"] == "sync_batch" for t in tis) >= 3  # mapped: a first copy, one batch per project
    xcom_count = 0
    for ti in tis:
        task, index = ti["task_id"], ti["map_index"]
        name = f"{task}[{index}]"
        detail = api.get(f"{run_url}/taskInstances/{task}/{index}" if index >= 0
                         else f"{run_url}/taskInstances/{task}", timeout=10)
        assert detail.ok, detail.text
        found[f"rendered fields of {name}"] = json.dumps(detail.json().get("rendered_fields"), default=str)
        entries = api.get(f"{run_url}/taskInstances/{task}/xcomEntries", params={"map_index": index},
                          timeout=10).json()["xcom_entries"]
        for entry in entries:
            value = api.get(f"{run_url}/taskInstances/{task}/xcomEntries/{quote(entry['key'], safe='')}",
                            params={"map_index": index}, timeout=10)
            assert value.ok, value.text
            found[f"XCom {entry['key']!r} of {name}"] = json.dumps(value.json(), default=str)
            xcom_count += 1
    assert xcom_count >= len(tis)  # every task returned something
    events = api.get(f"{base}/api/v2/assets/events", timeout=10,
                     params={"source_dag_id": run["dag_id"], "source_run_id": run["dag_run_id"]}).json()
    assert events["asset_events"], events
    found["asset event extra"] = json.dumps([e.get("extra") for e in events["asset_events"]], default=str)
    assert "\"files_copied\"" in found["asset event extra"]
    return found


def test_a_signed_url_that_cannot_be_reached_leaves_no_signature_in_the_error(simulator) -> None:
    """requests names the full URL in connection errors; the hook's session strips its query, so
    the signature reaches neither the mirror's error list (XCom, asset event) nor a traceback."""
    import traceback
    from urllib.parse import urlsplit

    from aps_mirror.airflow_provider.hooks.autodesk import _masking_session
    from aps_mirror.aps.client import ApsClient
    from aps_mirror.aps.retry import RetryPolicy
    from aps_mirror.aps.transport import ApsTransport
    from tests.airflow_deployment import free_port
    from tests.conftest import connection_for

    sim = simulator.sim
    client = ApsClient(ApsTransport(connection_for(simulator), session=_masking_session(),
                                    retry_policy=RetryPolicy(attempts=2, backoff_initial=0.01,
                                                             backoff_max=0.01)))
    entry = next(f for f in sim.iter_files() if f.tip.size)
    signed = client.signed_download(client.tip_version(sim.project_id(entry.project), entry.item_id))
    signature = dict(p.split("=", 1) for p in urlsplit(signed.url).query.split("&"))["Signature"]
    assert signature in sim.signatures
    unreachable = signed.url.replace(urlsplit(signed.url).netloc, f"127.0.0.1:{free_port()}")
    with pytest.raises(requests.ConnectionError) as caught:
        client.open_signed_url(unreachable)
    text = str(caught.value) + "".join(traceback.format_exception(caught.value))
    assert "Max retries exceeded" in text and signature not in text
