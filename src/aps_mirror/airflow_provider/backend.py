"""The Airflow backend of the core (entry point `aps_mirror.backends: airflow`): connections,
refresh-token stores and S3 clients from Airflow. Importing it without Airflow fails, which
tells the core that this backend is not available here."""

from __future__ import annotations

from typing import Any

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

    def s3_client(self, conn_id: str, *, workers: int = 1) -> Any:
        from aps_mirror.airflow_provider.aws_connection import s3_client  # boto3 only when S3 is used

        return s3_client(conn_id, workers=workers)
