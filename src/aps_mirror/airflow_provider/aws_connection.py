"""S3 clients of Airflow `aws` connections, for DAG tasks (`mirror.mirror_s3`) and for the CLI
where Airflow is installed (`AirflowBackend.s3_client`).

The Amazon provider resolves the connection with the pieces its S3Hook uses
(`AwsConnectionWrapper`, `SessionFactory`, including a custom `[aws] session_factory`): keys,
`profile_name`, `role_arn` (and its other assume-role methods), `endpoint_url` and
`service_config`, `region_name`, `verify`, `config_kwargs`. The connection itself is looked up
once, the core's way (`AIRFLOW_CONN_*` first, then Airflow), and the core's factory builds the
client, so its pool fits the run's parallel parts whoever calls.

A role is assumed while the session is made (STS is asked at `service_config.sts.endpoint_url`
or AWS's own endpoint, never at the connection's `endpoint_url`: the Amazon provider's rule),
so a role that cannot be assumed is a one-line ConfigError here, not a bucket error later.
"""

from __future__ import annotations

import logging
from typing import Any

from aps_mirror.airflow_provider.connections import in_task, mask
from aps_mirror.connection import lookup_connection
from aps_mirror.errors import ConfigError
from aps_mirror.s3_client import make_s3_client, require_aws_connection, secrets_of, unusable_connection

log = logging.getLogger(__name__)


def s3_client(conn_id: str, *, workers: int = 1) -> Any:
    """The S3 client of the `aws` connection `conn_id`, sized for `workers` parallel transfers."""
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import SessionFactory
        from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
    except ImportError:
        raise ConfigError("Reaching S3 through Airflow needs the Amazon provider: install aps-mirror[airflow] "
                          "(or apache-airflow-providers-amazon) where this runs.") from None
    from botocore.exceptions import BotoCoreError, ClientError

    fields = lookup_connection(conn_id, required=False)
    require_aws_connection(conn_id, found=fields is not None)
    if fields is None:  # aws_default is not defined: boto3's own chain, as the Amazon provider does
        log.debug("AWS connection %r is not defined: S3 credentials come from boto3's default chain", conn_id)
        return make_s3_client(workers=workers)
    if in_task():  # an AIRFLOW_CONN_* variable, read without Airflow: its task log must hide them too
        mask(*secrets_of(fields))
    role_arn = None
    try:
        conn = AwsConnectionWrapper.from_connection_metadata(conn_id=conn_id, login=fields.login,
                                                             password=fields.password, extra=fields.extra)
        role_arn = conn.role_arn
        session = SessionFactory(conn=conn, region_name=conn.region_name,
                                 config=conn.botocore_config).create_session()  # assumes the role, if any
        return make_s3_client(session=session, endpoint_url=conn.get_service_endpoint_url("s3"),
                              config=conn.botocore_config, verify=conn.verify, workers=workers)
    except (BotoCoreError, ClientError, NotImplementedError, TypeError, ValueError) as exc:
        # NotImplementedError: an assume_role_method the provider lacks; TypeError/ValueError:
        # config_kwargs botocore refuses, an endpoint that is not a URL.
        raise unusable_connection(conn_id, exc, secrets=secrets_of(fields), role_arn=role_arn) from None
