"""Real `airflow dags test aps_mirror` runs: APS simulator in, moto S3 out, asset events recorded.

The mirrored objects are checked against the simulator's files: one object per file, under the
file's hub/project/folder path, holding the tip version's exact bytes."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime

from aps_mirror.simulator import SimulatorServer
from tests.airflow_provider.airflow_home import run_airflow


def _env(simulator: SimulatorServer, s3_endpoint: str) -> dict[str, str]:
    return {
        # `dags test` of a DAG with a deadline exits 1 after a successful run on Airflow 3.3.2
        # (apache/airflow#73428: its in-memory DAG has no deadline_alert ids); the scheduler is fine.
        "APS_MIRROR_DEADLINE": "off",
        "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
            "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}}),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}),
    }


def _run(conf: dict, env: dict[str, str]) -> tuple[str, int, str]:
    """One `airflow dags test aps_mirror`: its run id, exit code and output."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    run = run_airflow("dags", "test", "aps_mirror", "--conf", json.dumps(conf), env=env, timeout=300)
    with create_session() as session:
        run_id = session.scalar(select(DagRun.run_id).where(DagRun.dag_id == "aps_mirror")
                                .order_by(DagRun.id.desc()).limit(1))
    return run_id, run.returncode, run.stdout + run.stderr


def _task_instances(run_id: str, task_id: str) -> list:
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == "aps_mirror", TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id)).all())


def _mirror_events() -> list[dict]:
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return [e.extra for e in session.scalars(select(AssetEvent).join(
            AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.name == "aps_mirror")
            .order_by(AssetEvent.id)).all()]


def test_a_nightly_run_mirrors_every_project_then_a_quiet_night_maps_nothing(
        airflow_db, simulator: SimulatorServer, s3_endpoint: str, s3, bucket: str) -> None:
    from airflow.models.pool import Pool

    from aps_mirror.catalog.report import build_report

    Pool.create_or_update_pool("autodesk_api", 4, "APS API concurrency", include_deferred=False)
    env = _env(simulator, s3_endpoint)
    seen_events = len(_mirror_events())

    # Every top folder, as `iter_files()` has them (the default leaves the ACC hub's Plans out).
    conf = {"bucket": bucket, "top_folders": ["*"]}
    first, code, output = _run(conf, env)
    assert code == 0, output[-5000:]
    assert simulator.client_secret not in output
    files = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="autodesk/")
             for obj in page.get("Contents", []) if not obj["Key"].startswith("autodesk/_aps_mirror/")]
    mapped = _task_instances(first, "sync_batch")
    truth = {f.item_id: f for f in simulator.sim.iter_files()}
    projects = {f"{f.hub} / {f.project}" for f in truth.values()}
    # Three new projects, at most 32 batches: one each, named after its project in the UI.
    assert {ti.rendered_map_index for ti in mapped} == projects
    assert {ti.state for ti in mapped} == {"success"}
    (extra,) = _mirror_events()[seen_events:]
    assert extra["bucket"] == bucket and extra["projects"] == len(mapped) == 3
    assert extra["files_failed"] == 0 and extra["files_copied"] == len(truth)
    assert_objects_are_the_files(s3, bucket, files, simulator)

    # Nothing changed in Autodesk: the scan settles every project, no batch is mapped.
    quiet, code, output = _run(conf, env)
    assert code == 0, output[-5000:]
    assert quiet != first
    assert not [ti for ti in _task_instances(quiet, "sync_batch") if ti.map_index >= 0 or ti.state == "success"]
    (summarize,) = _task_instances(quiet, "summarize")
    assert summarize.state == "success"
    (extra,) = _mirror_events()[seen_events + 1:]
    assert extra["projects"] == 3 and extra["files_skipped"] == len(truth)
    assert extra["files_copied"] == extra["files_listed"] == extra["files_failed"] == 0
    assert extra["api_calls_total"] <= 3 + 6, "about one call per project (plus listing hubs and projects)"
    # The catalog (what the dashboard reads) has every project's success from tonight's scan.
    report = build_report(s3, bucket, "autodesk")
    assert {f"{p.hub_name} / {p.project_name}" for p in report.projects} == projects
    (plan,) = _task_instances(quiet, "plan_work")
    for project in report.projects:  # tonight's: recorded while plan_work scanned
        assert project.status == "ok", project
        assert project.last_success_at == project.last_run_at, project
        success = datetime.fromisoformat(project.last_success_at)  # whole seconds in the report
        assert plan.start_date.replace(microsecond=0) <= success <= plan.end_date, project
    assert_objects_are_the_files(s3, bucket, files, simulator)


def test_a_failed_run_is_notified(airflow_db, simulator: SimulatorServer, s3_endpoint: str, bucket: str) -> None:
    env = {**_env(simulator, s3_endpoint), "AIRFLOW_CONN_AWS_DEFAULT": ""}
    run_id, code, output = _run({"bucket": bucket, "aws_conn_id": "aws_defined_nowhere"}, env)
    assert code != 0
    (plan,) = _task_instances(run_id, "plan_work")
    assert plan.state == "failed" and plan.try_number == 1, "a ConfigError is not retried"
    assert f"aps_mirror alert: aps_mirror run {run_id} failed" in output, output[-5000:]
    assert "AWS connection 'aws_defined_nowhere' was not found" in output


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
