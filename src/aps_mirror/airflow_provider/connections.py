"""Airflow connections for the core: fetched through Airflow, parsed by the core.

Lookup goes through Airflow itself: inside a task the Task SDK (which asks the API server),
in a plain process Airflow's own chain (env vars, secrets backends, metadata database). The
fields go to `ConnectionFields.parse` as Airflow stores them (the extra as JSON text), so a
malformed connection gets the same one-line error whatever its source.

Refresh tokens rotate and the old one dies at once; `token_persistence.AirflowTokenStore`
(also importable here as `AirflowConnectionTokenStore`) writes each new one back where the
next reader looks, from tasks too. Token values are never logged.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from aps_mirror.connection import ConnectionFields

log = logging.getLogger(__name__)

REFRESH_TOKEN_KEY = "refresh_token"

# Rotated refresh tokens this process could not persist, by conn id. Any store for the same
# connection in this process prefers them: the copy in the connection is already dead.
_unsaved: dict[str, str] = {}
_unsaved_lock = threading.Lock()


def in_task() -> bool:
    """True inside a running task (the Task SDK talks to a supervisor, not to the database)."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def mask(*values: str | None) -> None:
    """Hide values from every log Airflow redacts: task logs and the core processes' logs."""
    from airflow.sdk.log import mask_secret  # task logs (and the supervisor, inside a task)

    try:  # scheduler / API server / CLI logs use airflow-core's own masker
        from airflow._shared.secrets_masker import mask_secret as mask_core
    except ImportError:  # a worker with only the Task SDK installed
        mask_core = None
    for value in values:
        if value:
            mask_secret(value)
            if mask_core is not None:
                mask_core(value)


def _airflow_connection(conn_id: str) -> Any:
    """Airflow's connection object, or raise AirflowNotFoundException."""
    if not in_task():
        try:
            from airflow.models.connection import Connection
        except ImportError:  # Task SDK only: no metadata database to look in
            pass
        else:
            return Connection.get_connection_from_secrets(conn_id)
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def get_connection_fields(conn_id: str) -> ConnectionFields | None:
    """The connection `conn_id` as Airflow resolves it, or None when it is not defined."""
    from aps_mirror.airflow_provider.compat import AirflowNotFoundException

    try:
        conn = _airflow_connection(conn_id)
    except AirflowNotFoundException:
        return None
    mask(conn.password)
    fields = ConnectionFields.parse(conn_id, conn_type=conn.conn_type, host=conn.host,
                                    login=conn.login, password=conn.password, schema=conn.schema,
                                    port=conn.port, extra=conn.extra)
    mask(*(value for key, value in fields.extra.items()
           if key in (REFRESH_TOKEN_KEY, "private_key") and isinstance(value, str)))
    return fields


def __getattr__(name: str) -> Any:
    # The store's first name, for its early callers; imported late because the store
    # imports this module.
    if name == "AirflowConnectionTokenStore":
        from aps_mirror.airflow_provider.token_persistence import AirflowTokenStore

        return AirflowTokenStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
