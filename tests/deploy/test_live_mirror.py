"""The live mirror on a real deployment (api-server, scheduler, dag-processor, triggerer as
processes): a change in the simulator reaches S3 through a signed webhook, the receiver, the
live asset and the live DAG, with no manual trigger; forged, unsigned and replayed deliveries
start nothing; a secret rotation loses no event; duplicates and reordering leave an exact
mirror; a dropped event is mirrored by the next nightly run.

The simulator delivers its webhooks to the deployment's API server (`sim.webhooks`, faithful to
Autodesk's delivery model: at least once, no order, signed with the secret token).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import boto3
import pytest
import requests

from aps_mirror.simulator import Simulator, SimulatorServer
from tests.airflow_deployment import Deployment, airflow_deployment, mirror_connections, run_airflow, wait_until

PREFIX = "autodesk"
MIRROR = "aps_mirror"
LIVE = f"{MIRROR}_live"
PASSWORD = "live-" + uuid.uuid4().hex
DAG_FILE = '''
import os

from aps_mirror.airflow_provider.dags import build_live_dag, build_mirror_dag

callback = os.environ["AIRFLOW__API__BASE_URL"] + "/aps-mirror/webhooks/dm"
options = dict(bucket={bucket!r}, prefix={prefix!r}, top_folders=["*"], delete_policy="delete", max_delete="100%")
build_mirror_dag({mirror!r}, schedule=None, webhook_callback_url=callback, **options)
build_live_dag({mirror!r}, **options)
'''


class Live:
    """The deployment, the simulator that calls it, and the mirror's bucket."""

    def __init__(self, deployment: Deployment, simulator: SimulatorServer, s3, bucket: str) -> None:
        self.deployment, self.simulator, self.s3, self.bucket = deployment, simulator, s3, bucket
        self.sim = simulator.sim

    def manifest_items(self) -> dict[str, dict]:
        items: dict[str, dict] = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")
        for obj in (o for page in pages for o in page.get("Contents", [])):
            items.update(json.loads(self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read())["items"])
        return items

    def mirrored_version(self, item_id: str) -> str | None:
        entry = self.manifest_items().get(item_id)
        return None if entry is None or entry.get("deleted_at") else entry["version_id"]

    def wait_mirrored(self, item_id: str, version_id: str | None, seconds: float = 180) -> None:
        try:
            wait_until(lambda: self.mirrored_version(item_id) == version_id, seconds,
                       f"item {item_id} at version {version_id} in the mirror")
        except AssertionError:
            raise AssertionError(f"{self.runs(LIVE)}\n{self.deployment.component_logs()}") from None

    def runs(self, dag_id: str) -> list[dict]:
        url = f"{self.deployment.base}/api/v2/dags/{dag_id}/dagRuns"
        return self.deployment.api.get(url, params={"order_by": "start_date"}, timeout=10).json()["dag_runs"]

    def live_events(self) -> int:
        """How many events the live asset has (each accepted delivery is one)."""
        api, base = self.deployment.api, self.deployment.base
        assets = api.get(f"{base}/api/v2/assets", params={"name_pattern": LIVE}, timeout=10).json()["assets"]
        (asset,) = [a for a in assets if a["name"] == LIVE]
        events = api.get(f"{base}/api/v2/assets/events", params={"asset_id": asset["id"], "limit": 1}, timeout=10)
        return events.json()["total_entries"]

    def settle(self) -> None:
        """Deliveries sent and every live run finished."""
        assert self.sim.webhooks.drain(timeout=60)
        wait_until(lambda: all(r["state"] in ("success", "failed") for r in self.runs(LIVE)), 240, "the live runs")

    def assert_exact(self) -> None:
        truth = {f.item_id: f.tip.id for f in self.sim.iter_files()}
        items = self.manifest_items()
        live = {i: e["version_id"] for i, e in items.items() if not e.get("deleted_at")}
        assert live == truth
        for item_id, version_id in truth.items():
            body = self.s3.get_object(Bucket=self.bucket, Key=items[item_id]["key"])["Body"].read()
            assert body == self.sim.file_bytes(version_id)

    def some_file(self, index: int = 0):
        return sorted(self.sim.iter_files(), key=lambda f: f.item_id)[index]


@contextmanager
def live_deployment(home: Path, s3_endpoint: str, *, seed: str = "demo") -> Iterator[Live]:
    """A deployment with the mirror and its live DAG, the first copy made (hooks included) and
    the live DAG unpaused; the simulator (seed `seed`) calls its API server."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = f"live-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    dags = home / "dags"
    dags.mkdir()
    (dags / "mirrors.py").write_text(DAG_FILE.format(bucket=bucket, prefix=PREFIX, mirror=MIRROR))
    with SimulatorServer(Simulator(seed=seed, rate_scale=0)) as simulator:
        connections = mirror_connections(aps_url=simulator.base_url, client_id=simulator.client_id,
                                         client_secret=simulator.client_secret, s3_endpoint=s3_endpoint,
                                         autodesk_extra={"scopes": "data:read data:write"})

        def setup(env: dict[str, str]) -> None:
            run_airflow(env, "pools", "set", "autodesk_api", "4", "APS API concurrency")
            for conn_id, conn in connections.items():
                run_airflow(env, "connections", "add", conn_id, "--conn-json", json.dumps(conn))

        # Tasks save the webhook secret through the REST API, as the admin here.
        rest = {"APS_MIRROR_AIRFLOW_API_USERNAME": "admin", "APS_MIRROR_AIRFLOW_API_PASSWORD": PASSWORD,
                "APS_MIRROR_DEADLINE": "off"}
        with airflow_deployment(home, dags, extra_env=rest, setup=setup, password=PASSWORD,
                                components=("api-server", "scheduler", "dag-processor", "triggerer")) as deployment:
            state = Live(deployment, simulator, s3, bucket)
            night = deployment.trigger(MIRROR, wait=1800)  # the first copy, and the hooks
            assert night["state"] == "success", deployment.component_logs()
            assert simulator.sim.webhooks.deliveries() == [], "no change yet, no delivery"
            deployment.api.patch(f"{deployment.base}/api/v2/dags/{LIVE}", json={"is_paused": False}, timeout=10)
            yield state


@pytest.fixture(scope="module")
def live(tmp_path_factory, s3_endpoint: str) -> Iterator[Live]:
    with live_deployment(tmp_path_factory.mktemp("airflow-live"), s3_endpoint) as state:
        state.assert_exact()
        yield state


def test_a_change_in_autodesk_reaches_s3_with_no_trigger(live: Live) -> None:
    target = live.some_file(0)
    runs_before, events_before = len(live.runs(LIVE)), live.live_events()
    version = live.sim.add_version(target.item_id, size=3000)
    live.wait_mirrored(target.item_id, version)
    live.settle()
    runs = live.runs(LIVE)
    assert len(runs) > runs_before and runs[-1]["run_type"] == "asset_triggered"
    assert [r["state"] for r in runs[runs_before:]] == ["success"] * (len(runs) - runs_before)
    delivered = [d for d in live.sim.webhooks.deliveries() if d["outcome"] == "delivered"]
    assert delivered and {d["status"] for d in delivered} == {200}
    assert live.live_events() == events_before + len(delivered), "one event per accepted delivery"


def test_forged_unsigned_and_replayed_deliveries_get_401_and_start_nothing(live: Live) -> None:
    live.settle()
    sent = [d for d in live.sim.webhooks.deliveries() if d["outcome"] == "delivered"][-1]
    url = sent["url"]
    body = sent["body"].encode() if isinstance(sent["body"], str) else json.dumps(sent["body"]).encode()
    headers = {k: v for k, v in sent["headers"].items() if k.lower().startswith("x-adsk") or k.lower() == "content-type"}
    events, runs = live.live_events(), len(live.runs(LIVE))
    replayed = requests.post(url, data=body, headers=headers, timeout=10)
    forged = requests.post(url, data=body, timeout=10, headers={
        **headers, "x-adsk-delivery-id": str(uuid.uuid4()), "x-adsk-signature": "sha1hash=" + "0" * 40})
    unsigned = requests.post(url, data=body, timeout=10, headers={
        k: v for k, v in {**headers, "x-adsk-delivery-id": str(uuid.uuid4())}.items() if k.lower() != "x-adsk-signature"})
    assert (replayed.status_code, forged.status_code, unsigned.status_code) == (401, 401, 401)
    assert replayed.json() == forged.json() == unsigned.json() == {"detail": "Delivery refused."}
    time.sleep(5)  # what a wrongly accepted delivery would have started by now
    assert (live.live_events(), len(live.runs(LIVE))) == (events, runs)


def test_a_secret_rotation_loses_no_event(live: Live) -> None:
    env = {**live.deployment.env, "PATH": os.environ["PATH"]}
    rotated = subprocess.run(
        [str(Path(sys.executable).with_name("aps-mirror")), "webhooks", "ensure", "--conn-id", "autodesk_default",
         "--mirror", MIRROR, "--callback-url", f"{live.deployment.base}/aps-mirror/webhooks/dm",
         "--top-folder", "*", "--rotate-secret"], env=env, capture_output=True, text=True, timeout=300)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    extra = live.deployment.connection_extra("autodesk_default")
    assert extra["webhook_secret"] not in rotated.stdout + rotated.stderr
    assert extra["webhook_secret_previous"] and extra["webhook_secret_changed_at"]
    # Autodesk applies the new token up to 10 minutes later: the old one still signs.
    first = live.some_file(1)
    version = live.sim.add_version(first.item_id, size=3100)
    live.wait_mirrored(first.item_id, version)
    live.sim.advance_clock(601)  # now the new token signs
    second = live.some_file(2)
    version = live.sim.add_version(second.item_id, size=3200)
    live.wait_mirrored(second.item_id, version)
    live.settle()
    assert not [d for d in live.sim.webhooks.deliveries() if d["outcome"] not in ("delivered",) and not d["duplicate"]]


def test_duplicated_and_reordered_deliveries_leave_an_exact_mirror(live: Live) -> None:
    live.sim.webhooks.configure(duplicate=1.0, reorder_window=4)
    try:
        files = [live.some_file(i) for i in (3, 4, 5)]
        for f in files:
            live.sim.add_version(f.item_id, size=2500)
        live.sim.rename_item(files[0].item_id, "renamed while live.pdf")
        live.sim.delete_item(live.some_file(6).item_id)
        assert live.sim.webhooks.drain(timeout=60)
    finally:
        live.sim.webhooks.configure(duplicate=0.0, reorder_window=0)
    for f in files:
        live.wait_mirrored(f.item_id, live.sim.account.item(f.item_id).tip.id)
    live.settle()
    live.assert_exact()
    # Each copy is another delivery of its event (its own id): accepted, so none is retried.
    copies = [d for d in live.sim.webhooks.deliveries() if d["duplicate"]]
    assert copies and {(d["status"], d["attempt"]) for d in copies} == {(200, 1)}, copies
    hook = live.sim.webhooks.hook(next(d["hook_id"] for d in live.sim.webhooks.deliveries() if d["duplicate"]))
    assert hook["status"] == "active", "duplicates do not switch the hook off"


def test_a_dropped_event_is_mirrored_by_the_next_nightly_run(live: Live) -> None:
    live.settle()
    runs = len(live.runs(LIVE))
    live.sim.webhooks.configure(drop_next=1)
    target = live.some_file(7)
    version = live.sim.add_version(target.item_id, size=2700)
    assert live.sim.webhooks.drain(timeout=30)
    time.sleep(5)
    assert len(live.runs(LIVE)) == runs and live.mirrored_version(target.item_id) != version
    night = live.deployment.trigger(MIRROR, wait=600)
    assert night["state"] == "success"
    assert live.mirrored_version(target.item_id) == version
    live.assert_exact()
