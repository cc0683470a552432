"""
### {dag_id}: copy files from the mirror at `s3://{bucket}/{prefix}` back into Autodesk Docs

Triggered by hand, with params (the trigger form, or `airflow dags trigger {dag_id} --conf ...`):
`project` (a glob on project names or ids, required), `path` (an Autodesk path, top folder
first: one file, a folder subtree; empty: the whole project), `as_of` (ISO 8601: each file's
version current then; empty: the latest mirrored state), and where: into a new folder
(default `Restored <date>` under each file's top folder), `into` (a folder path), or
`in_place` (as new versions of the original items; a deleted item comes back). Nothing is
ever overwritten; a rerun skips what is already restored.

1. **plan_restore** lists what would be restored, and where (nothing is written), and checks
   that the connection may write. With `dry_run` the run stops there.
2. **restore_files** restores the files, `workers` at a time, in the `{pool}` pool and under
   the connection's rate budget (shared with the mirror), streaming from S3. Its summary
   (`files_restored`, `bytes_restored`, `files_failed`, `files_skipped`, `not_restorable`)
   goes to XCom; it fails the run when a file failed or cannot be restored as of `as_of`.

Setup: an `autodesk` connection (`{autodesk_conn_id}`) whose scopes include `data:write` and
`data:create` (a user connection: authorized granting them), an `aws` connection
(`{aws_conn_id}`), and the pool (`airflow pools set {pool} 4 "APS API concurrency"`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from airflow.sdk import DAG, Param, dag, get_current_context, task
from aps_mirror.airflow_provider.dags.arguments import caller_file, check_dag_id, check_name
from aps_mirror.airflow_provider.mirror import FAIL_FAST_ON_SETUP_ERRORS
from aps_mirror.airflow_provider.notifiers import MirrorAlertNotifier
from aps_mirror.errors import ConfigError
from aps_mirror.mirror.restore_request import (DEFAULT_WORKERS, PARAM_NAMES, RestoreRequest, parse_restore_workers,
                                               restore_request)
from aps_mirror.options import MAX_WORKERS, SYNC_OPTIONS

log = logging.getLogger(__name__)

MAX_LISTED = 20  # failed and not-restorable files carried by XCom; the log has them all
MAX_TEXT = 300
_LOCATION = {option.name: option for option in SYNC_OPTIONS if option.name in ("bucket", "prefix")}
FAILED = ("<mirror> run {{ dag_run.run_id }} failed: some files were not restored; restore_files' log "
          "says which and why (a rerun restores what is missing and skips what is there).")


@dataclass(frozen=True)
class RestoreSettings:
    bucket: str
    prefix: str
    autodesk_conn_id: str
    aws_conn_id: str
    workers: int
    request: RestoreRequest | None  # None: the factory's check, before any run names a project


def restore_settings(values: Mapping[str, Any], *, with_request: bool = True) -> RestoreSettings:
    """A run's settings from its params (the CLI's rules, named as the params are), each checked
    with a one-line ConfigError before any connection is used."""
    return RestoreSettings(
        bucket=_LOCATION["bucket"].value(values, cli=False),
        prefix=_LOCATION["prefix"].value(values, cli=False),
        autodesk_conn_id=check_name("autodesk_conn_id", values.get("autodesk_conn_id")),  # type: ignore[arg-type]
        aws_conn_id=check_name("aws_conn_id", values.get("aws_conn_id")),  # type: ignore[arg-type]
        workers=parse_restore_workers(values.get("workers"), "workers"),
        request=restore_request(values, PARAM_NAMES) if with_request else None,
    )


def build_restore_dag(
    dag_id: str = "aps_mirror_restore",
    *,
    bucket: str,
    prefix: str,
    autodesk_conn_id: str = "autodesk_default",
    aws_conn_id: str = "aws_default",
    pool: str = "autodesk_api",
    workers: int = DEFAULT_WORKERS,
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags: Sequence[str] = (),
) -> DAG:
    """Restores from the mirror at `s3://bucket/prefix` into Autodesk, when triggered with params
    (what, as of when, where). `pool` bounds the load on Autodesk: the mirror's pool, so a
    restore and a mirror run share it."""
    check_dag_id(dag_id)
    check_name("pool", pool)
    defaults = restore_settings({"bucket": bucket, "prefix": prefix, "autodesk_conn_id": autodesk_conn_id,
                                 "aws_conn_id": aws_conn_id, "workers": workers}, with_request=False)
    doc = __doc__.format(dag_id=dag_id, bucket=defaults.bucket, prefix=defaults.prefix, pool=pool,
                         autodesk_conn_id=autodesk_conn_id, aws_conn_id=aws_conn_id)
    bucket_option, prefix_option = _LOCATION["bucket"], _LOCATION["prefix"]
    text = {"type": ["null", "string"]}

    @dag(
        dag_id=dag_id,
        description="Restore files from the S3 mirror back into Autodesk Docs (triggered with params)",
        schedule=None,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,  # two restores into one place would race to create its folders
        doc_md=doc,
        tags=["autodesk", "s3", "aps-mirror", "restore", *tags],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=2),
                      **({"retry_policy": FAIL_FAST_ON_SETUP_ERRORS} if FAIL_FAST_ON_SETUP_ERRORS else {})},
        on_failure_callback=MirrorAlertNotifier(message=FAILED, mirror=dag_id),
        params={
            # Required, yet with a default: under `airflow dags test` a param without one breaks the
            # failure callback's context (the run's conf is applied after the task's params are).
            "project": Param(None, type=["null", "string"],
                             description="Required: the project(s) to restore from, a glob on names or ids, "
                                         "case-insensitive (e.g. 'Riverside*')."),
            "path": Param(None, **text, description="Only files under this Autodesk path, top folder first "
                                                    "('Project Files/Design', or one file's path); empty: all."),
            "as_of": Param(None, **text, description="Each file's version current at this time, ISO 8601 (UTC "
                                                     "unless it says otherwise, e.g. 2026-11-28T18:00:00Z); "
                                                     "empty: the latest mirrored state."),
            "into": Param(None, **text, description="Restore under this Autodesk folder (top folder first, "
                                                    "created as needed); empty: 'Restored <date>' under each "
                                                    "file's top folder."),
            "in_place": Param(False, type="boolean", description="Restore as new versions of the original items "
                                                                 "(a deleted item comes back); not with into."),
            "dry_run": Param(False, type="boolean", description="Only list what would be restored."),
            "workers": Param(defaults.workers, type="integer", minimum=1, maximum=MAX_WORKERS,
                             description=f"Files restored at once (1 to {MAX_WORKERS})."),
            "bucket": Param(defaults.bucket, description=bucket_option.help, **bucket_option.schema),
            "prefix": Param(defaults.prefix, description=prefix_option.help, **prefix_option.schema),
            "autodesk_conn_id": Param(autodesk_conn_id, type="string", minLength=1,
                                      description="The `autodesk` connection, with data:write and data:create."),
            "aws_conn_id": Param(aws_conn_id, type="string", minLength=1, description="The `aws` connection for S3."),
        },
    )
    def restore_pipeline() -> None:
        @task(execution_timeout=timedelta(hours=2))
        def plan_restore(params: dict[str, Any]) -> dict[str, Any]:
            """List what would be restored and where; refuse what a restore would be refused."""
            from aps_mirror.airflow_provider.pools import pool_exists

            settings = restore_settings(params)
            assert settings.request is not None
            if pool_exists(pool) is False:  # restore_files would wait for it forever
                raise ConfigError(f"Pool {pool!r} does not exist, so restore_files would never start: create it "
                                  f"with `airflow pools set {pool} 4 \"APS API concurrency\"` (or Admin > Pools), "
                                  "then clear this task.")
            # The plan of a real restore checks the write scopes too (after refusing vaults).
            restorer = _restorer(settings, replace(settings.request, dry_run=True),
                                 check_scopes=not settings.request.dry_run)
            summary = restorer.run()
            for step in summary.restored:
                log.info("would restore %s (v%s, %d bytes) -> %s", step["path"], step["version_number"],
                         step["size"], step["target"])
            log.info("plan: %s", summary.format_text())
            return restore_summary(summary, dry_run=True)

        @task(pool=pool, retries=0, execution_timeout=timedelta(hours=24))
        def restore_files(params: dict[str, Any]) -> dict[str, Any]:
            """Restore the files; the summary to XCom; fail if any was not restored."""
            settings = restore_settings(params)
            assert settings.request is not None
            if settings.request.dry_run:
                _skip("dry run: plan_restore's log lists what would be restored; nothing was written")
            summary = _restorer(settings, settings.request).run()
            for step in summary.restored:
                log.info("restored %s (v%s, %d bytes) -> %s", step["path"], step["version_number"], step["size"],
                         step["target"])
            log.info("%s", summary.format_text())
            result = restore_summary(summary, dry_run=False)
            if summary.files_failed or summary.not_restorable:
                # The summary stays in XCom for the failed task (a rerun's restores the rest).
                get_current_context()["ti"].xcom_push(key="return_value", value=result)
                raise RuntimeError(f"{summary.files_failed} file(s) failed and {len(summary.not_restorable)} "
                                   "cannot be restored as of that time; see this log (a rerun restores what is "
                                   "missing and skips what is there).")
            return result

        plan_restore() >> restore_files()

    built = restore_pipeline()
    built.fileloc = caller_file() or built.fileloc
    return built


def _restorer(settings: RestoreSettings, request: RestoreRequest, *, check_scopes: bool | None = None) -> Any:
    """A Restorer over the run's connections: APS through AutodeskHook (the deployment's shared
    rate budget), S3 through the Amazon provider, sized for the workers."""
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.airflow_provider.mirror import mirror_s3
    from aps_mirror.mirror.restore import Restorer

    client = AutodeskHook(settings.autodesk_conn_id).get_conn()
    s3 = mirror_s3({"aws_conn_id": settings.aws_conn_id}, workers=settings.workers)
    return Restorer(client, s3, settings.bucket, settings.prefix, request, workers=settings.workers,
                    check_scopes=check_scopes)


def restore_summary(summary: Any, *, dry_run: bool) -> dict[str, Any]:
    """The counts, and the first failed and not-restorable files (bounded), as XCom carries them."""
    return {"dry_run": dry_run, "files_restored": summary.files_restored, "bytes_restored": summary.bytes_restored,
            "files_failed": summary.files_failed, "files_skipped": summary.files_skipped,
            "not_restorable": len(summary.not_restorable),
            "failed_files": [{"project": f["project"], "path": f["path"][:MAX_TEXT], "error": f["error"][:MAX_TEXT]}
                             for f in summary.failed[:MAX_LISTED]],
            "not_restorable_files": [{"project": f["project"], "path": f["path"][:MAX_TEXT], "reason": f["reason"]}
                                     for f in summary.not_restorable[:MAX_LISTED]]}


def _skip(reason: str) -> None:
    try:
        from airflow.sdk.exceptions import AirflowSkipException
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import AirflowSkipException
    raise AirflowSkipException(reason)


__all__ = ["build_restore_dag", "restore_settings"]
