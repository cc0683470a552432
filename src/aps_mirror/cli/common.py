"""What every command shares: logging, connections, exit codes."""

from __future__ import annotations

import logging
import sys
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from aps_mirror.aps.auth import TokenStore
from aps_mirror.aps.client import ApsClient
from aps_mirror.aps.transport import ApsTransport
from aps_mirror.backends import installed_backend
from aps_mirror.connection import ApsConnection, AuthMode, VaultSettings, lookup_connection
from aps_mirror.errors import ConfigError

if TYPE_CHECKING:
    from aps_mirror.vault import VaultClient

log = logging.getLogger(__name__)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the command ran but some work failed (see the summary)
    USAGE = 2  # bad arguments or configuration
    INTERRUPTED = 130


# Third-party loggers kept to warnings below -vv. Airflow's: its Amazon provider says at INFO
# where it found each connection's credentials, every time.
THIRD_PARTY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "airflow")
_chosen_levels: tuple[int, int] = (logging.INFO, 0)  # (level, verbose) of setup_logging


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """-v: aps-mirror's own debug lines; -vv: the HTTP and AWS libraries' too (URLs scrubbed)."""
    global _chosen_levels
    verbose = verbose or 0
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    _chosen_levels = (level, verbose)
    apply_log_levels()


def apply_log_levels() -> None:
    """The levels setup_logging chose; again after importing Airflow, whose logging setup
    resets every logger's level to its own (and logs through structlog besides)."""
    level, verbose = _chosen_levels
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:  # Airflow's handler stops below INFO, which would hide -v
        if handler.level > level:
            handler.setLevel(level)
    if verbose < 2:  # third-party chatter drowns the progress lines
        for noisy in THIRD_PARTY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # Its debug lines are the request's signature and what was signed: never worth printing.
    logging.getLogger("botocore.auth").setLevel(logging.INFO)
    structlog = sys.modules.get("structlog")
    if structlog is not None:  # imported with Airflow, whose own loggers are structlog's: same rule
        quietest = level if verbose >= 2 else max(level, logging.WARNING)
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(quietest))


def aps_client(conn_id: str) -> ApsClient:
    # The same parsing as the Airflow hook: an `ssa` connection carries its key fields too.
    connection = ApsConnection.from_fields(lookup_connection(conn_id))
    return ApsClient(ApsTransport(connection, token_store_for(connection)))


def vault_client(conn_id: str, aps: ApsClient) -> VaultClient | None:
    """The Vault client of `conn_id` beside its APS client (sharing its token and rate budget);
    None when the connection has no `vault_url`."""
    from aps_mirror.vault import VaultClient

    settings = VaultSettings.from_fields(lookup_connection(conn_id))
    return VaultClient.connect(settings, aps.transport) if settings is not None else None


def token_store_for(connection: ApsConnection) -> TokenStore | None:
    """Where a rotated refresh token goes: the installed backend's (the Airflow connection)."""
    if connection.auth_mode is not AuthMode.AUTHORIZATION_CODE:
        return None  # no refresh-token chain to keep
    backend = installed_backend()  # None without Airflow: the token lives in memory
    return backend.token_store(connection.conn_id) if backend else None


def s3_client(aws_conn_id: str, *, workers: int = 1) -> Any:
    """The S3 client of `aws_conn_id`, sized for `workers` parallel transfers: resolved by
    Airflow's Amazon provider where Airflow is installed (as in the DAG), else read here."""
    from aps_mirror.s3_client import client_from_fields, require_aws_connection

    backend = installed_backend()
    if backend is not None:
        return backend.s3_client(aws_conn_id, workers=workers)
    log.debug("Airflow is not installed: aps-mirror reads AWS connection %r itself (keys, endpoint_url, "
              "region_name, profile_name, config_kwargs; no role_arn)", aws_conn_id)
    fields = lookup_connection(aws_conn_id, required=False)
    require_aws_connection(aws_conn_id, found=fields is not None)
    return client_from_fields(fields, workers=workers)


def open_bucket(aws_conn_id: str, bucket: str, *, workers: int = 1) -> Any:
    """An S3 client that can use the bucket, or a ConfigError that says what to fix."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    s3 = s3_client(aws_conn_id, workers=workers)
    try:
        s3.head_bucket(Bucket=bucket)
    except NoCredentialsError:
        raise ConfigError(f"No AWS credentials: connection {aws_conn_id!r} does not exist and boto3 found none "
                          "(environment, ~/.aws, instance role); create the connection or pass --aws-conn-id.") from None
    except EndpointConnectionError as exc:
        raise ConfigError(f"Cannot reach S3 ({exc}); check the endpoint_url of connection {aws_conn_id!r}.") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchBucket"):
            raise ConfigError(f"Bucket {bucket!r} does not exist; create it first "
                              f"(aws s3 mb s3://{bucket}) or pass another --bucket.") from None
        raise ConfigError(f"Cannot use bucket {bucket!r} ({code}); check the credentials of "
                          f"connection {aws_conn_id!r} and the bucket policy.") from None
    return s3
