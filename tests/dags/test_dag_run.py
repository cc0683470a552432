"""One real `airflow dags test aps_mirror` run: APS simulator in, moto S3 out, asset event recorded."""

from __future__ import annotations

import json

from aps_mirror.simulator import SimulatorServer
from tests.airflow_provider.airflow_home import run_airflow


def test_a_nightly_run_mirrors_every_project(airflow_db, simulator: SimulatorServer, s3_endpoint: str,
                                             s3, bucket: str) -> None:
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.pool import Pool
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    Pool.create_or_update_pool("autodesk_api", 4, "APS API concurrency", include_deferred=False)
    secret = simulator.client_secret
    env = {
        "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
            "password": secret, "extra": {"auth_mode": "client_credentials"}}),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}),
    }

    run = run_airflow("dags", "test", "aps_mirror", "--conf", json.dumps({"bucket": bucket}), env=env)

    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert secret not in output
    keys = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="autodesk/")
            for obj in page.get("Contents", [])]
    with create_session() as session:
        mapped = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == "aps_mirror", TaskInstance.task_id == "sync_project")).all()
        (event,) = session.scalars(select(AssetEvent).join(
            AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.name == "aps_mirror")).all()
        extra = event.extra
    # Each mapped task instance is named after its project in the UI.
    assert {ti.rendered_map_index for ti in mapped} == {
        f"{f.hub} / {f.project}" for f in simulator.sim.iter_files()}
    assert extra["bucket"] == bucket and extra["projects"] == len(mapped) == 3
    assert extra["files_failed"] == 0 and extra["files_copied"] > 0
    assert len(keys) >= extra["files_copied"]
