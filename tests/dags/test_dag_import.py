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
    assert dag.task_dict.keys() == {"plan_work", "sync_batch", "retire_removed_projects",
                                    "publish_catalog_tables", "summarize"}
    assert dag.get_task("sync_batch").upstream_task_ids == {"plan_work"}
    assert dag.get_task("retire_removed_projects").upstream_task_ids == {"plan_work", "sync_batch"}
    # A quiet night maps no sync_batch (it is skipped): retiring must still run.
    assert dag.get_task("retire_removed_projects").trigger_rule == "none_failed"
    assert dag.get_task("publish_catalog_tables").upstream_task_ids == {"plan_work", "sync_batch",
                                                                        "retire_removed_projects"}
    assert dag.get_task("publish_catalog_tables").trigger_rule == "all_done", "failures go to the catalog too"
    assert dag.get_task("summarize").upstream_task_ids == {"plan_work", "sync_batch",
                                                           "retire_removed_projects", "publish_catalog_tables"}
    for task_id in ("plan_work", "retire_removed_projects", "publish_catalog_tables", "summarize"):
        assert dag.get_task(task_id).execution_timeout is not None, task_id


def test_params_and_their_defaults() -> None:
    params = {key: load_dag().params.get_param(key).value for key in load_dag().params}
    assert params == {"bucket": "aps-mirror", "prefix": "autodesk", "hub_filter": [], "exclude_hubs": [],
                      "project_filter": [], "exclude_projects": [], "top_folders": [], "extensions": [],
                      "exclude_extensions": [], "max_file_size_mb": None, "workers": 4, "project_workers": 4,
                      "dry_run": False, "full_walk": False, "full_walk_days": 7,
                      "delete_policy": "keep", "max_delete": "10%", "versions": "tip", "sources": [],
                      "allow_other_account": False, "lock_wait_seconds": 300.0, "break_lock": False,
                      "storage_class": None, "sse": None, "sse_kms_key_id": None, "expected_bucket_owner": None,
                      "object_tags": False, "checksum_algorithm": None, "object_lock_mode": None,
                      "object_lock_days": None, "legal_hold": False,
                      "max_batches": 32, "autodesk_conn_id": "autodesk_default", "aws_conn_id": "aws_default"}


def test_every_sync_option_is_a_param_with_the_tables_schema() -> None:
    from aps_mirror.options import SYNC_OPTIONS

    params = load_dag().params
    assert set(params) == {o.param_name for o in SYNC_OPTIONS} | {"max_batches", "autodesk_conn_id", "aws_conn_id"}
    for option in SYNC_OPTIONS:
        param = params.get_param(option.param_name)
        assert (param.schema, param.description) == (option.schema, option.help), option.name


@pytest.mark.parametrize(("name", "value"), [
    ("max_delete", "nan%"), ("max_delete", "inf"), ("max_delete", "-1"), ("max_delete", "200%"),
    ("max_delete", ""), ("workers", 0), ("workers", 65), ("full_walk_days", -1),
    ("max_file_size_mb", -5), ("max_file_size_mb", 0), ("prefix", "../x"), ("prefix", "/x"),
    ("prefix", "a//b"), ("prefix", "a/_APS_MIRROR"), ("delete_policy", "purge"), ("versions", "some"),
    ("bucket", "Not_A_Bucket"), ("max_batches", 0), ("max_batches", 1025), ("max_batches", 2.5),
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


def test_sync_batch_is_mapped_pooled_named_and_retried() -> None:
    from aps_mirror.errors import AuthError, ConfigError, ReauthorizationRequired

    task = load_dag().get_task("sync_batch")
    kwargs = task.partial_kwargs
    assert task.pool == "autodesk_api"
    assert kwargs["map_index_template"] == "{{ batch_label }}"
    assert kwargs["retries"] == 2 and kwargs["retry_exponential_backoff"] > 1
    policy = kwargs["retry_policy"]
    for exc in (ConfigError("x"), AuthError("x"), ReauthorizationRequired("x")):
        assert policy.evaluate(exc, 1, 3).action.value == "fail"
    assert policy.evaluate(ConnectionError("x"), 1, 3).action.value == "default"


def _result(name: str, **counts: int) -> dict:
    return {"project": name, "hub_id": "h", "project_id": name, "files_listed": 2, "files_copied": 1,
            "files_skipped": 1, "bytes_copied": 10, "api_calls": {"hubs": 1}, **counts}


def test_a_run_adds_up_the_scan_the_batches_and_the_retired() -> None:
    from aps_mirror.airflow_provider.mirror import add_up_run

    unchanged = {"project": "c", "hub_id": "h", "project_id": "c", "files_skipped": 5, "api_calls": {"folders": 1}}
    retired = {"project": "gone (no longer in Autodesk)", "hub_id": "h", "project_id": "g", "files_deleted": 4}
    summary, failure = add_up_run(3, [unchanged], [_result("a"), _result("b")], [retired])
    assert failure is None
    assert summary.projects == 4 and summary.files_copied == 2 and summary.bytes_copied == 20
    assert summary.files_skipped == 7 and summary.files_deleted == 4
    assert summary.api_calls == {"folders": 1, "hubs": 2}


def test_a_run_fails_when_a_project_did_not_finish() -> None:
    from aps_mirror.airflow_provider.mirror import add_up_run

    assert add_up_run(2, [], [_result("a")], [])[1] == \
        "1 of 2 project sync(s) did not finish and 0 finished with errors; see the sync_batch logs."
    assert "1 of 2 project sync(s) did not finish" in add_up_run(2, [_result("a")], [], [])[1]
    assert "1 finished with errors" in add_up_run(1, [], [_result("a", files_failed=1)], [])[1]
    scan_failed = {"project": "a", "hub_id": "h", "project_id": "a", "errors": ["rollup: 500"],
                   "listing_complete": False}
    assert "0 of 1 project sync(s) did not finish and 1 finished with errors" in add_up_run(1, [scan_failed], [], [])[1]
    assert add_up_run(None, None, [], [])[1].startswith("plan_work failed")


# -- the plan: what gets mapped ----------------------------------------------------------------
def _projects(count: int) -> list[Any]:
    from aps_mirror.mirror.engine import ProjectRef

    # ACC-like ids and names, as long as real ones
    return [ProjectRef(hub_id="b.8ed877ab-245c-4194-b732-9f24304c86a5", hub_name="Northwind Construction",
                       project_id=f"b.cef3839d-9a7f-42af-9ca6-{i:012d}", project_name=f"Riverside Tower {i:04d}",
                       hub_segment="Northwind Construction", project_segment=f"Riverside Tower {i:04d}",
                       root_folder_id=f"urn:adsk.wipprod:fs.folder:co.{i:022d}",
                       hub_type="hubs:autodesk.bim360:Account") for i in range(count)]


def _scans(projects: list[Any], dirty: dict[int, str]) -> list[Any]:
    from aps_mirror.mirror.engine import ProjectResult

    return [ProjectResult(project=p.label, hub_id=p.hub_id, project_id=p.project_id, files_skipped=1234,
                          api_calls={"folders": 1}, needs_walk=dirty.get(i)) for i, p in enumerate(projects)]


def test_a_quiet_night_maps_no_batch_and_keeps_every_result_compactly() -> None:
    import json

    from aps_mirror.airflow_provider.mirror import results_of, work_plan

    projects = _projects(2000)
    plan = work_plan(projects, _scans(projects, {}), 32)
    assert plan["batches"] == [] and plan["projects"] == 2000
    done = results_of(plan["done"])
    assert [r.project_id for r in done] == [p.project_id for p in projects]
    assert {(r.files_skipped, r.needs_walk, r.listing_complete) for r in done} == {(1234, None, True)}
    size = len(json.dumps(plan))
    assert size < 2000 * 300, f"{size} bytes of XCom for a quiet night of 2,000 projects"


def test_projects_that_need_work_are_batched_within_max_batches() -> None:
    from aps_mirror.airflow_provider.mirror import batch_work, results_of, work_plan

    projects = _projects(2000)
    dirty = {i: "changed since the last run" for i in range(0, 2000, 7)}
    dirty.update({i: "new project" for i in range(3, 2000, 97)})
    plan = work_plan(projects, _scans(projects, dirty), 32)
    assert len(plan["batches"]) == 32
    batched = [batch_work(batch) for batch in plan["batches"]]
    ids = [p.project_id for refs, _ in batched for p in refs]
    assert sorted(ids) == sorted(projects[i].project_id for i in dirty)
    assert len(results_of(plan["done"])) == 2000 - len(dirty)
    for refs, scans in batched:  # each project with its own scan: the reason and the calls
        assert [s.project_id for s in scans] == [p.project_id for p in refs]
        assert all(s.needs_walk == dirty[projects.index(p)] and s.api_calls == {"folders": 1}
                   for p, s in zip(refs, scans))
    loads = [sum(10 if s.needs_walk == "new project" else 1 for s in scans) for _, scans in batched]
    assert max(loads) - min(loads) <= 10, loads  # balanced by weight, not by count
    few = work_plan(projects[:3], _scans(projects[:3], {0: "new project", 2: "new project"}), 32)
    assert [[item["project"]["project_id"] for item in b] for b in few["batches"]] == \
        [[projects[0].project_id], [projects[2].project_id]]  # one project each while they are few


def test_batch_names_and_time_budgets() -> None:
    from datetime import timedelta

    from aps_mirror.airflow_provider.mirror import batch_budget, batch_label

    projects = _projects(13)
    assert batch_label(projects[:1]) == "Northwind Construction / Riverside Tower 0000"
    assert batch_label(projects) == "Riverside Tower 0000 +12 more (13 projects)"
    assert batch_budget(["changed since the last run"], 4) == timedelta(hours=2)  # the floor
    assert batch_budget(["changed since the last run"] * 12, 4) == timedelta(hours=6)
    assert batch_budget(["new project"] * 8, 4) == timedelta(hours=40)


@pytest.mark.parametrize("value", [0, 1025, "32", True, None, 2.5])
def test_max_batches_is_checked_with_one_line(value: object) -> None:
    from aps_mirror.airflow_provider.mirror import parse_max_batches
    from aps_mirror.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^max_batches .* is not accepted: use a whole number from 1 to 1024\.$"):
        parse_max_batches(value)
    assert parse_max_batches(1) == 1 and parse_max_batches(1024) == 1024


# -- watching: the deadline and the notifier ---------------------------------------------------
def test_the_nightly_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineReference

    monkeypatch.delenv("APS_MIRROR_DEADLINE", raising=False)
    (deadline,) = load_dag().deadline
    assert deadline.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert deadline.interval == timedelta(hours=6)
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "aps_mirror.airflow_provider.notifiers.MirrorAlertNotifier"
    monkeypatch.setenv("APS_MIRROR_DEADLINE", "07:30")
    assert load_dag().deadline[0].interval == timedelta(hours=7, minutes=30)
    monkeypatch.setenv("APS_MIRROR_DEADLINE", "off")
    assert not load_dag().deadline


@pytest.mark.parametrize("value", ["24:00", "6", "00:00", "6h", "noon"])
def test_a_bad_deadline_is_one_line(value: str) -> None:
    from aps_mirror.airflow_provider.notifiers import deadline_after_start
    from aps_mirror.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^APS_MIRROR_DEADLINE .* is not accepted: .*HH:MM"):
        deadline_after_start(value)


def test_the_notifier_writes_one_alert_line_sync_and_in_the_triggerer(caplog: pytest.LogCaptureFixture,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from aps_mirror.airflow_provider.notifiers import MirrorAlertNotifier

    from airflow.triggers.callback import CallbackTrigger

    monkeypatch.delenv("APS_MIRROR_DEADLINE", raising=False)
    dag = load_dag()  # before capturing: loading sets Airflow's logging up
    assert isinstance(dag.on_failure_callback, MirrorAlertNotifier)
    caplog.set_level("WARNING", logger="aps_mirror.alerts")
    MirrorAlertNotifier()({"dag_run": SimpleNamespace(run_id="scheduled__2026-05-01")})
    # As the triggerer runs a missed deadline's callback: Airflow's CallbackTrigger, the path and kwargs.
    (deadline,) = dag.deadline
    context = {"dag_run": {"run_id": "scheduled__2026-05-02"}, "deadline": {"deadline_time": "06:00Z"}}
    trigger = CallbackTrigger(deadline.callback.path, {**deadline.callback.kwargs, "context": context})

    async def missed() -> list:
        return [event.payload async for event in trigger.run()]

    assert [e["state"] for e in asyncio.run(missed())] == ["running", "success"]
    lines = [r.getMessage() for r in caplog.records if r.name == "aps_mirror.alerts"]
    assert lines[0].startswith("aps_mirror alert: aps_mirror run scheduled__2026-05-01 failed")
    assert lines[1].startswith("aps_mirror alert: aps_mirror run scheduled__2026-05-02 is not done by "
                               "its deadline 06:00Z")
    assert len(lines) == 2


def test_the_example_digest_dag_runs_on_the_catalog_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("APS_MIRROR_BUCKET", "acme-docs")
    bag = DagBag(dag_folder=str(REPO / "dags" / "aps_mirror_catalog_digest.py"))
    assert bag.import_errors == {}
    dag = bag.dags["aps_mirror_catalog_digest"]
    condition = dag.timetable.asset_condition  # both tables: one publish updates both
    assert type(condition).__name__ == "AssetAll"
    assert {(a.name, a.uri) for a in condition.objects} == {
        ("aps_mirror_catalog_files", "s3://acme-docs/autodesk/_aps_mirror/catalog/files"),
        ("aps_mirror_catalog_events", "s3://acme-docs/autodesk/_aps_mirror/catalog/events")}
    mirror_assets = {(a.name, a.uri) for a in load_dag().get_task("publish_catalog_tables").outlets}
    assert {(a.name, a.uri) for a in condition.objects} <= mirror_assets


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
    for name, value in (("max_delete", "nan%"), ("workers", 0), ("prefix", "../x"), ("max_batches", 0)):
        with pytest.raises(ConfigError, match=f"^{name} .* is not accepted"):
            dag.get_task("plan_work").python_callable({**params, name: value})


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
