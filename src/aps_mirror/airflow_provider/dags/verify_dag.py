"""
### {dag_id}: prove the mirror at `s3://{bucket}/{prefix}`, {when}

1. **verify_mirror** audits the mirror as `aps-mirror verify` does: every object its manifests
   reference is in S3 with the right size and metadata (`deep`: its bytes re-read and their
   SHA-1 checked, all of them or a `sample`), no orphans under the prefix, no stale multipart
   uploads; with an `autodesk_conn_id` ({autodesk}), a full walk of every mirrored project in
   Autodesk finds what the mirror lacks or holds at an older version. The report goes to the
   log and to the catalog's `verifications` table (the dashboard shows it); its counts and the
   first findings go to XCom and to the `{dag_id}` asset (group `aps-mirror-verification`), so
   downstream DAGs can schedule on each verification.
2. **require_clean** fails the run when the mirror is not clean (or something could not be
   checked), so a failed run logs an `aps_mirror alert` line (MirrorAlertNotifier).

Setup: an `aws` connection (`{aws_conn_id}`; extra `endpoint_url` for an S3-compatible store).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from airflow.sdk import DAG, Param, dag, task
from aps_mirror.airflow_provider.assets import verification_asset
from aps_mirror.airflow_provider.dags.arguments import caller_file, check_dag_id, check_name
from aps_mirror.airflow_provider.mirror import FAIL_FAST_ON_SETUP_ERRORS
from aps_mirror.airflow_provider.notifiers import MirrorAlertNotifier
from aps_mirror.errors import ConfigError
from aps_mirror.options import MAX_WORKERS, SYNC_OPTIONS, parse_flag, parse_workers

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8  # objects checked at once, as `aps-mirror verify`
MAX_FINDINGS = 20  # findings carried by XCom (each cut to MAX_TEXT characters); the log and the catalog have all
MAX_TEXT = 300
# `aps-mirror sync`'s bucket and prefix options: one rule for every entry point.
_LOCATION = {option.name: option for option in SYNC_OPTIONS if option.name in ("bucket", "prefix")}
FAILED = ("<mirror> run {{ dag_run.run_id }} failed: the mirror is not clean or could not be verified; "
          "require_clean's log names the faults, verify_mirror's has the whole report.")


def verify_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The verification's settings from the factory's arguments or a run's params, each checked
    (a one-line ConfigError naming the param) before any connection is used."""
    return {
        "bucket": _LOCATION["bucket"].value(values, cli=False),
        "prefix": _LOCATION["prefix"].value(values, cli=False),
        "aws_conn_id": check_name("aws_conn_id", values.get("aws_conn_id")),
        "autodesk_conn_id": check_name("autodesk_conn_id", values.get("autodesk_conn_id") or None, optional=True),
        "deep": parse_flag(values.get("deep", False), "deep"),
        "sample": parse_sample(values.get("sample")),
        "workers": parse_workers(values.get("workers", DEFAULT_WORKERS), "workers"),
    }


def parse_sample(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError(f"sample {raw!r} is not accepted: give a whole number of objects to re-read, 1 or "
                          "more, or leave it empty (deep re-reads them all).")
    return raw


def build_verify_dag(
    dag_id: str = "aps_mirror_verify",
    *,
    bucket: str,
    prefix: str,
    aws_conn_id: str = "aws_default",
    autodesk_conn_id: str | None = None,
    schedule: Any = "@weekly",
    deep: bool = False,
    sample: int | None = None,
    workers: int = DEFAULT_WORKERS,
    pool: str | None = None,
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags: Sequence[str] = (),
) -> DAG:
    """Verifies the mirror at `s3://bucket/prefix` on `schedule`, and fails the run unless it is clean.

    `autodesk_conn_id` also walks every mirrored project in Autodesk (None: S3 only); `deep`
    re-reads every object's bytes (`sample`: that many, at random). `pool` bounds the load on
    Autodesk (the mirror's pool; None: Airflow's default pool). The values are the params'
    defaults, which a manual run may override in the trigger form.
    """
    check_dag_id(dag_id)
    check_name("pool", pool, optional=True)
    defaults = verify_settings({"bucket": bucket, "prefix": prefix, "aws_conn_id": aws_conn_id,
                                "autodesk_conn_id": autodesk_conn_id, "deep": deep, "sample": sample,
                                "workers": workers})
    if autodesk_conn_id == "":
        raise ConfigError("autodesk_conn_id '' is not accepted: give a connection id, or None for no Autodesk walk.")
    asset = verification_asset(dag_id, defaults["bucket"], defaults["prefix"])
    doc = __doc__.format(dag_id=dag_id, bucket=defaults["bucket"], prefix=defaults["prefix"], aws_conn_id=aws_conn_id,
                         autodesk=f"`{autodesk_conn_id}`" if autodesk_conn_id else "none by default",
                         when=f"on the schedule {schedule}" if schedule else "when triggered")
    pooled = {"pool": pool} if pool else {}
    bucket_option, prefix_option = _LOCATION["bucket"], _LOCATION["prefix"]

    @dag(
        dag_id=dag_id,
        description="Verify the Autodesk (APS) mirror in S3: missing, corrupt, orphaned, outdated files",
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        doc_md=doc,
        tags=["autodesk", "s3", "aps-mirror", "verify", *tags],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=5),
                      **({"retry_policy": FAIL_FAST_ON_SETUP_ERRORS} if FAIL_FAST_ON_SETUP_ERRORS else {})},
        on_failure_callback=MirrorAlertNotifier(message=FAILED, mirror=dag_id),
        params={
            "bucket": Param(defaults["bucket"], description=bucket_option.help, **bucket_option.schema),
            "prefix": Param(defaults["prefix"], description=prefix_option.help, **prefix_option.schema),
            "aws_conn_id": Param(aws_conn_id, type="string", minLength=1, description="The `aws` connection for S3."),
            "autodesk_conn_id": Param(autodesk_conn_id, type=["null", "string"],
                                      description="An `autodesk` connection: also walk every mirrored project in "
                                                  "Autodesk and report what the mirror lacks or holds at an older "
                                                  "version (not_mirrored, outdated). Empty: S3 only."),
            "deep": Param(defaults["deep"], type="boolean",
                          description="Re-read every object's bytes and check their SHA-1."),
            "sample": Param(defaults["sample"], type=["null", "integer"], minimum=1,
                            description="Re-read only this many objects, chosen at random (implies deep)."),
            "workers": Param(defaults["workers"], type="integer", minimum=1, maximum=MAX_WORKERS,
                             description=f"Objects checked at once (1 to {MAX_WORKERS})."),
        },
    )
    def verify_pipeline() -> None:
        @task(outlets=[asset], execution_timeout=timedelta(hours=12), **pooled)
        def verify_mirror(params: dict[str, Any], outlet_events: Any = None) -> dict[str, Any]:
            """Audit the mirror, log and record the report; its counts to XCom and the asset."""
            summary = run_verification(verify_settings(params))
            outlet_events[asset].extra = {k: v for k, v in summary.items() if k != "findings"}
            return summary

        @task(retries=0)
        def require_clean(summary: dict[str, Any]) -> None:
            """Fail the run, naming the first faults, unless the mirror is clean."""
            if summary["clean"]:
                log.info("%s", summary["summary"])
                return
            for finding in summary["findings"]:
                log.error("%s: %s  [%s]: %s", finding["category"], finding["key"] or "(no object)",
                          finding["path"] or "", finding["why"])
            if summary["findings_left_out"]:
                log.error("... and %d more finding(s): see verify_mirror's log", summary["findings_left_out"])
            raise RuntimeError(f"{summary['summary']}; every finding is in verify_mirror's log and in the "
                               "catalog's verifications table.")

        require_clean(verify_mirror())

    built = verify_pipeline()
    built.fileloc = caller_file() or built.fileloc
    return built


def run_verification(settings: Mapping[str, Any]) -> dict[str, Any]:
    """One verification, the CLI's way: the report logged and recorded in the catalog; returns
    its summary (counts, the first findings; no secrets, bounded in size)."""
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.airflow_provider.mirror import mirror_s3
    from aps_mirror.mirror.verify import MirrorVerifier

    conn_id = settings["autodesk_conn_id"]
    client = AutodeskHook(conn_id).get_conn() if conn_id else None
    s3 = mirror_s3(settings, workers=settings["workers"])
    report = MirrorVerifier(s3, settings["bucket"], settings["prefix"], client=client, deep=settings["deep"],
                            sample=settings["sample"], workers=settings["workers"]).run()
    log.info("verification %s:\n%s", report.verification_id, report.format_text())
    return {**verification_summary(report), "catalog": _record(s3, settings, report),
            "aws_conn_id": settings["aws_conn_id"]}


def verification_summary(report: Any) -> dict[str, Any]:
    """The report's counts and its first MAX_FINDINGS findings, as XCom and the asset carry them."""
    from aps_mirror.mirror.verify_report import CATEGORIES

    findings = [{"category": category, "key": f.key, "path": f.path and f.path[:MAX_TEXT], "why": f.why[:MAX_TEXT]}
                for category in CATEGORIES for f in getattr(report, category)]
    return {"verification_id": report.verification_id, "bucket": report.bucket, "prefix": report.prefix,
            "clean": report.clean, "summary": report.summary_line(), "deep": report.deep, "sample": report.sample,
            "against_autodesk": report.against_autodesk, "objects_checked": report.objects_checked,
            "objects_read": report.objects_read, "bytes_read": report.bytes_read, "projects": len(report.projects),
            **{category: len(getattr(report, category)) for category in CATEGORIES},
            "errors": len(report.errors), "findings": findings[:MAX_FINDINGS],
            "findings_left_out": max(0, len(findings) - MAX_FINDINGS)}


def _record(s3: Any, settings: Mapping[str, Any], report: Any) -> str | None:
    """The report's rows in the catalog (`verifications`); the verification's outcome stands either way."""
    from aps_mirror.catalog.writer import CatalogWriter

    try:
        return CatalogWriter(s3, settings["bucket"], settings["prefix"]).record_verification(report)
    except Exception as exc:
        log.warning("the verification could not be recorded in the catalog (%s); its report is above", exc)
        return None


__all__ = ["build_verify_dag", "verify_settings"]
