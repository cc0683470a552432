"""
### aps_mirror_keepalive: keep each Autodesk account connected even when no sync runs

Autodesk refresh tokens die after 15 days unused. Every 12 hours this DAG spends the refresh
token of each listed `authorization_code` connection once (rotating it, and saving the new one
exactly like a sync would), so the 15-day clock restarts.

When a connection needs a person, the task FAILS with a message saying what to click:
"Browse > Autodesk accounts > Connect" in this UI (or `aps-mirror authorize --conn-id ...`).
A connection whose last rotation is older than `warn_after_days` is logged as an error too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import Param, dag, task
from aps_mirror.airflow_provider.mirror import FAIL_FAST_ON_SETUP_ERRORS

log = logging.getLogger(__name__)


@dag(
    dag_id="aps_mirror_keepalive",
    description="Rotate Autodesk refresh tokens before their 15-day expiry",
    schedule=timedelta(hours=12),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["autodesk", "aps-mirror"],
    # Retries cover an APS or network outage; a connection that needs a person fails at once
    # (ConfigError / AuthError), so the ACTION NEEDED alert is not held back by 30 min of retries.
    default_args={"retries": 3, "retry_delay": timedelta(minutes=10),
                  "retry_policy": FAIL_FAST_ON_SETUP_ERRORS},
    params={
        "conn_ids": Param(["autodesk_default"], type="array", items={"type": "string"},
                          description="The authorization_code connections to keep alive."),
        "warn_after_days": Param(10, type="integer", minimum=1, maximum=14,
                                 description="Log an error when the last rotation is older."),
    },
)
def aps_mirror_keepalive() -> None:
    @task
    def keep_alive(conn_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Rotate one connection's refresh token; say plainly when a person must act."""
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
        health = token_health(fields.extra if fields else {}, datetime.now(timezone.utc),
                              params["warn_after_days"])
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

    @task
    def connections(params: dict[str, Any]) -> list[str]:
        return list(params["conn_ids"])

    keep_alive.expand(conn_id=connections())


aps_mirror_keepalive()
