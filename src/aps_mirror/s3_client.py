"""The one way aps-mirror builds its boto3 S3 client, from the CLI's settings or Airflow's hook.

Where Airflow is installed, the `aws` connection is resolved by the Amazon provider (the
backend's `s3_client`: keys, profile, role, endpoint, botocore config), in DAG tasks and in
the CLI alike; without Airflow, the CLI reads the connection itself (`client_from_fields`).
Either way the client comes from `make_s3_client`, which sizes its connection pool for the
run's parallel parts.

Pool size: the connection's own `config_kwargs.max_pool_connections` is a wish, the run's
need is a floor. A smaller value is raised to what the parallel parts need (a pool smaller
than the requests in flight only makes uploads queue for a connection and botocore discard
the extra ones); a larger value is kept.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

from aps_mirror.connection import DEFAULT_AWS_CONN_ID, S3Settings, env_var_name
from aps_mirror.errors import ConfigError

if TYPE_CHECKING:
    from aps_mirror.connection import ConnectionFields

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
# Enough for the catalog's parallel fetches (catalog.reader.FETCH_WORKERS) with room to spare.
MIN_POOL_CONNECTIONS = 32
SPARE_CONNECTIONS = 8  # manifests, listings and the catalog beside the transfers
# Extras only the Amazon provider can honour: without Airflow they would be ignored and the
# mirror written with other credentials (or to another endpoint) than the connection says.
NEEDS_AMAZON_PROVIDER = ("role_arn", "assume_role_method", "assume_role_kwargs", "service_config",
                         "session_kwargs", "assume_role_with_saml", "assume_role_with_web_identity_federation")


def pool_size(workers: int) -> int:
    """Connections for `workers` parallel transfers, each with its ranged parts in flight;
    botocore's default pool of 10 would make part uploads wait for a free connection."""
    from aps_mirror.mirror.transfer import PARTS_IN_FLIGHT

    return max(MIN_POOL_CONNECTIONS, workers * PARTS_IN_FLIGHT + SPARE_CONNECTIONS)


def make_s3_client(*, session: Any = None, endpoint_url: str | None = None, region_name: str | None = None,
                   config: Any = None, verify: bool | str | None = None, workers: int = 1) -> Any:
    """An S3 client from `session` (default: boto3's own credential chain), with its pool sized
    for `workers` parallel transfers. `config` is a botocore Config to keep (e.g. the
    connection's config_kwargs): every option of it stays, but a max_pool_connections below
    `pool_size(workers)` is raised to it (see the module's docstring)."""
    import boto3  # slow to import; only paid when S3 is used
    from botocore.config import Config

    session = session or boto3.session.Session()
    needed = pool_size(workers)
    pool = max(needed, getattr(config, "max_pool_connections", None) or 0)
    sized = Config(max_pool_connections=pool)
    client = session.client("s3", endpoint_url=endpoint_url,
                            region_name=region_name or session.region_name or DEFAULT_REGION,
                            config=config.merge(sized) if config is not None else sized, verify=verify)
    log.debug("S3 client: a pool of %d connections for %d parallel transfer(s)%s", pool, workers,
              " (the connection's larger max_pool_connections)" if pool > needed else "")
    return client


def require_aws_connection(conn_id: str, found: bool) -> None:
    """Only the default connection may be absent (boto3's own chain is used then): a named one
    that does not exist is a typo, and its credentials must not silently come from elsewhere."""
    if not found and conn_id != DEFAULT_AWS_CONN_ID:
        raise ConfigError(
            f"AWS connection {conn_id!r} was not found: define it in Airflow (Admin > Connections) or "
            f"export {env_var_name(conn_id)}, or use {DEFAULT_AWS_CONN_ID!r} for boto3's default credentials."
        )


def client_from_fields(fields: ConnectionFields | None, *, workers: int = 1) -> Any:
    """The S3 client of an `aws` connection read without Airflow: keys (login/password or
    extra), endpoint_url, region_name, profile_name, verify and config_kwargs. Extras that
    only the Amazon provider honours (role_arn, service_config, ...) are refused."""
    import boto3
    from botocore.exceptions import BotoCoreError

    settings = S3Settings.from_fields(fields)
    if fields is None:
        return make_s3_client(endpoint_url=settings.endpoint_url, workers=workers)
    extra = fields.extra
    unsupported = [key for key in NEEDS_AMAZON_PROVIDER if extra.get(key)]
    if unsupported:
        raise ConfigError(
            f"AWS connection {fields.conn_id!r} sets {', '.join(unsupported)}, which aps-mirror resolves only "
            "through Airflow's Amazon provider: install aps-mirror[airflow] where the CLI runs, or give the "
            "connection credentials it can use directly.")
    config = botocore_config(fields.conn_id, extra.get("config_kwargs"))
    try:
        session = boto3.session.Session(aws_access_key_id=settings.aws_access_key_id,
                                        aws_secret_access_key=settings.aws_secret_access_key,
                                        aws_session_token=settings.aws_session_token,
                                        region_name=settings.region_name,
                                        profile_name=extra.get("profile_name") or None)
        return make_s3_client(session=session, endpoint_url=settings.endpoint_url, config=config,
                              verify=extra.get("verify"), workers=workers)
    except (BotoCoreError, ValueError) as exc:  # a profile not in the AWS config files, a bad endpoint
        raise unusable_connection(fields.conn_id, exc, secrets=secrets_of(fields)) from None


def botocore_config(conn_id: str, config_kwargs: Any) -> Any:
    """The connection's `config_kwargs` as a botocore Config (None when absent), as the
    Amazon provider reads them; a value botocore refuses is a one-line ConfigError."""
    if not config_kwargs:
        return None
    from botocore import UNSIGNED
    from botocore.config import Config

    if not isinstance(config_kwargs, dict):
        raise ConfigError(f"AWS connection {conn_id!r} has extra.config_kwargs of type "
                          f"{type(config_kwargs).__name__}; it must be an object of botocore Config options.")
    kwargs = dict(config_kwargs)
    if kwargs.get("signature_version") == "unsigned":
        kwargs["signature_version"] = UNSIGNED
    try:
        return Config(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"AWS connection {conn_id!r} has config_kwargs botocore refuses ({exc}); "
                          "see botocore's Config options.") from None


def secrets_of(fields: ConnectionFields) -> list[str]:
    """The connection's secret values, to scrub from any message that quotes them."""
    extra = fields.extra
    return [v for v in (fields.password, extra.get("aws_secret_access_key"), extra.get("aws_session_token"))
            if isinstance(v, str) and v]


def unusable_connection(conn_id: str, exc: BaseException, *, secrets: Sequence[str] = (),
                        role_arn: str | None = None) -> ConfigError:
    """One line for an `aws` connection that cannot give a client: a profile that is not
    there, a role that cannot be assumed, STS out of reach, botocore refusing an option."""
    from botocore.exceptions import (ClientError, EndpointConnectionError, NoCredentialsError,
                                     ProfileNotFound)

    def one_line(text: str) -> str:
        text = " ".join(text.split())
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    reason = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, ProfileNotFound):
        return ConfigError(f"AWS connection {conn_id!r}: {reason}; add the profile to the AWS config files "
                           "(AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, by default ~/.aws) or fix profile_name.")
    if role_arn and isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        said = one_line(str(error.get("Message") or "")) or reason
        return ConfigError(f"AWS connection {conn_id!r} could not assume role {role_arn} "
                           f"({error.get('Code', 'error')}: {said}); check that its credentials may call "
                           "sts:AssumeRole on it and the role's trust policy.")
    if role_arn and isinstance(exc, EndpointConnectionError):
        return ConfigError(f"AWS connection {conn_id!r} could not reach STS to assume role {role_arn} ({reason}); "
                           "for a non-AWS endpoint set service_config.sts.endpoint_url in its extra.")
    if role_arn and isinstance(exc, NoCredentialsError):
        return ConfigError(f"AWS connection {conn_id!r} has role_arn {role_arn} but no credentials to assume "
                           "it with: give it keys or a profile_name, or run where boto3 finds credentials.")
    return ConfigError(f"AWS connection {conn_id!r} cannot be used: {reason}.")
