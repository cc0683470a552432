"""Health of each `autodesk` connection, as plain data: what the accounts page shows, for the dashboard.

Only non-secret bookkeeping is read (auth mode, who consented, when the refresh token last
rotated, whether a refresh was interrupted, what shadows the row); the token, client secret
and fingerprints never leave this module.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from aps_mirror.airflow_provider.token_persistence import (
    ACCOUNT_KEY,
    PENDING_KEY,
    REFRESH_TOKEN_KEY,
    ROTATED_AT_KEY,
    shadowing_source,
)
from aps_mirror.airflow_provider.ui.app import WARN_AFTER_DAYS, _autodesk_connections
from aps_mirror.connection import ConnectionFields, env_var_name, parse_connection_value
from aps_mirror.errors import ConfigError

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN_DIES_AFTER_DAYS = 15


@dataclass(frozen=True)
class ConnectionHealth:
    conn_id: str
    auth_mode: str
    defined_in: str  # "metadata database" or the environment variable
    level: str  # ok | warn | alert
    message: str  # plain words, with what to do when it is not ok
    account: str | None = None  # "Name <email>" of who consented (authorization_code)
    last_rotation: str | None = None
    shadowed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def connection_health(now: datetime | None = None) -> list[ConnectionHealth]:
    """Every autodesk connection in the metadata database or in an AIRFLOW_CONN_* variable."""
    now = now or datetime.now(timezone.utc)
    stored = {f.conn_id: f for f in _autodesk_connections()}
    from_env = _env_connections()
    health = [_db_health(fields, now) for fields in stored.values()]
    health += [_env_health(fields) for conn_id, fields in from_env.items() if conn_id not in stored]
    return sorted(health, key=lambda h: h.conn_id)


def _env_connections() -> dict[str, ConnectionFields]:
    found = {}
    for name, value in os.environ.items():
        if not name.startswith("AIRFLOW_CONN_") or not value.strip():
            continue
        conn_id = name[len("AIRFLOW_CONN_"):].lower()
        try:
            fields = parse_connection_value(conn_id, value)
        except (ConfigError, ValueError):
            continue  # not ours to judge: Airflow reports broken connections itself
        if fields.conn_type == "autodesk":
            found[conn_id] = fields
    return found


def _mode(fields: ConnectionFields) -> str:
    return str(fields.extra.get("auth_mode") or AUTHORIZATION_CODE)


def _env_health(fields: ConnectionFields) -> ConnectionHealth:
    mode, where = _mode(fields), f"environment variable {env_var_name(fields.conn_id)}"
    if mode == AUTHORIZATION_CODE:
        return ConnectionHealth(fields.conn_id, mode, where, "alert",
                                "A rotating refresh token cannot be saved into an environment variable: "
                                "the next rotation would be lost. Store this connection in Admin > "
                                "Connections instead, or use auth_mode ssa or client_credentials.")
    return ConnectionHealth(fields.conn_id, mode, where, "ok", f"{mode}: no refresh token to keep alive.")


def _db_health(fields: ConnectionFields, now: datetime) -> ConnectionHealth:
    extra, mode = fields.extra, _mode(fields)
    account = extra.get(ACCOUNT_KEY) or {}
    who = f"{account.get('name')} <{account.get('email') or '?'}>" if account else None
    rotated = extra.get(ROTATED_AT_KEY)
    shadow = shadowing_source(fields.conn_id)
    base = dict(conn_id=fields.conn_id, auth_mode=mode, defined_in="metadata database", account=who,
                last_rotation=str(rotated) if rotated else None, shadowed_by=shadow)
    if mode != AUTHORIZATION_CODE:
        return ConnectionHealth(**base, level="ok", message=f"{mode}: no refresh token to keep alive.")
    if shadow:
        return ConnectionHealth(**base, level="alert", message=(
            f"Shadowed by {shadow}: Airflow reads that first, so rotated refresh tokens saved here "
            "are never read. Remove it there and keep the connection in Admin > Connections only."))
    if not extra.get(REFRESH_TOKEN_KEY):
        return ConnectionHealth(**base, level="alert", message=(
            "Not connected: connect an Autodesk account on the 'Autodesk accounts' page."))
    if extra.get(PENDING_KEY):
        return ConnectionHealth(**base, level="alert", message=(
            "A token refresh was interrupted (crash). If runs fail with 're-authorization required', "
            "connect the account again on the 'Autodesk accounts' page."))
    age = _age_days(rotated, now)
    if age is not None and age >= WARN_AFTER_DAYS:
        return ConnectionHealth(**base, level="warn", message=(
            f"Refresh token unused for {age} days; it dies after {REFRESH_TOKEN_DIES_AFTER_DAYS}. Run "
            "the aps_mirror_keepalive DAG, or reconnect on the 'Autodesk accounts' page."))
    return ConnectionHealth(**base, level="ok", message=(
        f"Connected; refresh token last rotated {age} day(s) ago." if age is not None else "Connected."))


def _age_days(rotated: Any, now: datetime) -> int | None:
    try:
        return (now - datetime.fromisoformat(str(rotated))).days if rotated else None
    except (ValueError, TypeError):
        return None
