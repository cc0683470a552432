"""The one way aps-mirror builds its boto3 S3 client, from the CLI's settings or Airflow's hook.

Whoever supplies the credentials (an `aws` connection parsed by the core, or the Amazon
provider's session), the client's connection pool is sized here for the run's parallel parts.
"""

from __future__ import annotations

from typing import Any

from aps_mirror.connection import DEFAULT_AWS_CONN_ID, env_var_name
from aps_mirror.errors import ConfigError

DEFAULT_REGION = "us-east-1"
# Enough for the catalog's parallel fetches (catalog.reader.FETCH_WORKERS) with room to spare.
MIN_POOL_CONNECTIONS = 32
SPARE_CONNECTIONS = 8  # manifests, listings and the catalog beside the transfers


def pool_size(workers: int) -> int:
    """Connections for `workers` parallel transfers, each with its ranged parts in flight;
    botocore's default pool of 10 would make part uploads wait for a free connection."""
    from aps_mirror.mirror.transfer import PARTS_IN_FLIGHT

    return max(MIN_POOL_CONNECTIONS, workers * PARTS_IN_FLIGHT + SPARE_CONNECTIONS)


def make_s3_client(*, session: Any = None, endpoint_url: str | None = None, region_name: str | None = None,
                   config: Any = None, verify: bool | str | None = None, workers: int = 1) -> Any:
    """An S3 client from `session` (default: boto3's own credential chain), with its pool sized
    for `workers` parallel transfers. `config` is a botocore Config to keep (e.g. the
    connection's config_kwargs); a larger pool in it is kept too."""
    import boto3  # slow to import; only paid when S3 is used
    from botocore.config import Config

    session = session or boto3.session.Session()
    pool = max(pool_size(workers), getattr(config, "max_pool_connections", 0) or 0)
    sized = Config(max_pool_connections=pool)
    return session.client("s3", endpoint_url=endpoint_url,
                          region_name=region_name or session.region_name or DEFAULT_REGION,
                          config=config.merge(sized) if config is not None else sized, verify=verify)


def require_aws_connection(conn_id: str, found: bool) -> None:
    """Only the default connection may be absent (boto3's own chain is used then): a named one
    that does not exist is a typo, and its credentials must not silently come from elsewhere."""
    if not found and conn_id != DEFAULT_AWS_CONN_ID:
        raise ConfigError(
            f"AWS connection {conn_id!r} was not found: define it in Airflow (Admin > Connections) or "
            f"export {env_var_name(conn_id)}, or use {DEFAULT_AWS_CONN_ID!r} for boto3's default credentials."
        )
