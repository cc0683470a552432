"""`build_verify_dag` and `build_restore_dag`: the repository's DAG files parse, a file declares a
verify DAG per mirror, bad arguments are one-line import errors, and real `airflow dags test`
runs (APS simulator in, moto S3 out) verify a mirror and restore a deleted folder into Autodesk."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from aps_mirror.catalog import reader
from aps_mirror.simulator import SimulatorServer
from tests.airflow_provider.airflow_home import REPO, run_airflow
from tests.dags.test_dag_factory import assert_one_line_import_error, bag_of, defaults
from tests.mirror.test_engine import PREFIX, run

PROJECT = "Riverside Tower"
FOLDER = ("Project Files", "Structure")

TWO_VERIFIERS = '''
from aps_mirror.airflow_provider.dags import build_restore_dag, build_verify_dag

build_verify_dag("verify_a", bucket="bucket-a", prefix="a")
build_verify_dag("verify_b", bucket="bucket-b", prefix="b/docs", autodesk_conn_id="autodesk_b", aws_conn_id="aws_b",
                 deep=True, sample=50, workers=16, pool="autodesk_b_api", schedule="@monthly")
build_restore_dag("restore_b", bucket="bucket-b", prefix="b/docs", autodesk_conn_id="autodesk_b_writer",
                  aws_conn_id="aws_b", pool="autodesk_b_api", workers=2)
'''


def repository_dag(name: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[name]


# -- parsing ---------------------------------------------------------------------------------------
def test_the_repository_verify_dag_runs_weekly_and_alerts_unless_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    from aps_mirror.airflow_provider.notifiers import MirrorAlertNotifier

    monkeypatch.setenv("APS_MIRROR_BUCKET", "acme-docs")
    monkeypatch.setenv("APS_MIRROR_PREFIX", "aps")
    dag = repository_dag("aps_mirror_verify")
    assert dag.schedule == "@weekly" and dag.catchup is False and dag.max_active_runs == 1
    assert dag.task_dict.keys() == {"verify_mirror", "require_clean"}
    assert dag.get_task("require_clean").upstream_task_ids == {"verify_mirror"}
    assert dag.get_task("require_clean").retries == 0
    assert dag.get_task("verify_mirror").pool == "default_pool"
    (asset,) = dag.get_task("verify_mirror").outlets
    assert (asset.name, asset.group) == ("aps_mirror_verify", "aps-mirror-verification")
    assert asset.uri == "s3://acme-docs/aps/_aps_mirror/catalog/verifications/aps_mirror_verify"
    assert isinstance(dag.on_failure_callback, MirrorAlertNotifier)
    assert defaults(dag) == {"bucket": "acme-docs", "prefix": "aps", "aws_conn_id": "aws_default",
                             "autodesk_conn_id": None, "deep": False, "sample": None, "workers": 8}
    assert (REPO / "dags" / "aps_mirror_verify.py").read_text().count("schedule=") == 1


def test_the_repository_restore_dag_is_triggered_with_a_project() -> None:
    dag = repository_dag("aps_mirror_restore")
    assert dag.schedule is None and dag.max_active_runs == 1
    assert dag.task_dict.keys() == {"plan_restore", "restore_files"}
    assert dag.get_task("restore_files").upstream_task_ids == {"plan_restore"}
    assert dag.get_task("restore_files").pool == "autodesk_api"
    assert dag.get_task("plan_restore").pool == "default_pool", "it checks that the pool exists"
    assert defaults(dag) == {"project": None, "path": None, "as_of": None, "into": None, "in_place": False,
                             "dry_run": False, "workers": 4, "bucket": "aps-mirror", "prefix": "autodesk",
                             "autodesk_conn_id": "autodesk_default", "aws_conn_id": "aws_default"}
    assert "Required" in dag.params.get_param("project").description


def test_one_file_declares_a_verify_dag_per_mirror(tmp_path: Path) -> None:
    bag = bag_of(tmp_path, TWO_VERIFIERS)
    assert bag.import_errors == {}
    assert set(bag.dags) == {"verify_a", "verify_b", "restore_b"}
    a, b, restore = bag.dags["verify_a"], bag.dags["verify_b"], bag.dags["restore_b"]
    for dag in (a, b, restore):
        assert Path(dag.fileloc) == tmp_path / "mirrors.py"
    assert defaults(b) == {"bucket": "bucket-b", "prefix": "b/docs", "aws_conn_id": "aws_b",
                           "autodesk_conn_id": "autodesk_b", "deep": True, "sample": 50, "workers": 16}
    assert (a.schedule, b.schedule) == ("@weekly", "@monthly")
    assert b.get_task("verify_mirror").pool == "autodesk_b_api"
    assets = {dag.dag_id: [(o.name, o.uri) for o in dag.get_task("verify_mirror").outlets] for dag in (a, b)}
    assert assets == {"verify_a": [("verify_a", "s3://bucket-a/a/_aps_mirror/catalog/verifications/verify_a")],
                      "verify_b": [("verify_b", "s3://bucket-b/b/docs/_aps_mirror/catalog/verifications/verify_b")]}
    assert "verify_b" in b.doc_md and "`autodesk_b`" in b.doc_md
    assert restore.get_task("restore_files").pool == "autodesk_b_api"
    assert {key: restore.params.get_param(key).value for key in ("bucket", "prefix", "autodesk_conn_id", "workers")} \
        == {"bucket": "bucket-b", "prefix": "b/docs", "autodesk_conn_id": "autodesk_b_writer", "workers": 2}


@pytest.mark.parametrize(("call", "message"), [
    ('build_verify_dag("v", bucket="Bad_Bucket", prefix="p")', "bucket 'Bad_Bucket' is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="a/_aps_mirror")', "prefix 'a/_aps_mirror' is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="p", sample=0)', "sample 0 is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="p", deep="yes")', "deep 'yes' is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="p", workers=65)', "workers 65 is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="p", autodesk_conn_id="my conn")',
     "autodesk_conn_id 'my conn' is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="p", autodesk_conn_id="")', "autodesk_conn_id '' is not accepted"),
    ('build_verify_dag("v", bucket="b-1", prefix="p", pool="")', "pool '' is not accepted"),
    ('build_verify_dag("v v", bucket="b-1", prefix="p")', "dag_id 'v v' is not accepted"),
    ('build_restore_dag("r", bucket="b-1", prefix="p", workers=0)', "workers 0 is not accepted"),
    ('build_restore_dag("r", bucket="b-1", prefix="../p")', "prefix '../p' is not accepted"),
    ('build_restore_dag("r", bucket="b-1", prefix="p", aws_conn_id=None)', "aws_conn_id None is not accepted"),
    ('build_restore_dag("r", bucket="b-1", prefix="p", pool=None)', "pool None is not accepted"),
])
def test_a_bad_argument_is_a_one_line_import_error(tmp_path: Path, call: str, message: str) -> None:
    assert_one_line_import_error(tmp_path, call, message)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("sample", 0, "sample 0 is not accepted"), ("deep", "maybe", "deep 'maybe' is not accepted"),
    ("prefix", "a//b", "prefix 'a//b' is not accepted"), ("workers", 0, "workers 0 is not accepted"),
    ("autodesk_conn_id", "two words", "autodesk_conn_id 'two words' is not accepted"),
])
def test_a_bad_verify_param_fails_the_task_before_any_connection(name: str, value: Any, message: str) -> None:
    from aps_mirror.errors import ConfigError

    dag = repository_dag("aps_mirror_verify")
    params = {**defaults(dag), "aws_conn_id": "defined_nowhere", name: value}
    with pytest.raises(ConfigError, match=f"^{message}") as refused:
        dag.get_task("verify_mirror").python_callable(params, outlet_events={})
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"project": None}, "project is required: give a glob on project names or ids"),
    ({"project": ""}, "project is required"), ({"project": ["a", 3]}, "project \\['a', 3\\] is not accepted"),
    ({"as_of": "yesterday"}, "as_of 'yesterday' is not accepted: give an ISO 8601 time"),
    ({"as_of": "2999-01-01T00:00:00Z"}, "as_of '2999-01-01T00:00:00Z' is in the future"),
    ({"into": "Project Files/X", "in_place": True}, "into and in_place exclude each other"),
    ({"into": "/"}, "into '/' is not accepted"),
    ({"workers": 65}, "workers 65 is not accepted"),
    ({"bucket": "Not_A_Bucket"}, "bucket 'Not_A_Bucket' is not accepted"),
])
def test_a_bad_restore_param_fails_the_task_before_any_connection(changes: dict, message: str) -> None:
    from aps_mirror.errors import ConfigError

    dag = repository_dag("aps_mirror_restore")
    params = {**defaults(dag), "project": "Riverside*", "autodesk_conn_id": "defined_nowhere",
              "aws_conn_id": "defined_nowhere", **changes}
    for task_id in ("plan_restore", "restore_files"):
        with pytest.raises(ConfigError, match=f"^{message}") as refused:
            dag.get_task(task_id).python_callable(params)
        assert "\n" not in str(refused.value)


# -- real runs -------------------------------------------------------------------------------------
def _env(simulator: SimulatorServer, s3_endpoint: str) -> dict[str, str]:
    return {
        "APS_MIRROR_DEADLINE": "off",
        # Restoring writes: the connection asks for the write scopes (the simulator's app grants them).
        "AIRFLOW_CONN_AUTODESK_DEFAULT": json.dumps({
            "conn_type": "autodesk", "host": simulator.base_url, "login": simulator.client_id,
            "password": simulator.client_secret,
            "extra": {"auth_mode": "client_credentials", "scopes": "data:read data:write data:create"}}),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "test", "password": "test",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}),
    }


def _dags_test(dag_id: str, conf: dict, env: dict[str, str]) -> tuple[str, int, str]:
    """One `airflow dags test`: its run id, exit code and output."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    result = run_airflow("dags", "test", dag_id, "--conf", json.dumps(conf), env=env, timeout=300)
    with create_session() as session:
        run_id = session.scalar(select(DagRun.run_id).where(DagRun.dag_id == dag_id)
                                .order_by(DagRun.id.desc()).limit(1))
    return run_id, result.returncode, result.stdout + result.stderr


def _states(dag_id: str, run_id: str) -> dict[str, str]:
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id))}


def _xcom(dag_id: str, run_id: str, task_id: str) -> Any:
    from sqlalchemy import select

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(select(XComModel).where(
            XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id,
            XComModel.key == "return_value")).one()
        return XComModel.deserialize_value(row)


def _asset_events(name: str) -> list[dict]:
    from sqlalchemy import select

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return [e.extra for e in session.scalars(select(AssetEvent).join(
            AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.name == name)
            .order_by(AssetEvent.id)).all()]


def test_the_verify_dag_passes_a_clean_mirror_and_fails_on_a_missing_object(
        airflow_db, simulator: SimulatorServer, s3_endpoint: str, s3, bucket: str, aps) -> None:
    run(aps, s3, bucket, project_filter=(PROJECT,))
    manifest = {k: v for page in [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())["items"]
                                  for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_aps_mirror/manifests/")
                                  ["Contents"]] for k, v in page.items()}
    env = _env(simulator, s3_endpoint)
    seen = len(_asset_events("aps_mirror_verify"))
    conf = {"bucket": bucket, "prefix": PREFIX, "autodesk_conn_id": "autodesk_default", "deep": True}

    clean, code, output = _dags_test("aps_mirror_verify", conf, env)
    assert code == 0, output[-5000:]
    assert simulator.client_secret not in output
    assert _states("aps_mirror_verify", clean) == {"verify_mirror": "success", "require_clean": "success"}
    summary = _xcom("aps_mirror_verify", clean, "verify_mirror")
    assert summary["clean"] is True and summary["against_autodesk"] is True and summary["deep"] is True
    assert summary["objects_checked"] == summary["objects_read"] == len(manifest)
    assert summary["missing"] == summary["corrupt"] == summary["orphans"] == summary["errors"] == 0
    assert summary["findings"] == [] and summary["catalog"]
    [row] = reader.read_table(s3, bucket, PREFIX, "verifications").to_pylist()
    assert row["verification_id"] == summary["verification_id"] and row["clean"]
    (extra,) = _asset_events("aps_mirror_verify")[seen:]
    assert extra["clean"] is True and extra["objects_checked"] == len(manifest) and extra["bucket"] == bucket
    assert "findings" not in extra

    gone_id, gone = sorted(manifest.items())[0]
    s3.delete_object(Bucket=bucket, Key=gone["key"])
    broken, code, output = _dags_test("aps_mirror_verify", {"bucket": bucket, "prefix": PREFIX}, env)
    assert code != 0
    assert _states("aps_mirror_verify", broken) == {"verify_mirror": "success", "require_clean": "failed"}
    assert "missing (1):" in output and f"missing: {gone['key']}" in output, output[-5000:]
    assert "NOT CLEAN: 1 missing" in output
    assert f"aps_mirror alert: aps_mirror_verify run {broken} failed: the mirror is not clean" in output
    summary = _xcom("aps_mirror_verify", broken, "verify_mirror")
    assert (summary["clean"], summary["missing"], summary["against_autodesk"]) == (False, 1, False)
    assert [(f["category"], f["key"], f["path"]) for f in summary["findings"]] == \
        [("missing", gone["key"], gone["source_path"])]
    rows = reader.read_table(s3, bucket, PREFIX, "verifications").to_pylist()
    assert sorted((r["clean"], r["missing"]) for r in rows) == [(False, 1), (True, 0)]
    (extra,) = _asset_events("aps_mirror_verify")[seen + 1:]
    assert (extra["clean"], extra["missing"]) == (False, 1), "downstream alerting hears of a fault too"


def test_the_restore_dag_restores_a_deleted_folder_as_of_before_a_change(
        airflow_db, simulator: SimulatorServer, s3_endpoint: str, s3, bucket: str, aps) -> None:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("autodesk_api", 4, "APS API concurrency", include_deferred=False)
    sim = simulator.sim
    project_id = sim.project_id(PROJECT)
    run(aps, s3, bucket, project_filter=(PROJECT,), versions="all")
    then = _files_under(sim, FOLDER)
    as_of = datetime.fromtimestamp(sim.clock.now(), tz=timezone.utc).isoformat()
    sim.advance_clock(60)
    changed = sorted(v.item.id for v in then.values())[0]
    sim.add_version(changed, size=2345)
    run(aps, s3, bucket, project_filter=(PROJECT,), versions="all")
    sim.delete_folder(sim.folder_id(project_id, FOLDER))
    env = _env(simulator, s3_endpoint)
    conf = {"project": "riverside*", "path": "/".join(FOLDER), "as_of": as_of, "into": "Project Files/Recovered",
            "bucket": bucket, "prefix": PREFIX}

    dry, code, output = _dags_test("aps_mirror_restore", {**conf, "dry_run": True}, env)
    assert code == 0, output[-5000:]
    assert _states("aps_mirror_restore", dry) == {"plan_restore": "success", "restore_files": "skipped"}
    assert sum(f"would restore {'/'.join(FOLDER)}/" in line for line in output.splitlines()) == len(then)
    assert _xcom("aps_mirror_restore", dry, "plan_restore")["files_restored"] == len(then)
    assert not _files_under(sim, ("Project Files", "Recovered"))

    restored_run, code, output = _dags_test("aps_mirror_restore", conf, env)
    assert code == 0, output[-5000:]
    assert simulator.client_secret not in output
    summary = _xcom("aps_mirror_restore", restored_run, "restore_files")
    assert summary == {"dry_run": False, "files_restored": len(then),
                       "bytes_restored": sum(v.size for v in then.values()), "files_failed": 0,
                       "files_skipped": 0, "not_restorable": 0, "failed_files": [], "not_restorable_files": []}
    restored = _files_under(sim, ("Project Files", "Recovered", FOLDER[-1]))
    assert restored.keys() == then.keys()
    for where, version in restored.items():  # the bytes of then, not the later version's
        assert sim.sha1(version.id) == sim.sha1(then[where].id), where
        assert sim.file_bytes(version.id) == sim.file_bytes(then[where].id), where


def test_a_restore_that_cannot_be_done_as_of_then_fails_with_its_summary(
        airflow_db, simulator: SimulatorServer, s3_endpoint: str, s3, bucket: str, aps) -> None:
    from airflow.models.pool import Pool

    Pool.create_or_update_pool("autodesk_api", 4, "APS API concurrency", include_deferred=False)
    sim = simulator.sim
    run(aps, s3, bucket, project_filter=(PROJECT,))  # tips only: earlier versions are not kept
    as_of = datetime.fromtimestamp(sim.clock.now(), tz=timezone.utc).isoformat()
    sim.advance_clock(60)
    target = sorted(_files_under(sim, FOLDER).items())[0]
    sim.add_version(target[1].item.id, size=999)
    run(aps, s3, bucket, project_filter=(PROJECT,))
    conf = {"project": PROJECT, "path": "/".join((*FOLDER, *target[0])), "as_of": as_of, "bucket": bucket,
            "prefix": PREFIX}
    failed, code, output = _dags_test("aps_mirror_restore", conf, _env(simulator, s3_endpoint))
    assert code != 0
    assert _states("aps_mirror_restore", failed) == {"plan_restore": "success", "restore_files": "failed"}
    summary = _xcom("aps_mirror_restore", failed, "restore_files")
    assert (summary["files_restored"], summary["not_restorable"]) == (0, 1)
    assert "cannot be restored as of that time" in summary["not_restorable_files"][0]["reason"]
    assert f"aps_mirror alert: aps_mirror_restore run {failed} failed" in output


def _files_under(sim, path: tuple[str, ...]) -> dict[tuple[str, ...], Any]:
    """(path below `path`..., name) -> tip version, for the live files under a folder of PROJECT."""
    return {(*f.path[len(path):], f.tip.name): f.tip for f in sim.iter_files()
            if f.project == PROJECT and f.path[:len(path)] == path}
