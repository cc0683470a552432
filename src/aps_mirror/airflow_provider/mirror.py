"""The glue the `aps_mirror` DAG needs: an engine built from run params, and its retry policy.

Heavy imports (boto3, the engine) happen inside the functions, so parsing the DAG stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule
from aps_mirror.errors import AuthError, ConfigError

if TYPE_CHECKING:
    from aps_mirror.mirror.engine import MirrorEngine

# Retrying cannot fix a bad connection or a dead refresh token: a person must act first.
# Everything else (APS outages, rate limits that outlasted the client's own retries) retries.
FAIL_FAST_ON_SETUP_ERRORS = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=[ConfigError, AuthError],
            action=RetryAction.FAIL,
            reason="The Autodesk connection needs fixing (or re-authorizing); retrying will not help.",
        ),
    ],
)


def mirror_engine(params: Mapping[str, Any], run_id: str | None = None) -> MirrorEngine:
    """A `MirrorEngine` for one run: APS through `AutodeskHook`, S3 through the Amazon provider.

    With a `run_id`, each project's run record and events go to the catalog (not in dry runs).
    """
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.catalog.writer import CatalogWriter
    from aps_mirror.mirror.engine import MirrorConfig, MirrorEngine
    from aps_mirror.mirror.plan import DeleteLimit, DeletePolicy

    config = MirrorConfig(
        bucket=params["bucket"],
        prefix=params["prefix"],
        dry_run=bool(params["dry_run"]),
        project_filter=tuple(params["project_filter"] or ()),
        exclude_projects=tuple(params.get("exclude_projects") or ()),
        hub_filter=tuple(params.get("hub_filter") or ()),
        exclude_hubs=tuple(params.get("exclude_hubs") or ()),
        full_walk=bool(params.get("full_walk", False)),
        full_walk_days=float(params.get("full_walk_days", 7)),
        delete_policy=DeletePolicy(params.get("delete_policy", "keep")),
        max_delete=DeleteLimit.parse(params.get("max_delete", "10%")),
        top_folders=tuple(params.get("top_folders") or ()),
        extensions=tuple(params.get("extensions") or ()),
        exclude_extensions=tuple(params.get("exclude_extensions") or ()),
        max_file_size=int(params["max_file_size_mb"] * 1024 * 1024) if params.get("max_file_size_mb") else None,
        versions=str(params.get("versions") or "tip"),
    )
    aps = AutodeskHook(params["autodesk_conn_id"]).get_conn()
    s3 = mirror_s3(params)
    catalog = CatalogWriter(s3, config.bucket, config.prefix) if run_id and not config.dry_run else None
    return MirrorEngine(aps, s3, config, catalog=catalog, run_id=run_id, trigger="airflow")


def mirror_s3(params: Mapping[str, Any]) -> Any:
    """The boto3 S3 client of the run's `aws` connection."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=params["aws_conn_id"]).get_conn()


def publish_catalog(params: Mapping[str, Any]) -> dict[str, int]:
    """Fold the run's records into the catalog and rebuild its snapshot; rows per table."""
    from aps_mirror.catalog.writer import CatalogWriter

    return CatalogWriter(mirror_s3(params), params["bucket"], params["prefix"]).publish_snapshot()
