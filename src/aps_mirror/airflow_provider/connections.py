"""Airflow connections for the core: lookup as `ConnectionFields`, and a refresh-token store.

Lookup goes through Airflow itself: inside a task the Task SDK (which asks the API server),
in a plain process Airflow's own chain (env vars, secrets backends, metadata database).

Refresh tokens rotate and the old one dies at once, so `AirflowConnectionTokenStore` writes the
new one back into the connection's extra. First cut: it writes through the ORM, which works in
a plain process with the metadata database; where that is impossible (inside a task on a worker,
or a connection defined by an `AIRFLOW_CONN_*` variable) it says so loudly and keeps the token in
memory for the rest of the process. Token values are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any

from aps_mirror.connection import ConnectionFields, env_var_name

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
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = _airflow_connection(conn_id)
    except AirflowNotFoundException:
        return None
    extra = conn.extra_dejson if conn.extra else {}
    mask(conn.password, extra.get(REFRESH_TOKEN_KEY))
    return ConnectionFields(
        conn_id=conn_id,
        conn_type=conn.conn_type,
        host=conn.host or None,
        login=conn.login or None,
        password=conn.password or None,
        schema=conn.schema or None,
        port=conn.port or None,
        extra=dict(extra),
    )


class AirflowConnectionTokenStore:
    """A TokenStore backed by the `refresh_token` key of an Airflow connection's extra."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def load_refresh_token(self) -> str | None:
        with _unsaved_lock:
            unsaved = _unsaved.get(self.conn_id)
        if unsaved:
            return unsaved
        fields = get_connection_fields(self.conn_id)
        token = fields.extra.get(REFRESH_TOKEN_KEY) if fields else None
        return str(token) if token else None

    def save_refresh_token(self, refresh_token: str) -> None:
        mask(refresh_token)
        problem = self._persist(refresh_token)
        with _unsaved_lock:
            if problem is None:
                _unsaved.pop(self.conn_id, None)
                log.info("Stored the rotated APS refresh token in connection %r.", self.conn_id)
                return
            _unsaved[self.conn_id] = refresh_token
        log.warning(
            "APS rotated the refresh token of connection %r but it could NOT be saved: %s. "
            "It is kept in memory for the rest of this process only; the copy in the connection "
            "is now dead, so the next run will fail with 'reauthorization required' unless you "
            "authorize again (`aps-mirror authorize`). To have rotations saved automatically, "
            "define the connection in the Airflow metadata database (Admin > Connections) and "
            "run the token refresh where that database is reachable.",
            self.conn_id, problem,
        )

    def _persist(self, refresh_token: str) -> str | None:
        """Write the token into the connection's DB row; return why it could not, or None."""
        env_var = env_var_name(self.conn_id)
        if os.environ.get(env_var):
            return (f"the connection is defined by the environment variable {env_var}, which "
                    "shadows any database row and which aps-mirror cannot change")
        try:
            from sqlalchemy import select

            from airflow.models.connection import Connection
            from airflow.utils.session import create_session

            with create_session() as session:
                row = session.scalar(select(Connection).where(Connection.conn_id == self.conn_id))
                if row is None:
                    return ("the connection has no row in the Airflow metadata database (it comes "
                            "from a secrets backend, which aps-mirror does not write to)")
                extra = json.loads(row.extra) if row.extra else {}
                extra[REFRESH_TOKEN_KEY] = refresh_token
                row.set_extra(json.dumps(extra))
        except Exception as exc:  # noqa: BLE001 - any failure must become the warning, never a loss
            where = "inside a task, where Airflow blocks database access" if in_task() else \
                "the Airflow metadata database could not be written"
            return f"{where} ({type(exc).__name__})"
        return None
