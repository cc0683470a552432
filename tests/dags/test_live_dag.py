"""The live DAG: scheduled on its mirror's live asset, it syncs exactly the projects its events
name (simulator over HTTP -> moto's S3 server), once each whatever the burst."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from aps_mirror.simulator import SimulatorServer


def live_dag(tmp_path: Path, source: str) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "live.py"
    path.write_text(source)
    bag = DagBag(dag_folder=str(path))
    assert bag.import_errors == {}
    return bag.dags


def test_the_live_dag_is_scheduled_on_its_mirrors_live_asset_only(tmp_path: Path) -> None:
    dags = live_dag(tmp_path, "from aps_mirror.airflow_provider.dags import build_live_dag\n"
                              "build_live_dag('acme', bucket='acme-backup', prefix='autodesk', versions='all')\n"
                              "build_live_dag('plans', bucket='acme-plans', prefix='aps')\n")
    acme, plans = dags["acme_live"], dags["plans_live"]
    (asset,) = acme.timetable.asset_condition.objects
    assert (asset.name, asset.uri) == ("acme_live", "s3://acme-backup/autodesk/_aps_mirror/live")
    assert {a.name for a in plans.timetable.asset_condition.objects} == {"plans_live"}
    assert acme.max_active_runs == 1, "events arriving during a run wait for the next: bursts coalesce"
    assert acme.params.get_param("versions").value == "all" and acme.params.get_param("bucket").value == "acme-backup"
    assert acme.get_task("sync_affected").pool == "autodesk_api"


def test_a_bad_live_argument_is_one_line(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "live.py"
    path.write_text("from aps_mirror.airflow_provider.dags import build_live_dag\n"
                    "build_live_dag('acme', bucket='acme-backup', prefix='p', max_batches=3)\n")
    (error,) = DagBag(dag_folder=str(path)).import_errors.values()
    assert error.strip().splitlines()[-1].startswith(
        "aps_mirror.errors.ConfigError: build_live_dag: unknown option(s) max_batches; the options are ")


def test_events_name_each_project_once_and_only_the_live_assets() -> None:
    from airflow.sdk import Asset

    from aps_mirror.airflow_provider.assets import live_asset
    from aps_mirror.airflow_provider.dags.live_dag import projects_named

    live, other = live_asset("acme", "b-1", "p"), Asset(name="elsewhere", uri="s3://b-1/q")
    event = lambda project: SimpleNamespace(extra={"project_id": project, "event": "dm.version.added"})  # noqa: E731
    events = {live: [event("b.one"), event("two"), event("b.one"), event(None)], other: [event("b.three")]}
    assert projects_named(events, live.name) == ["one", "two"]
    assert projects_named({}, live.name) == projects_named(None, live.name) == []


def test_sync_affected_syncs_the_named_project_and_no_other(airflow_db, simulator: SimulatorServer, s3_endpoint: str,
                                                            s3, bucket: str, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    from aps_mirror.airflow_provider.mirror import mirror_engine

    monkeypatch.setenv("AIRFLOW_CONN_AUTODESK_DEFAULT", json.dumps({
        "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
        "password": simulator.client_secret, "extra": {"auth_mode": "client_credentials"}}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}))
    dag = live_dag(tmp_path, "from aps_mirror.airflow_provider.dags import build_live_dag\n"
                             f"build_live_dag('acme', bucket={bucket!r}, prefix='autodesk', top_folders=['*'])\n")["acme_live"]
    params = {key: dag.params.get_param(key).value for key in dag.params}
    engine = mirror_engine(params)
    with engine.locked():
        engine.mirror_projects(engine.list_projects())  # last night's mirror
    sim = simulator.sim
    changed, untouched = sorted({f.project for f in sim.iter_files()})[:2]
    target = next(f for f in sim.iter_files() if f.project == changed)
    new_version = sim.add_version(target.item_id, size=2048)
    other = next(f for f in sim.iter_files() if f.project == untouched)
    other_version = sim.add_version(other.item_id, size=4096)  # changed too, but no event names it

    sync = dag.get_task("sync_affected").python_callable
    # Outside a task run there is no context: the run id the task would read.
    monkeypatch.setattr("aps_mirror.airflow_provider.dags.live_dag.get_current_context",
                        lambda: {"run_id": "asset_triggered__test"})
    results = sync([sim.project_id(changed).removeprefix("b.")], params)
    assert [r["project"].split(" / ")[-1] for r in results] == [changed]
    manifest_entries = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="autodesk/_aps_mirror/manifests/"):
        for obj in page.get("Contents", []):
            manifest_entries.update(json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())["items"])
    assert manifest_entries[target.item_id]["version_id"] == new_version
    key = manifest_entries[target.item_id]["key"]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == sim.file_bytes(new_version)
    assert manifest_entries[other.item_id]["version_id"] != other_version, "the nightly run catches that one"
    assert sync([], params) == []
