"""One real `airflow dags test aps_mirror` run: APS simulator in, moto S3 out, asset event recorded.

The mirrored objects are checked against the simulator's files: one object per file, under the
file's hub/project/folder path, holding the tip version's exact bytes."""

from __future__ import annotations

import hashlib
import json
import unicodedata

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

    # Every top folder, as `iter_files()` has them (the default leaves the ACC hub's Plans out).
    conf = {"bucket": bucket, "top_folders": ["*"]}
    run = run_airflow("dags", "test", "aps_mirror", "--conf", json.dumps(conf), env=env)

    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert secret not in output
    files = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="autodesk/")
             for obj in page.get("Contents", []) if not obj["Key"].startswith("autodesk/_aps_mirror/")]
    with create_session() as session:
        mapped = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == "aps_mirror", TaskInstance.task_id == "sync_project")).all()
        (event,) = session.scalars(select(AssetEvent).join(
            AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.name == "aps_mirror")).all()
        extra = event.extra
    truth = {f.item_id: f for f in simulator.sim.iter_files()}
    # Each mapped task instance is named after its project in the UI.
    assert {ti.rendered_map_index for ti in mapped} == {f"{f.hub} / {f.project}" for f in truth.values()}
    assert extra["bucket"] == bucket and extra["projects"] == len(mapped) == 3
    assert extra["files_failed"] == 0 and extra["files_copied"] == len(truth)
    assert_objects_are_the_files(s3, bucket, files, simulator)


def assert_objects_are_the_files(s3, bucket: str, keys: list[str], simulator: SimulatorServer) -> None:
    """One object per simulator file, at its path, with its tip version's bytes."""
    truth = {f.item_id: f for f in simulator.sim.iter_files()}
    by_item: dict[str, str] = {}
    for key in keys:
        obj = s3.get_object(Bucket=bucket, Key=key)
        item_id = obj["Metadata"]["aps-item-id"]
        assert item_id in truth and item_id not in by_item, (key, item_id)
        by_item[item_id] = key
        f = truth[item_id]
        body = obj["Body"].read()
        assert obj["Metadata"]["aps-version-number"] == str(f.tip.number), key
        assert len(body) == f.tip.size and hashlib.sha1(body).hexdigest() == simulator.sim.sha1(f.tip.id), key
        folder, _, name = key.rpartition("/")
        assert folder == "/".join(["autodesk", f.hub, f.project, *f.path]), key
        if not set(f.tip.name) & set('<>:"\\|?*'):  # Windows-illegal characters are replaced
            assert name == unicodedata.normalize("NFC", f.tip.name), key
    assert set(by_item) == set(truth)
