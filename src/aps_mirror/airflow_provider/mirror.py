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

    The params are checked first (`aps_mirror.options`): a bad one fails the task at once with
    a one-line ConfigError. With a `run_id`, each project's run record and events go to the
    catalog (not in dry runs).
    """
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.catalog.writer import CatalogWriter
    from aps_mirror.mirror.engine import MirrorEngine
    from aps_mirror.options import mirror_config

    config = mirror_config(params)
    aps = AutodeskHook(params["autodesk_conn_id"]).get_conn()
    s3 = mirror_s3(params, workers=config.transfers)
    catalog = CatalogWriter(s3, config.bucket, config.prefix) if run_id and not config.dry_run else None
    return MirrorEngine(aps, s3, config, catalog=catalog, run_id=run_id, trigger="airflow")


def mirror_s3(params: Mapping[str, Any], *, workers: int = 1) -> Any:
    """The S3 client of the run's `aws` connection: the Amazon provider's session, endpoint
    and botocore config, built by the core's factory (pool sized for `workers` transfers)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from aps_mirror.s3_client import make_s3_client, require_aws_connection

    conn_id = params["aws_conn_id"]
    hook = S3Hook(aws_conn_id=conn_id)
    require_aws_connection(conn_id, found=bool(hook.conn_config))  # the hook would fall back silently
    return make_s3_client(session=hook.get_session(region_name=hook.region_name),
                          endpoint_url=hook.conn_config.get_service_endpoint_url("s3"),
                          config=hook.config, verify=hook.verify, workers=workers)


def publish_catalog(params: Mapping[str, Any]) -> dict[str, int]:
    """Fold the run's records into the catalog and rebuild its snapshot; rows per table."""
    from aps_mirror.catalog.writer import CatalogWriter

    return CatalogWriter(mirror_s3(params), params["bucket"], params["prefix"]).publish_snapshot()
