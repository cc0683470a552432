"""
### {dag_id}: the `{mirror}` mirror, live: Autodesk's change events sync what they name

Autodesk calls `POST /aps-mirror/webhooks/dm` on this Airflow's API server for every change in a
mirrored project (hooks made by `aps-mirror webhooks ensure`, or the mirror DAG's
`ensure_webhooks` task); each accepted delivery is an event of the `{live}` asset, which
schedules this DAG.

1. **affected_projects** reads the run's events (every event since the last run: a burst of
   changes is one run, or a few, since one run at a time is allowed) and keeps the projects
   they name, once each.
2. **sync_affected** syncs those projects with the engine, exactly as the nightly run does
   (rollups keep it cheap: only folders that changed are listed), sharing the mirror's lease,
   manifests, rate budget and catalog with the nightly DAG: whichever comes second waits.

What an event says is only a hint: the sync reads Autodesk's current state, so duplicated,
reordered or stale events are harmless, and a lost one is caught by the nightly scan.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, dag, get_current_context, task
from aps_mirror.airflow_provider.assets import live_asset
from aps_mirror.airflow_provider.compat import retry_policy_args
from aps_mirror.airflow_provider.dags.arguments import caller_file, check_dag_id, check_name
from aps_mirror.airflow_provider.dags.mirror_dag import OPTION_NAMES, checked_options
from aps_mirror.airflow_provider.mirror import FAIL_FAST_ON_SETUP_ERRORS, compact_result, mirror_engine
from aps_mirror.airflow_provider.notifiers import MirrorAlertNotifier
from aps_mirror.options import dag_params

log = logging.getLogger(__name__)

LIVE_OPTIONS = tuple(name for name in OPTION_NAMES if name != "max_batches")


def projects_named(events: Any, live_name: str) -> list[str]:
    """The project ids the triggering events of the live asset name, each once, in order."""
    seen: dict[str, None] = {}
    for asset in events or {}:
        if getattr(asset, "name", None) != live_name:
            continue
        for event in events[asset]:
            project = (event.extra or {}).get("project_id")
            if project:
                seen.setdefault(project.removeprefix("b."), None)
    return list(seen)


def build_live_dag(
    mirror: str,
    *,
    bucket: str,
    prefix: str,
    dag_id: str | None = None,
    autodesk_conn_id: str = "autodesk_default",
    aws_conn_id: str = "aws_default",
    pool: str = "autodesk_api",
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    **options: Any,
) -> DAG:
    """The live companion of the mirror DAG `mirror` (same bucket, prefix, connections and
    options): scheduled on the mirror's live asset, it syncs the projects Autodesk's events name."""
    dag_id = check_dag_id(dag_id or f"{mirror}_live")
    check_dag_id(mirror)
    check_name("autodesk_conn_id", autodesk_conn_id)
    check_name("aws_conn_id", aws_conn_id)
    check_name("pool", pool)
    defaults = checked_options(bucket, prefix, options, allowed=LIVE_OPTIONS, factory="build_live_dag")
    live = live_asset(mirror, bucket, prefix)

    @dag(
        dag_id=dag_id,
        description=f"Sync what Autodesk's change events name, for the {mirror} mirror",
        schedule=[live],
        start_date=start_date,
        catchup=False,
        max_active_runs=1,  # events arriving meanwhile wait for the next run: a burst coalesces
        doc_md=__doc__.format(dag_id=dag_id, mirror=mirror, live=live.name),
        tags=["autodesk", "s3", "aps-mirror", "live"],
        default_args={"retries": 2, "retry_delay": timedelta(minutes=1),
                      **retry_policy_args(FAIL_FAST_ON_SETUP_ERRORS)},
        on_failure_callback=MirrorAlertNotifier(mirror=dag_id),
        params={
            **{name: Param(**spec) for name, spec in dag_params(**defaults).items()},
            "autodesk_conn_id": Param(autodesk_conn_id, type="string",
                                      description="The `autodesk` connection (APS app and account)."),
            "aws_conn_id": Param(aws_conn_id, type="string", description="The `aws` connection for S3."),
        },
    )
    def live_pipeline() -> None:
        @task(execution_timeout=timedelta(minutes=10))
        def affected_projects(triggering_asset_events: Any = None) -> list[str]:
            """The projects this run's events name (a manual run names none)."""
            projects = projects_named(triggering_asset_events, live.name)
            log.info("%d project(s) named by this run's events: %s", len(projects), ", ".join(projects) or "none")
            return projects

        @task(pool=pool, execution_timeout=timedelta(hours=6))
        def sync_affected(project_ids: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
            """Sync the named projects that the mirror selects (others are not the mirror's)."""
            if not project_ids:
                return []
            engine = mirror_engine(params, run_id=get_current_context()["run_id"])
            wanted = set(project_ids)
            with engine.locked(engine.config.lock_wait_seconds):
                projects = [p for p in engine.list_projects() if p.project_id.removeprefix("b.") in wanted]
                results = engine.sync_projects(projects)
            for result in results:
                log.info("%s: %d copied, %d renamed, %d deleted, %d failed", result.project,
                         result.files_copied, result.files_renamed, result.files_deleted, result.files_failed)
            if any(r.errors or r.files_failed for r in results):
                raise RuntimeError("some projects did not sync cleanly; see above (the nightly run retries them)")
            return [compact_result(r) for r in results]

        sync_affected(affected_projects())

    built = live_pipeline()
    built.fileloc = caller_file() or built.fileloc
    return built
