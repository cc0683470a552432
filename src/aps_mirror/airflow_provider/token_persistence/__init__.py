"""Keeping a rotating refresh token alive across every worker of an Airflow 3 deployment.

Why it is built this way (docs/auth.md has the operator's view):
- Inside a task on a real executor the ORM is blocked and the Task SDK cannot write
  connections, so a task writes through the Airflow REST API (`PATCH /api/v2/connections`)
  with a JWT from `/auth/token`. Outside tasks (CLI, API server, `dags test`) the ORM works.
- Reads go through Airflow's normal resolution (Task SDK -> API server -> database), which
  returns unmasked extras; the REST API masks them, so it is only used for writing.
- Refreshes are serialised by a lock keyed on the connection: a PostgreSQL advisory lock
  (session scoped: a killed holder releases it at once) or a Redis lock with a lease. The
  refresh token is loaded under the lock, so a worker adopts whatever the last holder saved.
- Next to the token, non-secret bookkeeping (`rt_generation`, `rt_fingerprint`,
  `rt_rotated_at`, `rt_pending`) tells readers whether their copy is current and lets a
  refusal after a crash be explained ("an earlier refresh died before saving").
- A connection that an env var or a secrets backend shadows cannot be written where readers
  look: that is detected BEFORE the refresh token is spent and reported as a ConfigError.

Split by concern: `bookkeeping` (the extra's keys), `shadowing`, `writers` (ORM, REST), `locks`
(PostgreSQL, Redis, file) and `store` (AirflowTokenStore); the public names are importable here.
"""

from __future__ import annotations

from aps_mirror.airflow_provider.token_persistence.bookkeeping import (
    ACCOUNT_KEY,
    FINGERPRINT_KEY,
    GENERATION_KEY,
    PENDING_KEY,
    REFRESH_TOKEN_KEY,
    ROTATED_AT_KEY,
    now_iso,
)
from aps_mirror.airflow_provider.token_persistence.locks import (
    LOCK_URL_ENV,
    deployment_redis_url,
    rotation_lock,
)
from aps_mirror.airflow_provider.token_persistence.shadowing import shadow_error, shadowing_source
from aps_mirror.airflow_provider.token_persistence.store import FAULT_FILE_ENV, AirflowTokenStore
from aps_mirror.airflow_provider.token_persistence.writers import (
    API_CONN_ID_ENV,
    DEFAULT_API_CONN_ID,
    AirflowApiSettings,
    ConnectionWriter,
    OrmWriter,
    RestWriter,
    default_writer,
)

__all__ = [
    "ACCOUNT_KEY", "API_CONN_ID_ENV", "DEFAULT_API_CONN_ID", "FAULT_FILE_ENV", "FINGERPRINT_KEY",
    "GENERATION_KEY", "LOCK_URL_ENV", "PENDING_KEY", "REFRESH_TOKEN_KEY", "ROTATED_AT_KEY",
    "AirflowApiSettings", "AirflowTokenStore", "ConnectionWriter", "OrmWriter", "RestWriter",
    "default_writer", "deployment_redis_url", "now_iso", "rotation_lock", "shadow_error",
    "shadowing_source",
]
