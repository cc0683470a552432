"""
### aps_mirror: every night, copy what changed in Autodesk cloud documents into S3

1. **list_projects** asks Autodesk Platform Services (APS) for every project the
   `autodesk` connection can see, keeping those the hub and project filters select.
2. **sync_project** runs once per project (mapped), copying new and changed files to
   `s3://<bucket>/<prefix>/...` and committing that project's manifest. It runs in the
   `autodesk_api` pool, which bounds the parallel load on Autodesk's rate limits.
3. **retire_removed_projects** applies the delete policy to mirrored projects Autodesk no
   longer lists (only after a clean run).
4. **publish_catalog_tables** folds the run into the Parquet catalog next to the mirror
   (`_aps_mirror/catalog/`: files, versions, folders, projects, runs, events) and updates one
   asset per table, so downstream DAGs can schedule on them. It runs even when projects failed:
   the failures are in the catalog too. A dry run skips it (the catalog stays as it was).
5. **summarize** adds the projects up, logs the totals, and updates the `aps_mirror` asset
   with the counts. It fails the run if any project failed.

Setup, once: `airflow pools set autodesk_api 4 "APS API concurrency"` (without the pool,
`sync_project` never gets scheduled), an `autodesk` connection (`autodesk_default`) and an
`aws` connection (`aws_default`; extra `endpoint_url` for an S3-compatible store).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task
from aps_mirror.airflow_provider.assets import catalog_assets, default_location, mirror_asset
from aps_mirror.airflow_provider.mirror import FAIL_FAST_ON_SETUP_ERRORS, mirror_engine, publish_catalog
from aps_mirror.options import dag_params

log = logging.getLogger(__name__)

BUCKET, PREFIX = default_location()
MIRROR = mirror_asset()
CATALOG = catalog_assets()
API_POOL = "autodesk_api"


@dag(
    dag_id="aps_mirror",
    description="Mirror Autodesk (APS) Data Management documents into S3",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["autodesk", "s3", "aps-mirror"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "retry_policy": FAIL_FAST_ON_SETUP_ERRORS,
    },
    params={
        # Every sync option, declared once in aps_mirror.options (also the CLI's flags).
        **{name: Param(**spec) for name, spec in dag_params(bucket=BUCKET, prefix=PREFIX).items()},
        "autodesk_conn_id": Param("autodesk_default", type="string",
                                  description="The `autodesk` connection (APS app and account)."),
        "aws_conn_id": Param("aws_default", type="string", description="The `aws` connection for S3."),
    },
)
def aps_mirror() -> None:
    @task
    def list_projects(params: dict[str, Any], run_id: str | None = None) -> list[dict[str, str]]:
        """The projects to mirror, as plain dicts (ids, names and key segments)."""
        engine = mirror_engine(params, run_id=run_id)  # the run id: the tasks' shared lease
        with engine.locked(engine.config.lock_wait_seconds, break_lock=engine.config.break_lock):
            refs = engine.list_projects()
        log.info("%d project(s) to mirror: %s", len(refs), ", ".join(r.label for r in refs))
        return [ref.to_dict() for ref in refs]

    @task(pool=API_POOL, map_index_template="{{ project_label }}")
    def sync_project(project: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
        """Copy what changed in one project; return its counts."""
        from aps_mirror.mirror.engine import ProjectRef

        ref = ProjectRef.from_dict(project)
        get_current_context()["project_label"] = ref.label  # type: ignore[typeddict-unknown-key]
        engine = mirror_engine(params, run_id=get_current_context()["run_id"])
        with engine.locked(engine.config.lock_wait_seconds):  # shared by this DAG run's tasks
            return engine.sync_project(ref).to_dict()

    @task(retries=0)
    def retire_removed_projects(projects: list[dict[str, str]], results: Any,
                                params: dict[str, Any]) -> list[dict[str, Any]]:
        """Projects mirrored before but gone from Autodesk get the delete policy (and its guards)."""
        from aps_mirror.mirror.engine import ProjectRef, ProjectResult

        # Runs when every sync task succeeded (default trigger rule); the engine retires only
        # when every project's result is clean too (the CLI's rule, in one place).
        engine = mirror_engine(params, run_id=get_current_context()["run_id"])
        with engine.locked(engine.config.lock_wait_seconds):
            retired = engine.retire_missing_projects([ProjectRef.from_dict(p) for p in projects],
                                                     [ProjectResult.from_dict(r) if r else None for r in results[:]])
        return [r.to_dict() for r in retired]

    @task(outlets=list(CATALOG.values()), trigger_rule=TriggerRule.ALL_DONE)
    def publish_catalog_tables(results: Any, retired: Any, params: dict[str, Any],
                               outlet_events: Any = None) -> dict[str, int]:
        """Fold this run's records into the catalog, rebuild its tables, and tell their assets."""
        from aps_mirror.mirror.engine import ProjectResult, RunSummary

        from airflow.sdk.exceptions import AirflowSkipException

        if params["dry_run"]:  # skipped, so no asset event wakes downstream DAGs for nothing
            raise AirflowSkipException("dry run: the catalog is left as it is")
        rows = publish_catalog(params)
        done = [ProjectResult.from_dict(r) for r in [*(results[:] if results is not None else []),
                                                       *(retired or [])] if r]
        counts = RunSummary.combine(done).to_dict()
        for key in ("planned", "errors", "api_calls"):
            counts.pop(key, None)
        where = {"bucket": params["bucket"], "prefix": params["prefix"], "aws_conn_id": params["aws_conn_id"],
                 "run_id": get_current_context()["run_id"]}
        for table, asset in CATALOG.items():
            outlet_events[asset].extra = {**where, "table": table, "rows": rows.get(table), **counts}
        log.info("catalog published: %s", ", ".join(f"{n} {t}" for t, n in rows.items()))
        return rows

    @task(outlets=[MIRROR], trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def summarize(projects: list[dict[str, str]] | None, results: Any, retired: list[dict[str, Any]] | None,
                  params: dict[str, Any], outlet_events: Any = None) -> dict[str, Any]:
        """Add the projects up, log it, record it on the asset; fail if any project failed."""
        from aps_mirror.mirror.engine import ProjectResult, RunSummary

        if projects is None:
            raise RuntimeError("list_projects failed, so nothing was mirrored; see its log.")
        done = [ProjectResult.from_dict(r) for r in results[:] if r]  # one fetch for all of them
        summary = RunSummary.combine(done + [ProjectResult.from_dict(r) for r in retired or []])
        log.info("aps_mirror %s:\n%s", "dry run" if params["dry_run"] else "run", summary.format_text())
        unfinished = len(projects) - len(done)
        if unfinished or summary.projects_failed:
            raise RuntimeError(
                f"{unfinished} of {len(projects)} project sync(s) did not finish and "
                f"{summary.projects_failed} finished with errors; see the sync_project logs."
            )
        counts = summary.to_dict()
        counts.pop("planned", None)  # the dry-run plan can be long; the asset gets numbers only
        outlet_events[MIRROR].extra = {"bucket": params["bucket"], "prefix": params["prefix"],
                                       "aws_conn_id": params["aws_conn_id"], **counts}
        return counts

    projects = list_projects()
    results = sync_project.expand(project=projects)
    retired = retire_removed_projects(projects, results)
    published = publish_catalog_tables(results, retired)
    summarize(projects, results, retired) << published


aps_mirror()
