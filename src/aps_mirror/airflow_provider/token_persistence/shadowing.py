"""What defines a connection ahead of the metadata database (an env var, a secrets backend):
a rotated token written to the database would never be read there, so it is refused first."""

from __future__ import annotations

import os

from aps_mirror.airflow_provider.connections import in_task
from aps_mirror.connection import env_var_name
from aps_mirror.errors import ConfigError

# Backends that ARE the metadata database: a connection found there is writable.
_DATABASE_BACKENDS = {"MetastoreBackend", "ExecutionAPISecretsBackend"}


def shadowing_source(conn_id: str) -> str | None:
    """What defines `conn_id` ahead of the metadata database, or None when the DB row rules."""
    env_var = env_var_name(conn_id)
    if os.environ.get(env_var):
        return f"the environment variable {env_var}"
    try:
        if in_task():
            from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

            backends = ensure_secrets_backend_loaded()
        else:
            from airflow.configuration import ensure_secrets_loaded

            backends = ensure_secrets_loaded()
    except ImportError:
        return None
    for backend in backends:
        name = type(backend).__name__
        if name in _DATABASE_BACKENDS:
            return None
        try:
            found = backend.get_connection(conn_id=conn_id)
        except Exception:  # noqa: BLE001 - a backend that cannot answer does not shadow
            continue
        if found is not None:
            return f"the secrets backend {name}"
    return None


def shadow_error(conn_id: str, source: str) -> ConfigError:
    return ConfigError(
        f"Connection {conn_id!r} is defined by {source}, which Airflow reads before the "
        "metadata database, so a rotated refresh token written to the database would never "
        "be read again and the next run would need re-authorization. Nothing was spent. "
        f"Fix: remove it from {source} and keep the connection in Admin > Connections only "
        "(or use auth_mode 'ssa' / 'client_credentials', which have no refresh chain)."
    )
