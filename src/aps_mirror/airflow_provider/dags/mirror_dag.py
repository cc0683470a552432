"""
### {dag_id}: every night, copy what changed in Autodesk cloud documents into S3

1. **plan_work** lists every project the `autodesk` connection can see (kept by the hub and
   project filters) and scans them, about one API call each: an unchanged project's night is
   done there (its run record goes to the catalog). The projects that need a walk (changed, new,
   full walk due, last night's failures) are grouped into at most `max_batches` balanced batches.
2. **sync_batch** runs once per batch (mapped; named after its projects), syncing its projects
   `project_workers` at a time: new and changed files to `s3://<bucket>/<prefix>/...`, each
   project's manifest committed. It runs in the `{pool}` pool, which bounds the parallel
   load on Autodesk's rate limits. A quiet night maps none.
3. **retire_removed_projects** applies the delete policy to mirrored projects Autodesk no
   longer lists (only after a clean run).
4. **publish_catalog_tables** folds the run into the Parquet catalog next to the mirror
   (`_aps_mirror/catalog/`: files, versions, folders, projects, runs, events) and updates one
   asset per table (`{dag_id}_catalog_files`, ...), so downstream DAGs can schedule on them.
   It runs even when projects failed: the failures are in the catalog too. A dry run skips it.
5. **summarize** adds the projects up, logs the totals, and updates the `{dag_id}` asset
   with the counts. It fails the run if any project failed.

A failed run logs an `aps_mirror alert` line (MirrorAlertNotifier), and so does a scheduled run
not done by its deadline ({deadline}; a DeadlineAlert, run by the triggerer).

Setup, once: the pool (`airflow pools set {pool} 4 "APS API concurrency"`; plan_work fails
with that advice when it is missing), an `autodesk` connection (`{autodesk_conn_id}`) and an
`aws` connection (`{aws_conn_id}`; extra `endpoint_url` for an S3-compatible store).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from airflow.sdk import DAG, Param, TriggerRule, dag, get_current_context, task
from aps_mirror.airflow_provider.assets import catalog_assets, mirror_asset
from aps_mirror.airflow_provider.compat import retry_exponential_backoff, retry_policy_args
from aps_mirror.airflow_provider.dags.arguments import caller_file, check_dag_id, check_name
from aps_mirror.airflow_provider.mirror import (
    FAIL_FAST_ON_SETUP_ERRORS,
    ensure_live_hooks,
    MAX_BATCHES_DEFAULT,
    MAX_BATCHES_LIMIT,
    add_up_run,
    batch_budget,
    batch_label,
    batch_work,
    compact_result,
    mirror_engine,
    parse_max_batches,
    publish_catalog,
    results_of,
    work_plan,
)
from aps_mirror.airflow_provider.notifiers import DEADLINE_ENV, MirrorAlertNotifier, nightly_deadline
from aps_mirror.airflow_provider.pools import require_pool
from aps_mirror.errors import ConfigError
from aps_mirror.options import SYNC_OPTIONS, dag_params

log = logging.getLogger(__name__)

# The factory's options: every sync option's DAG param, and the DAG's own.
_DAG_OPTIONS = ("max_batches",)
OPTION_NAMES = tuple(o.param_name for o in SYNC_OPTIONS if o.name not in ("bucket", "prefix")) + _DAG_OPTIONS


def _planned(key: str) -> Any:
    """plan_work's results beside its batches (`done`, `projects`); None when it failed."""
    return get_current_context()["ti"].xcom_pull(task_ids="plan_work", key=key)


def _flat(batch_results: Any) -> list[dict[str, Any]]:
    """The mapped batches' results as one list (one fetch for all of them); a batch that did
    not finish has none."""
    return [r for batch in (batch_results[:] if batch_results is not None else []) if batch for r in batch]


def checked_options(bucket: str, prefix: str, options: dict[str, Any], *,
                    allowed: Sequence[str] = OPTION_NAMES, factory: str = "build_mirror_dag") -> dict[str, Any]:
    """The params' defaults from a factory's arguments, each checked as a run would check it."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{factory}: unknown option(s) {', '.join(unknown)}; "
                          f"the options are {', '.join(allowed)}.")
    values = {"bucket": bucket, "prefix": prefix, **options}
    for option in SYNC_OPTIONS:
        raw = values.get(option.param_name)
        if option.kind == "array" and raw is not None:  # one glob is a list of one
            values[option.param_name] = [raw] if isinstance(raw, str) else list(raw)
        option.value(values, cli=False)
    if "max_batches" in allowed:
        parse_max_batches(options.get("max_batches", MAX_BATCHES_DEFAULT))
    return values


def build_mirror_dag(
    dag_id: str,
    *,
    bucket: str,
    prefix: str,
    autodesk_conn_id: str = "autodesk_default",
    aws_conn_id: str = "aws_default",
    schedule: Any = "@daily",
    pool: str = "autodesk_api",
    deadline: str | None = None,
    webhook_callback_url: str | None = None,
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags: Sequence[str] = (),
    **options: Any,
) -> DAG:
    """A mirror of one Autodesk account (or a selection of it) into `s3://bucket/prefix`.

    `options` are the DAG's params by name (hub_filter, project_filter, top_folders, versions,
    delete_policy, max_delete, workers, max_batches, ...): the factory's values become their
    defaults, which a manual run may still override in the trigger form. `deadline` is how long
    after its scheduled start a run must be done, as HH:MM (`off` for none; default: the
    APS_MIRROR_DEADLINE variable, else 06:00). `pool` bounds the parallel load on Autodesk's
    rate limits; mirrors of one account should share it. `webhook_callback_url` (this
    Airflow's `.../aps-mirror/webhooks/dm`, reachable by Autodesk) adds `ensure_webhooks`, which
    keeps Autodesk's hooks on the selected projects for the mirror's live DAG (`build_live_dag`).
    """
    check_dag_id(dag_id)
    check_name("autodesk_conn_id", autodesk_conn_id)
    check_name("aws_conn_id", aws_conn_id)
    check_name("pool", pool)
    defaults = checked_options(bucket, prefix, options)
    if webhook_callback_url is not None:
        from aps_mirror.mirror.webhooks import check_callback_url

        check_callback_url(webhook_callback_url, label="webhook_callback_url")
    alert_deadline = nightly_deadline(deadline, mirror=dag_id)
    mirror = mirror_asset(dag_id, bucket, prefix)
    catalog = catalog_assets(dag_id, bucket, prefix)
    doc = __doc__.format(dag_id=dag_id, pool=pool, autodesk_conn_id=autodesk_conn_id, aws_conn_id=aws_conn_id,
                         deadline=f"{deadline or 'APS_MIRROR_DEADLINE'}" if alert_deadline else "none set")

    @dag(
        dag_id=dag_id,
        description="Mirror Autodesk (APS) Data Management documents into S3",
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        doc_md=doc,
        tags=["autodesk", "s3", "aps-mirror", *tags],
        default_args={
            "retries": 2,
            "retry_delay": timedelta(minutes=2),
            "retry_exponential_backoff": retry_exponential_backoff(2.0),
            "max_retry_delay": timedelta(minutes=30),
            **retry_policy_args(FAIL_FAST_ON_SETUP_ERRORS),  # Airflow 3.3+; plain retries before
        },
        on_failure_callback=MirrorAlertNotifier(mirror=dag_id),
        deadline=alert_deadline,
        params={
            # Every sync option, declared once in aps_mirror.options (also the CLI's flags).
            **{name: Param(**spec) for name, spec in dag_params(**defaults).items()},
            "max_batches": Param(defaults.get("max_batches", MAX_BATCHES_DEFAULT), type="integer", minimum=1,
                                 maximum=MAX_BATCHES_LIMIT,
                                 description="Most sync_batch tasks a run maps (1 to 1024); the projects "
                                             "that need work are grouped into that many balanced batches."),
            "autodesk_conn_id": Param(autodesk_conn_id, type="string",
                                      description="The `autodesk` connection (APS app and account)."),
            "aws_conn_id": Param(aws_conn_id, type="string", description="The `aws` connection for S3."),
        },
    )
    def mirror_pipeline() -> None:
        # Timeouts: listing and scanning cost about one call per project; retiring reads every
        # manifest once. sync_batch gets a budget from its batch instead (see batch_budget).
        @task(execution_timeout=timedelta(hours=2))
        def plan_work(params: dict[str, Any], run_id: str | None = None) -> list[list[dict[str, Any]]]:
            """List and scan every project; return the batches of those that need a walk (what
            sync_batch maps over), with the others' results and the project count beside them."""
            max_batches = parse_max_batches(params.get("max_batches", MAX_BATCHES_DEFAULT))
            engine = mirror_engine(params, run_id=run_id)  # the run id: the tasks' shared lease
            require_pool(pool)  # sync_batch would wait for a missing pool forever
            with engine.locked(engine.config.lock_wait_seconds, break_lock=engine.config.break_lock):
                projects = engine.list_projects()
                scanned = engine.scan_projects(projects)
            plan = work_plan(projects, scanned, max_batches)
            log.info("%d project(s): %d need a walk, in %d batch(es); %d done by the scan",
                     len(projects), sum(map(len, plan["batches"])), len(plan["batches"]), len(plan["done"]))
            ti = get_current_context()["ti"]
            ti.xcom_push(key="done", value=plan["done"])
            ti.xcom_push(key="projects", value=plan["projects"])
            return plan["batches"]  # Airflow maps over a task's return value only

        @task(pool=pool, map_index_template="{{ batch_label }}")
        def sync_batch(batch: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
            """Sync a batch's projects, `project_workers` at a time; their results, scan calls included."""
            # Airflow's own task timeout (SIGALRM), sized here because only the batch knows its work.
            from airflow.sdk.execution_time.timeout import timeout

            projects, scans = batch_work(batch)
            context = get_current_context()
            context["batch_label"] = batch_label(projects)  # type: ignore[typeddict-unknown-key]
            engine = mirror_engine(params, run_id=context["run_id"])
            budget = batch_budget([s.needs_walk for s in scans], engine.config.project_workers)
            log.info("%d project(s), %s at most: %s", len(projects), budget, ", ".join(p.label for p in projects))
            with engine.locked(engine.config.lock_wait_seconds), timeout(budget.total_seconds()):
                synced = engine.sync_projects(projects)
            return [compact_result(result.after_scan(scan)) for result, scan in zip(synced, scans)]

        @task(retries=0, trigger_rule=TriggerRule.NONE_FAILED, execution_timeout=timedelta(hours=3))
        def retire_removed_projects(done: list[dict[str, Any]], batch_results: Any,
                                    params: dict[str, Any]) -> list[dict[str, Any]]:
            """Projects mirrored before but gone from Autodesk get the delete policy (and its guards)."""
            # Runs when no sync task failed (none mapped on a quiet night); the engine retires only
            # when every listed project's result is clean too (the CLI's rule, in one place). The
            # list is read again (a few calls per hub) rather than carried through XCom; a project
            # listed now but not planned has no result, so nothing is retired then.
            engine = mirror_engine(params, run_id=get_current_context()["run_id"])
            with engine.locked(engine.config.lock_wait_seconds):
                listed = engine.list_projects()
                ids = {p.project_id for p in listed}
                results = [r for r in results_of([*done, *_flat(batch_results)]) if r.project_id in ids]
                retired = engine.retire_missing_projects(listed, results)
            return [r.to_dict() for r in retired]

        @task(outlets=list(catalog.values()), trigger_rule=TriggerRule.ALL_DONE,
              execution_timeout=timedelta(hours=1))
        def publish_catalog_tables(batch_results: Any, retired: Any, params: dict[str, Any],
                                   outlet_events: Any = None) -> dict[str, int]:
            """Fold this run's records into the catalog, rebuild its tables, and tell their assets."""
            from aps_mirror.airflow_provider.compat import AirflowSkipException

            if params["dry_run"]:  # skipped, so no asset event wakes downstream DAGs for nothing
                raise AirflowSkipException("dry run: the catalog is left as it is")
            rows = publish_catalog(params)
            summary, _ = add_up_run(_planned("projects"), _planned("done"), _flat(batch_results), retired or [])
            counts = summary.to_dict()
            for key in ("planned", "errors", "api_calls"):
                counts.pop(key, None)
            where = {"bucket": params["bucket"], "prefix": params["prefix"], "aws_conn_id": params["aws_conn_id"],
                     "run_id": get_current_context()["run_id"]}
            for table, asset in catalog.items():
                outlet_events[asset].extra = {**where, "table": table, "rows": rows.get(table), **counts}
            log.info("catalog published: %s", ", ".join(f"{n} {t}" for t, n in rows.items()))
            return rows

        @task(outlets=[mirror], trigger_rule=TriggerRule.ALL_DONE, retries=0,
              execution_timeout=timedelta(minutes=15))
        def summarize(batch_results: Any, retired: list[dict[str, Any]] | None, params: dict[str, Any],
                      outlet_events: Any = None) -> dict[str, Any]:
            """Add the projects up, log it, record it on the asset; fail if any project failed."""
            summary, failure = add_up_run(_planned("projects"), _planned("done"), _flat(batch_results),
                                          retired or [])
            log.info("%s %s:\n%s", dag_id, "dry run" if params["dry_run"] else "run", summary.format_text())
            if failure:
                raise RuntimeError(failure)
            counts = summary.to_dict()
            counts.pop("planned", None)  # the dry-run plan can be long; the asset gets numbers only
            outlet_events[mirror].extra = {"bucket": params["bucket"], "prefix": params["prefix"],
                                           "aws_conn_id": params["aws_conn_id"], **counts}
            return counts

        if webhook_callback_url is not None:
            @task(execution_timeout=timedelta(hours=1))
            def ensure_webhooks(params: dict[str, Any]) -> dict[str, Any]:
                """Autodesk's hooks on every selected project, for the live DAG; repaired if needed."""
                return ensure_live_hooks(params, mirror=dag_id, callback_url=webhook_callback_url)

            ensure_webhooks()  # beside the sync: a failure here alerts, but never holds the night back

        plan = plan_work()
        results = sync_batch.expand(batch=plan)
        retired = retire_removed_projects(plan["done"], results)
        published = publish_catalog_tables(results, retired)
        summary = summarize(results, retired)
        plan >> [published, summary]  # both read the plan's other results themselves: they run after a failure too
        published >> summary

    built = mirror_pipeline()
    built.fileloc = caller_file() or built.fileloc
    return built


__all__ = ["DEADLINE_ENV", "OPTION_NAMES", "build_mirror_dag", "checked_options"]
