"""Is the mirror's pool there? Without it Airflow never schedules `sync_batch` (a DAG warning in
the UI, nothing in the run), so `plan_work` asks first and fails with the command to run.

A task cannot read pools through the Task SDK: it asks the REST API with the credentials token
persistence already uses, else the metadata database where that still works (`airflow dags
test`); when neither answers, it says so and goes on (the deadline alert still catches a stall).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aps_mirror.airflow_provider.connections import in_task
from aps_mirror.errors import ConfigError

log = logging.getLogger(__name__)


def require_pool(name: str) -> None:
    """Raise a one-line ConfigError when pool `name` does not exist."""
    exists = pool_exists(name)
    if exists is False:
        raise ConfigError(f"Pool {name!r} does not exist, so sync_batch would never start: create it with "
                          f"`airflow pools set {name} 4 \"APS API concurrency\"` (or Admin > Pools), "
                          "then clear this task.")
    if exists is None:
        log.warning("Could not check that pool %r exists (no Airflow REST API credentials for aps-mirror "
                    "and no metadata database here); if sync_batch stays scheduled, create it.", name)


def pool_exists(name: str) -> bool | None:
    """True or False as Airflow knows it; None when nothing here can tell."""
    if in_task():
        found = _through_rest_api(name)
        if found is not None:
            return found
    return _through_metadata_database(name)


def _through_rest_api(name: str) -> bool | None:
    from aps_mirror.airflow_provider.token_persistence.writers import AirflowApiSettings, RestWriter

    try:
        response = RestWriter(AirflowApiSettings.resolve(), timeout=10).get(f"/api/v2/pools/{quote(name, safe='')}")
    except (ConfigError, OSError) as exc:  # no credentials, refused login, API unreachable
        log.debug("pool check through the REST API: %s", exc)
        return None
    if response.status_code in (200, 404):
        return response.status_code == 200
    log.debug("pool check through the REST API: HTTP %s", response.status_code)
    return None


def _through_metadata_database(name: str) -> bool | None:
    try:
        from airflow.models.pool import Pool

        return Pool.get_pool(name) is not None
    except Exception as exc:  # a real worker blocks the ORM (RuntimeError); Task SDK only: ImportError
        log.debug("pool check in the metadata database: %s", exc)
        return None
