"""The Airflow backend of the core (entry point `aps_mirror.backends: airflow`): connections
and refresh-token stores from Airflow. Importing it without Airflow fails, which tells the
core that this backend is not available here."""

from __future__ import annotations

import airflow.sdk  # noqa: F401 - the import that fails where Airflow is not installed

from aps_mirror.airflow_provider.connections import get_connection_fields
from aps_mirror.airflow_provider.token_persistence import AirflowTokenStore
from aps_mirror.connection import ConnectionFields


class AirflowBackend:
    name = "airflow"

    def connection_fields(self, conn_id: str) -> ConnectionFields | None:
        return get_connection_fields(conn_id)

    def token_store(self, conn_id: str) -> AirflowTokenStore:
        return AirflowTokenStore(conn_id)
