"""dags/aps_mirror.py parses cleanly and describes the pipeline it promises."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.airflow_provider.airflow_home import REPO


def load_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "aps_mirror.py"))
    assert bag.import_errors == {}
    return bag.dags["aps_mirror"]


def test_dag_imports_with_the_expected_shape() -> None:
    dag = load_dag()
    assert dag.schedule == "@daily"
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.task_dict.keys() == {"list_projects", "sync_project", "retire_removed_projects",
                                    "publish_catalog_tables", "summarize"}
    assert dag.get_task("sync_project").upstream_task_ids == {"list_projects"}
    assert dag.get_task("retire_removed_projects").upstream_task_ids == {"list_projects", "sync_project"}
    assert dag.get_task("publish_catalog_tables").upstream_task_ids == {"sync_project",
                                                                        "retire_removed_projects"}
    assert dag.get_task("publish_catalog_tables").trigger_rule == "all_done", "failures go to the catalog too"
    assert dag.get_task("summarize").upstream_task_ids == {"list_projects", "sync_project",
                                                           "retire_removed_projects", "publish_catalog_tables"}


def test_params_and_their_defaults() -> None:
    params = {key: load_dag().params.get_param(key).value for key in load_dag().params}
    assert params == {"bucket": "aps-mirror", "prefix": "autodesk", "hub_filter": [], "exclude_hubs": [],
                      "project_filter": [], "exclude_projects": [], "top_folders": [], "extensions": [],
                      "exclude_extensions": [], "max_file_size_mb": None, "workers": 4, "project_workers": 4,
                      "dry_run": False, "full_walk": False, "full_walk_days": 7,
                      "delete_policy": "keep", "max_delete": "10%", "versions": "tip",
                      "allow_other_account": False, "lock_wait_seconds": 300.0, "break_lock": False,
                      "autodesk_conn_id": "autodesk_default", "aws_conn_id": "aws_default"}


def test_every_sync_option_is_a_param_with_the_tables_schema() -> None:
    from aps_mirror.options import SYNC_OPTIONS

    params = load_dag().params
    assert set(params) == {o.param_name for o in SYNC_OPTIONS} | {"autodesk_conn_id", "aws_conn_id"}
    for option in SYNC_OPTIONS:
        param = params.get_param(option.param_name)
        assert (param.schema, param.description) == (option.schema, option.help), option.name


@pytest.mark.parametrize(("name", "value"), [
    ("max_delete", "nan%"), ("max_delete", "inf"), ("max_delete", "-1"), ("max_delete", "200%"),
    ("max_delete", ""), ("workers", 0), ("workers", 65), ("full_walk_days", -1),
    ("max_file_size_mb", -5), ("max_file_size_mb", 0), ("prefix", "../x"), ("prefix", "/x"),
    ("prefix", "a//b"), ("prefix", "a/_APS_MIRROR"), ("delete_policy", "purge"), ("versions", "some"),
    ("bucket", "Not_A_Bucket"),
])
def test_the_trigger_form_refuses_a_bad_value(name: str, value: object) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = load_dag().params.get_param(name)
    with pytest.raises(ParamValidationError):
        param.resolve(value)


def test_bucket_and_prefix_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APS_MIRROR_BUCKET", "acme-docs")
    monkeypatch.setenv("APS_MIRROR_PREFIX", "aps")
    dag = load_dag()
    assert dag.params.get_param("bucket").value == "acme-docs"
    assert dag.params.get_param("prefix").value == "aps"
    (asset,) = dag.get_task("summarize").outlets
    assert (asset.name, asset.uri) == ("aps_mirror", "s3://acme-docs/aps")
    tables = {a.name: a.uri for a in dag.get_task("publish_catalog_tables").outlets}
    assert tables["aps_mirror_catalog_files"] == "s3://acme-docs/aps/_aps_mirror/catalog/files"
    assert len(tables) == 6


def test_sync_project_is_mapped_pooled_named_and_retried() -> None:
    from aps_mirror.errors import AuthError, ConfigError, ReauthorizationRequired

    task = load_dag().get_task("sync_project")
    kwargs = task.partial_kwargs
    assert task.pool == "autodesk_api"
    assert kwargs["map_index_template"] == "{{ project_label }}"
    assert kwargs["retries"] == 2 and kwargs["retry_exponential_backoff"] > 1
    policy = kwargs["retry_policy"]
    for exc in (ConfigError("x"), AuthError("x"), ReauthorizationRequired("x")):
        assert policy.evaluate(exc, 1, 3).action.value == "fail"
    assert policy.evaluate(ConnectionError("x"), 1, 3).action.value == "default"


def _summarize(projects: Any, results: list[dict], params: dict | None = None) -> tuple[dict, dict]:
    task = load_dag().get_task("summarize")
    events: dict = {}
    outlet_events = {asset: events.setdefault(asset, SimpleNamespace(extra={})) for asset in task.outlets}
    params = {"bucket": "b", "prefix": "p", "aws_conn_id": "aws_default", "dry_run": False, **(params or {})}
    counts = task.python_callable(projects, results, None, params, outlet_events=outlet_events)
    (event,) = events.values()
    return counts, event.extra


def _result(name: str, **counts: int) -> dict:
    return {"project": name, "hub_id": "h", "project_id": name, "files_listed": 2, "files_copied": 1,
            "files_skipped": 1, "bytes_copied": 10, "api_calls": {"hubs": 1}, **counts}


def test_summarize_adds_up_and_records_the_counts_on_the_asset() -> None:
    counts, extra = _summarize([{"project_id": "a"}, {"project_id": "b"}],
                               [_result("a"), _result("b")])
    assert counts["projects"] == 2 and counts["files_copied"] == 2 and counts["bytes_copied"] == 20
    assert extra["bucket"] == "b" and extra["prefix"] == "p" and extra["files_copied"] == 2
    assert "planned" not in extra


def test_summarize_fails_the_run_when_a_project_did_not_finish() -> None:
    with pytest.raises(RuntimeError, match="1 of 2 project sync"):
        _summarize([{"project_id": "a"}, {"project_id": "b"}], [_result("a")])
    with pytest.raises(RuntimeError, match="1 finished with errors"):
        _summarize([{"project_id": "a"}], [_result("a", files_failed=1)])
    with pytest.raises(RuntimeError, match="list_projects failed"):
        _summarize(None, [])


def test_the_example_digest_dag_runs_on_the_catalog_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("APS_MIRROR_BUCKET", "acme-docs")
    bag = DagBag(dag_folder=str(REPO / "dags" / "aps_mirror_catalog_digest.py"))
    assert bag.import_errors == {}
    dag = bag.dags["aps_mirror_catalog_digest"]
    condition = dag.timetable.asset_condition  # both tables: one publish updates both
    assert type(condition).__name__ == "AssetAll"
    uris = {a.uri for a in condition.objects}
    assert uris == {"s3://acme-docs/autodesk/_aps_mirror/catalog/files",
                    "s3://acme-docs/autodesk/_aps_mirror/catalog/events"}


def test_a_dry_run_skips_the_catalog_publish() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    task = load_dag().get_task("publish_catalog_tables")
    with pytest.raises(AirflowSkipException, match="dry run"):
        task.python_callable([], [], {"dry_run": True}, outlet_events={})


def test_a_bad_param_fails_the_task_before_any_connection_is_used() -> None:
    from aps_mirror.errors import ConfigError

    dag = load_dag()
    params = {key: dag.params.get_param(key).value for key in dag.params}
    params["autodesk_conn_id"] = params["aws_conn_id"] = "defined_nowhere"
    for name, value in (("max_delete", "nan%"), ("workers", 0), ("prefix", "../x")):
        with pytest.raises(ConfigError, match=f"^{name} .* is not accepted"):
            dag.get_task("list_projects").python_callable({**params, name: value})


def test_the_dags_s3_client_comes_from_the_aws_connection_through_the_factory(
        monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, bucket: str) -> None:
    import json

    from aps_mirror.airflow_provider.mirror import mirror_s3
    from aps_mirror.errors import ConfigError
    from aps_mirror.s3_client import pool_size

    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", json.dumps({
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1",
                  "config_kwargs": {"connect_timeout": 7}}}))
    s3 = mirror_s3({"aws_conn_id": "aws_moto"}, workers=12)
    assert s3.meta.config.max_pool_connections == pool_size(12)
    assert s3.meta.config.connect_timeout == 7, "the connection's config_kwargs are kept"
    s3.put_object(Bucket=bucket, Key="k", Body=b"through the hook's session")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"through the hook's session"
    with pytest.raises(ConfigError, match="AWS connection 'aws_mot' was not found"):
        mirror_s3({"aws_conn_id": "aws_mot"})
