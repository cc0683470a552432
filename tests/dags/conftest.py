"""DAG tests run against a throwaway AIRFLOW_HOME (set before Airflow is imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow_provider.airflow_home import ensure_airflow_home, migrate_db

ensure_airflow_home()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The test AIRFLOW_HOME with a migrated SQLite metadata database."""
    return migrate_db()
