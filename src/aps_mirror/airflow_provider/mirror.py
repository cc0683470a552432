"""The glue the `aps_mirror` DAG needs: an engine built from run params, its retry policy, and
the night's work plan (which projects each mapped `sync_batch` task syncs) in a compact form.

Heavy imports (boto3, the engine) happen inside the functions, so parsing the DAG stays cheap.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from aps_mirror.airflow_provider.compat import fail_fast_retry_policy
from aps_mirror.errors import AuthError, ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aps_mirror.mirror.engine import MirrorEngine, ProjectRef, ProjectResult, RunSummary

# The `max_batches` DAG param: mapped sync tasks per run. Airflow maps at most
# `[core] max_map_length` (1,024 by default) instances from one list.
MAX_BATCHES_DEFAULT = 32
MAX_BATCHES_LIMIT = 1024
# A batch's time budget: HOURS_PER_WEIGHT per unit of `walk_weight` (a changed project's walk
# weighs 1, a first copy or full walk 10), divided among its `project_workers`; at least
# MIN_BATCH_HOURS. Generous on purpose: it stops a hung batch, not a slow one.
HOURS_PER_WEIGHT = 2
MIN_BATCH_HOURS = 2

# Retrying cannot fix a bad connection or a dead refresh token: a person must act first.
# Everything else (APS outages, rate limits that outlasted the client's own retries) retries.
# None before Airflow 3.3 (no retry policies): tasks then use their plain `retries`; give it to
# tasks through `compat.retry_policy_args`.
FAIL_FAST_ON_SETUP_ERRORS = fail_fast_retry_policy(
    [ConfigError, AuthError],
    reason="The Autodesk connection needs fixing (or re-authorizing); retrying will not help.",
)


def mirror_engine(params: Mapping[str, Any], run_id: str | None = None) -> MirrorEngine:
    """A `MirrorEngine` for one run: APS (and Vault, when the connection has a vault_url) through
    `AutodeskHook`, S3 through the Amazon provider.

    The params are checked first (`aps_mirror.options`): a bad one fails the task at once with
    a one-line ConfigError. With a `run_id`, each project's run record and events go to the
    catalog (not in dry runs).
    """
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.catalog.writer import CatalogWriter
    from aps_mirror.mirror.engine import MirrorEngine
    from aps_mirror.mirror.sources.chosen import run_sources
    from aps_mirror.options import mirror_config

    config = mirror_config(params)
    hook = AutodeskHook(params["autodesk_conn_id"])
    aps = hook.get_conn()
    sources = run_sources(config, aps, hook.get_vault_client(aps), params["autodesk_conn_id"])
    s3 = mirror_s3(params, workers=config.transfers)
    catalog = CatalogWriter(s3, config.bucket, config.prefix) if run_id and not config.dry_run else None
    return MirrorEngine(sources, s3, config, catalog=catalog, run_id=run_id, trigger="airflow")


def mirror_s3(params: Mapping[str, Any], *, workers: int = 1) -> Any:
    """The S3 client of the run's `aws` connection, resolved by the Amazon provider and built by
    the core's factory (pool sized for `workers` transfers): the CLI's way too."""
    from aps_mirror.airflow_provider.aws_connection import s3_client

    return s3_client(params["aws_conn_id"], workers=workers)


def ensure_live_hooks(params: Mapping[str, Any], *, mirror: str, callback_url: str) -> dict[str, Any]:
    """`aps-mirror webhooks ensure` for the mirror's selection, from a task: the secret is
    written through the REST API (the connection writer tasks use); each project's hook state
    goes to the catalog's `hooks` table (the dashboard reads it there, never asking Autodesk);
    the report's counts."""
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.airflow_provider.token_persistence.writers import default_writer
    from aps_mirror.catalog.writer import CatalogWriter
    from aps_mirror.mirror.webhooks import ensure_mirror_hooks
    from aps_mirror.options import mirror_config

    config = mirror_config(params)
    conn_id = params["autodesk_conn_id"]
    catalog = None if config.dry_run else CatalogWriter(mirror_s3(params), config.bucket, config.prefix)
    try:
        report = ensure_mirror_hooks(AutodeskHook(conn_id).get_conn(), config, mirror=mirror, conn_id=conn_id,
                                     callback_url=callback_url, writer=default_writer(), dry_run=config.dry_run)
    except Exception as exc:
        if catalog is not None:
            _record_hooks_failure(catalog, exc, mirror=mirror, callback_url=callback_url)
        raise
    log.info("webhooks of %s:\n%s", mirror, report.format_text())
    if catalog is not None:
        catalog.record_hooks(report, datetime.now(timezone.utc))
    if not report.ok:
        raise RuntimeError("some projects' hooks could not be ensured; see above (the mirror itself is not affected)")
    # Numbers only: XCom stays small whatever the account's size (the secret's state is a word).
    return {"projects": len(report.projects), "changed": report.changed, "secret": report.secret,
            "api_calls": report.api_calls}


def _record_hooks_failure(catalog: Any, exc: Exception, *, mirror: str, callback_url: str) -> None:
    """Mark the hooks' check failed in the catalog. Our own errors are one secret-free line;
    anything else is named by its type only (its text could quote a request)."""
    from aps_mirror.errors import ApsMirrorError

    error = (str(exc) if isinstance(exc, ApsMirrorError)
             else f"{type(exc).__name__}: see the ensure_webhooks task's log")
    try:
        catalog.record_hooks_failure(mirror=mirror, callback_url=callback_url, error=error,
                                     checked_at=datetime.now(timezone.utc))
    except Exception as write_error:  # noqa: BLE001 - the check's own failure is the one to raise
        log.warning("could not record the failed check in the catalog's hooks table: %s", write_error)


def publish_catalog(params: Mapping[str, Any]) -> dict[str, int]:
    """Fold the run's records into the catalog and rebuild its snapshot; rows per table."""
    from aps_mirror.catalog.writer import CatalogWriter

    return CatalogWriter(mirror_s3(params), params["bucket"], params["prefix"]).publish_snapshot()


def parse_max_batches(raw: Any) -> int:
    """The `max_batches` param, checked like the sync options (a one-line ConfigError)."""
    value = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if value is None or not 1 <= value <= MAX_BATCHES_LIMIT:
        shown = repr(raw) if len(repr(raw)) <= 80 else repr(raw)[:77] + "..."
        raise ConfigError(f"max_batches {shown} is not accepted: use a whole number from 1 to {MAX_BATCHES_LIMIT}.")
    return value


# -- the work plan, as XCom carries it -----------------------------------------------------------
# Per-project dicts leave out every field at its default: a quiet project's result is its ids,
# label, file count and calls (about 250 bytes), so a plan of 2,000 projects stays near 0.5 MB.
_IDENTITY = ("project", "hub_id", "project_id")


def compact_result(result: ProjectResult) -> dict[str, Any]:
    from aps_mirror.mirror.engine import ProjectResult

    defaults = ProjectResult(project="", hub_id="", project_id="").to_dict()
    return {k: v for k, v in result.to_dict().items() if k in _IDENTITY or v != defaults[k]}


def results_of(compact: Iterable[dict[str, Any] | None]) -> list[ProjectResult]:
    from aps_mirror.mirror.engine import ProjectResult

    return [ProjectResult.from_dict(r) for r in compact if r]


def work_plan(projects: Sequence[ProjectRef], scanned: Sequence[ProjectResult], max_batches: int) -> dict[str, Any]:
    """The night, as the scan decided it (`scanned`: one result per project, in order):

    - `batches`: at most `max_batches` balanced lists of {"project": ref, "scan": its scan
      result}, the projects that need a walk (none on a quiet night: nothing gets mapped);
    - `done`: the results of the projects that need no walk: unchanged (their run record is
      already in the catalog), or whose scan failed (a failed project tonight);
    - `projects`: how many projects were listed.
    """
    from aps_mirror.mirror.batches import balanced_batches, walk_weight

    dirty = [(p, s) for p, s in zip(projects, scanned, strict=True) if s.needs_walk is not None]
    batches = balanced_batches(dirty, [walk_weight(s.needs_walk) for _, s in dirty], max_batches)
    return {"batches": [[{"project": {k: v for k, v in p.to_dict().items() if v not in (None, ())},
                          "scan": compact_result(s)} for p, s in batch] for batch in batches],
            "done": [compact_result(s) for s in scanned if s.needs_walk is None],
            "projects": len(projects)}


def batch_work(batch: Sequence[Mapping[str, Any]]) -> tuple[list[ProjectRef], list[ProjectResult]]:
    """A batch of the plan: its projects and their scan results."""
    from aps_mirror.mirror.engine import ProjectRef, ProjectResult

    return ([ProjectRef.from_dict(item["project"]) for item in batch],
            [ProjectResult.from_dict(item["scan"]) for item in batch])


def add_up_run(projects: int | None, done: Sequence[dict[str, Any]] | None,
               synced: Sequence[dict[str, Any]], retired: Sequence[dict[str, Any]]) -> tuple[RunSummary, str | None]:
    """The run's results added up (`done` by the scan, `synced` by the batches, `retired`), and
    why the run failed: None when every listed project finished cleanly."""
    from aps_mirror.mirror.engine import RunSummary

    finished = results_of([*(done or []), *synced])
    summary = RunSummary.combine(finished + results_of(retired))
    if projects is None:
        return summary, "plan_work failed, so nothing was mirrored; see its log."
    unfinished = projects - len(finished)
    if unfinished or summary.projects_failed:
        return summary, (f"{unfinished} of {projects} project sync(s) did not finish and "
                         f"{summary.projects_failed} finished with errors; see the sync_batch logs.")
    return summary, None


def batch_label(projects: Sequence[ProjectRef]) -> str:
    """How a batch's mapped task instance is named in the UI."""
    if len(projects) == 1:
        return projects[0].label
    return f"{projects[0].project_name} +{len(projects) - 1} more ({len(projects)} projects)"


def batch_budget(reasons: Iterable[str | None], project_workers: int) -> timedelta:
    """How long a batch may run: its walks' weights, `project_workers` at a time."""
    from aps_mirror.mirror.batches import walk_weight

    rounds = math.ceil(sum(walk_weight(r) for r in reasons) / max(project_workers, 1))
    return timedelta(hours=max(MIN_BATCH_HOURS, rounds * HOURS_PER_WEIGHT))
