"""
### {dag_id}: keep each Autodesk account connected even when no sync runs

Autodesk refresh tokens die after 15 days unused. Every {every} this DAG spends the refresh
token of each listed `authorization_code` connection once (rotating it, and saving the new one
exactly like a sync would), so the 15-day clock restarts.

When a connection needs a person, the task FAILS with a message saying what to click:
"Browse > Autodesk accounts > Connect" in this UI (or `aps-mirror authorize --conn-id ...`).
A connection whose last rotation is older than `warn_after_days` is logged as an error too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from airflow.sdk import DAG, Param, dag, task
from aps_mirror.airflow_provider.compat import retry_policy_args
from aps_mirror.airflow_provider.dags.arguments import caller_file, check_dag_id, check_name
from aps_mirror.airflow_provider.mirror import FAIL_FAST_ON_SETUP_ERRORS
from aps_mirror.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_EVERY = timedelta(hours=12)
WARN_AFTER_DAYS = 10


def build_keepalive_dag(
    dag_id: str = "aps_mirror_keepalive",
    *,
    conn_ids: Sequence[str] = ("autodesk_default",),
    schedule: Any = DEFAULT_EVERY,
    warn_after_days: int = WARN_AFTER_DAYS,
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
) -> DAG:
    """Rotates the refresh token of each `authorization_code` connection in `conn_ids`."""
    check_dag_id(dag_id)
    if isinstance(conn_ids, str) or not conn_ids:
        raise ConfigError(f"conn_ids {conn_ids!r} is not accepted: give a list of autodesk connection ids.")
    names = [check_name("conn_ids", c) for c in conn_ids]
    if isinstance(warn_after_days, bool) or not isinstance(warn_after_days, int) or not 1 <= warn_after_days <= 14:
        raise ConfigError(f"warn_after_days {warn_after_days!r} is not accepted: use a whole number from 1 to 14.")
    every = schedule if isinstance(schedule, timedelta) else None
    doc = __doc__.format(dag_id=dag_id, every=f"{every.total_seconds() / 3600:g} hours" if every else
                         f"run of its schedule ({schedule})")

    @dag(
        dag_id=dag_id,
        description="Rotate Autodesk refresh tokens before their 15-day expiry",
        schedule=schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        doc_md=doc,
        tags=["autodesk", "aps-mirror"],
        # Retries cover an APS or network outage; a connection that needs a person fails at once
        # (ConfigError / AuthError), so the ACTION NEEDED alert is not held back by 30 min of retries.
        default_args={"retries": 3, "retry_delay": timedelta(minutes=10),
                      **retry_policy_args(FAIL_FAST_ON_SETUP_ERRORS)},
        params={
            "conn_ids": Param(names, type="array", items={"type": "string"},
                              description="The authorization_code connections to keep alive."),
            "warn_after_days": Param(warn_after_days, type="integer", minimum=1, maximum=14,
                                     description="Log an error when the last rotation is older."),
        },
    )
    def keepalive_pipeline() -> None:
        @task
        def keep_alive(conn_id: str, params: dict[str, Any]) -> dict[str, Any]:
            """Rotate one connection's refresh token; say plainly when a person must act."""
            return rotate_once(conn_id, params["warn_after_days"])

        @task
        def connections(params: dict[str, Any]) -> list[str]:
            return list(params["conn_ids"])

        keep_alive.expand(conn_id=connections())

    built = keepalive_pipeline()
    built.fileloc = caller_file() or built.fileloc
    return built


def rotate_once(conn_id: str, warn_after_days: int) -> dict[str, Any]:
    """Spend the connection's refresh token once (saving the new one); log what a person must do."""
    from aps_mirror.airflow_provider.connections import get_connection_fields
    from aps_mirror.airflow_provider.hooks.autodesk import AutodeskHook
    from aps_mirror.airflow_provider.ui.connection_health import REFRESH_TOKEN_DIES_AFTER_DAYS, token_health
    from aps_mirror.connection import AuthMode
    from aps_mirror.errors import ReauthorizationRequired

    hook = AutodeskHook(conn_id)
    conn = hook.get_aps_connection()
    if conn.auth_mode is not AuthMode.AUTHORIZATION_CODE:
        return {"conn_id": conn_id, "skipped": f"auth_mode {conn.auth_mode.value} has no refresh token"}
    fields = get_connection_fields(conn_id)
    # The rule the accounts page and the dashboard show, with this DAG's threshold.
    health = token_health(fields.extra if fields else {}, datetime.now(timezone.utc), warn_after_days)
    if health.level != "ok":
        log.error("ATTENTION: connection %r: %s", conn_id, health.message)
    try:
        hook.get_conn().transport.tokens.access_token()  # a new process: this refreshes
    except ReauthorizationRequired as exc:
        log.error("ACTION NEEDED for connection %r: %s", conn_id, exc)
        raise
    fields = get_connection_fields(conn_id)
    extra = fields.extra if fields else {}
    log.info("Connection %r is alive: refresh token generation %s, valid until about %s.",
             conn_id, extra.get("rt_generation"),
             (datetime.now(timezone.utc) + timedelta(days=REFRESH_TOKEN_DIES_AFTER_DAYS)).date())
    return {"conn_id": conn_id, "generation": extra.get("rt_generation")}
